/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libevent.c - benchmark driver for libevent 2: one persistent read event
 * per fd (event_assign on the benchmark's own structs), its timeout re-armed
 * by event_add() with a new timeval, as in libevent's test/bench.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "../bench-util.h"
#include "driver.h"

struct lvt_ring {
	struct event_base *base;
	struct ring_ctx *ctx;
	struct event *ev;
	bool added;
};

static struct lvt_ring *cur;

static struct timeval ns_to_tv(int64_t ns)
{
	return (struct timeval){.tv_sec = ns / 1000000000, .tv_usec = ns % 1000000000 / 1000};
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	if (what & EV_READ)
		ring_fire(cur->ctx, (int)(intptr_t)arg);
}

static struct event_base *new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	/* epoll, like every other driver; no changelist (each call is a syscall). */
	event_config_avoid_method(cfg, "select");
	event_config_avoid_method(cfg, "poll");
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}

static int lvt_ring_init(struct ring_ctx *ctx)
{
	struct lvt_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->base = new_base();
	r->ev = bench_calloc((size_t)ctx->n, event_get_struct_event_size());
	if (!r->base || !r->ev)
		return -1;
	r->ctx = ctx;
	ctx->drv = r;
	cur = r;
	return 0;
}

static int lvt_ring_register(struct ring_ctx *ctx)
{
	struct lvt_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		struct event *e = &r->ev[i];
		if (r->added)
			event_del(e);
		event_assign(e, r->base, ctx->fds[i], EV_READ | EV_PERSIST, read_cb,
			     (void *)(intptr_t)i);
		struct timeval tv = ns_to_tv(ring_timeout_ns());
		if (event_add(e, ctx->timeouts ? &tv : NULL) < 0)
			return -1;
	}
	r->added = true;
	return 0;
}

static int lvt_ring_poll(struct ring_ctx *ctx)
{
	struct lvt_ring *r = ctx->drv;

	return event_base_loop(r->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void lvt_ring_rearm(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct lvt_ring *r = ctx->drv;
	struct timeval tv = ns_to_tv(tmo_ns);

	event_add(&r->ev[idx], &tv);
}

static void lvt_ring_fini(struct ring_ctx *ctx)
{
	struct lvt_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++)
		event_del(&r->ev[i]);
	event_base_free(r->base);
	free(r->ev);
	free(r);
}

struct lvt_timers {
	struct event_base *base;
	struct event *ev;
};

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int lvt_timer_init(struct timer_ctx *ctx)
{
	struct lvt_timers *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->base = new_base();
	t->ev = bench_calloc((size_t)ctx->n, event_get_struct_event_size());
	if (!t->base || !t->ev)
		return -1;
	ctx->drv = t;
	return 0;
}

static void lvt_timer_add(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct lvt_timers *t = ctx->drv;
	struct timeval tv = ns_to_tv(after_ns);

	evtimer_assign(&t->ev[i], t->base, timer_cb, NULL);
	evtimer_add(&t->ev[i], &tv);
}

static void lvt_timer_mod(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct lvt_timers *t = ctx->drv;
	struct timeval tv = ns_to_tv(after_ns);

	evtimer_add(&t->ev[i], &tv);
}

static void lvt_timer_cancel(struct timer_ctx *ctx, long i)
{
	struct lvt_timers *t = ctx->drv;

	evtimer_del(&t->ev[i]);
}

static void lvt_timer_fini(struct timer_ctx *ctx)
{
	struct lvt_timers *t = ctx->drv;

	event_base_free(t->base);
	free(t->ev);
	free(t);
}

/*
 * echo-bench: one event per watcher, fd and timeout together; a new mask
 * is event_del() + event_assign() + event_add(), a new timeout event_add().
 */
struct lvt_io {
	struct event *ev;
	struct bench_io *io;
	struct event_base *base;
	bool has_tmo;
};

static void lio_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lvt_io *x = arg;
	uint32_t r = 0;

	(void)fd;
	if (what & EV_READ)
		r |= EPOLLIN;
	if (what & EV_WRITE)
		r |= EPOLLOUT;
	x->io->cb(x->io, r);
}

static void lguard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(base);
}

static struct bench_loop *lvt_loop_new(void)
{
	return (struct bench_loop *)new_base();
}

static int lvt_loop_run(struct bench_loop *loop, int64_t deadline_ns)
{
	struct event_base *base = (struct event_base *)loop;
	struct event *g = evtimer_new(base, lguard_cb, base);
	int64_t left = deadline_ns - bench_now_ns();
	struct timeval tv = ns_to_tv(left > 0 ? left : 0);
	int rc, fired;

	if (!g || evtimer_add(g, &tv) < 0)
		return -ENOMEM;
	rc = event_base_dispatch(base);
	fired = !evtimer_pending(g, NULL);
	event_free(g);
	return rc < 0 ? rc : fired;
}

static void lvt_loop_stop(struct bench_loop *loop)
{
	event_base_loopbreak((struct event_base *)loop);
}

static void lvt_loop_free(struct bench_loop *loop)
{
	event_base_free((struct event_base *)loop);
}

static int lvt_io_set(struct bench_io *io, uint32_t events, int64_t tmo_ns)
{
	struct lvt_io *x = io->drv;
	struct timeval tv = ns_to_tv(tmo_ns);

	if (events != io->events) {
		short what = (events & EPOLLIN ? EV_READ : 0) | (events & EPOLLOUT ? EV_WRITE : 0);
		event_del(x->ev);
		if (event_assign(x->ev, x->base, events ? io->fd : -1, events ? what | EV_PERSIST : 0,
				 lio_cb, x) < 0)
			return -EINVAL;
		io->events = events;
		x->has_tmo = false;
	} else if (tmo_ns < 0 && x->has_tmo) {
		event_del(x->ev);
	}
	x->has_tmo = tmo_ns >= 0;
	if (!events && !x->has_tmo)
		return 0;
	return event_add(x->ev, x->has_tmo ? &tv : NULL) < 0 ? -EINVAL : 0;
}

static int lvt_io_add(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		      int64_t tmo_ns)
{
	struct lvt_io *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->base = (struct event_base *)loop;
	x->ev = event_new(x->base, -1, 0, lio_cb, x);
	if (!x->ev) {
		free(x);
		return -ENOMEM;
	}
	x->io = io;
	io->drv = x;
	io->events = 0;
	return lvt_io_set(io, events, tmo_ns);
}

static void lvt_io_del(struct bench_io *io)
{
	struct lvt_io *x = io->drv;

	/* Safe on an active event, from its own callback too. */
	event_free(x->ev);
	free(x);
}

const struct bench_driver bench_driver_libevent = {
	.name = "libevent",
	.version = event_get_version,
	.ring_init = lvt_ring_init,
	.ring_register = lvt_ring_register,
	.ring_poll = lvt_ring_poll,
	.ring_rearm = lvt_ring_rearm,
	.ring_fini = lvt_ring_fini,
	.timer_init = lvt_timer_init,
	.timer_add = lvt_timer_add,
	.timer_mod = lvt_timer_mod,
	.timer_cancel = lvt_timer_cancel,
	.timer_fini = lvt_timer_fini,
	.loop_new = lvt_loop_new,
	.loop_run = lvt_loop_run,
	.loop_stop = lvt_loop_stop,
	.loop_free = lvt_loop_free,
	.io_add = lvt_io_add,
	.io_set = lvt_io_set,
	.io_del = lvt_io_del,
};
