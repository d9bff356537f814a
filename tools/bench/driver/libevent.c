/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libevent.c - benchmark driver for libevent 2: one persistent read event
 * per fd (event_assign on the benchmark's own structs), its timeout re-armed
 * by event_add() with a new timeval, as in libevent's test/bench.c.
 */
#include <stdlib.h>

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
};
