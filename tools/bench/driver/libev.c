/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libev.c - benchmark drivers for libev: ev_io + ev_timer per fd, timers
 * re-armed with ev_timer_again() (libev's recommended idiom).
 *
 * Two drivers: "libev" counts timeouts from the cached loop time, as libev
 * does by default (a timeout armed long after the loop last woke fires
 * early by that much); "libev-now" calls ev_now_update() before every arm
 * and re-arm, which gives the guarantee vent gives (never early) at the
 * price of a clock read per arm.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <ev.h>

#include "../bench-util.h"
#include "driver.h"

struct lev_ring {
	struct ev_loop *loop;
	struct ring_ctx *ctx;
	ev_io *io;
	ev_timer *tm;
	bool added;
};

static struct lev_ring *cur;

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	ring_fire(cur->ctx, (int)(w - cur->io));
}

static void tm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static int lev_ring_init(struct ring_ctx *ctx)
{
	struct lev_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->loop = ev_loop_new(EVBACKEND_EPOLL);
	r->io = bench_calloc((size_t)ctx->n, sizeof(*r->io));
	r->tm = bench_calloc((size_t)ctx->n, sizeof(*r->tm));
	if (!r->loop || !r->io || !r->tm)
		return -1;
	r->ctx = ctx;
	ctx->drv = r;
	cur = r;
	return 0;
}

static int lev_ring_register(struct ring_ctx *ctx)
{
	struct lev_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		if (r->added) {
			ev_io_stop(r->loop, &r->io[i]);
			ev_timer_stop(r->loop, &r->tm[i]);
		}
		ev_io_init(&r->io[i], io_cb, ctx->fds[i], EV_READ);
		ev_io_start(r->loop, &r->io[i]);
		if (ctx->timeouts) {
			ev_timer_init(&r->tm[i], tm_cb, 0., ring_timeout_ns() / 1e9);
			ev_timer_again(r->loop, &r->tm[i]);
		}
	}
	r->added = true;
	return 0;
}

static int lev_ring_poll(struct ring_ctx *ctx)
{
	struct lev_ring *r = ctx->drv;

	return ev_run(r->loop, EVRUN_NOWAIT);
}

static void lev_ring_rearm(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct lev_ring *r = ctx->drv;

	r->tm[idx].repeat = (ev_tstamp)tmo_ns / 1e9;
	ev_timer_again(r->loop, &r->tm[idx]);
}

static void lev_ring_fini(struct ring_ctx *ctx)
{
	struct lev_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		ev_io_stop(r->loop, &r->io[i]);
		ev_timer_stop(r->loop, &r->tm[i]);
	}
	ev_loop_destroy(r->loop);
	free(r->io);
	free(r->tm);
	free(r);
}

struct lev_timers {
	struct ev_loop *loop;
	ev_timer *tm;
	/* --from callback: the always-ready watcher and what its callback does */
	ev_io io;
	int efd;
	struct timer_ctx *ctx;
	void (*work)(struct timer_ctx *ctx);
};

static void lev_timer_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lev_timers *t = (struct lev_timers *)((char *)w - offsetof(struct lev_timers, io));

	(void)loop;
	(void)revents;
	t->work(t->ctx);
}

static int lev_timer_batch(struct timer_ctx *ctx, void (*work)(struct timer_ctx *ctx))
{
	struct lev_timers *t = ctx->drv;

	if (t->efd < 0) {
		t->efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
		if (t->efd < 0)
			return -1;
		ev_io_init(&t->io, lev_timer_io_cb, t->efd, EV_READ);
		ev_io_start(t->loop, &t->io);
	}
	t->ctx = ctx;
	t->work = work;
	ev_run(t->loop, EVRUN_NOWAIT);
	return 0;
}

static int lev_timer_init(struct timer_ctx *ctx)
{
	struct lev_timers *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->efd = -1;
	t->loop = ev_loop_new(EVBACKEND_EPOLL);
	t->tm = bench_calloc((size_t)ctx->n, sizeof(*t->tm));
	if (!t->loop || !t->tm)
		return -1;
	ctx->drv = t;
	return 0;
}

static void lev_timer_add(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct lev_timers *t = ctx->drv;

	ev_timer_init(&t->tm[i], tm_cb, (ev_tstamp)after_ns / 1e9, 0.);
	ev_timer_start(t->loop, &t->tm[i]);
}

static void lev_timer_mod(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct lev_timers *t = ctx->drv;

	t->tm[i].repeat = (ev_tstamp)after_ns / 1e9;
	ev_timer_again(t->loop, &t->tm[i]);
}

static void lev_timer_add_now(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct lev_timers *t = ctx->drv;

	ev_now_update(t->loop);
	lev_timer_add(ctx, i, after_ns);
}

static void lev_timer_mod_now(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct lev_timers *t = ctx->drv;

	ev_now_update(t->loop);
	lev_timer_mod(ctx, i, after_ns);
}

static void lev_ring_rearm_now(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct lev_ring *r = ctx->drv;

	ev_now_update(r->loop);
	lev_ring_rearm(ctx, idx, tmo_ns);
}

static void lev_timer_cancel(struct timer_ctx *ctx, long i)
{
	struct lev_timers *t = ctx->drv;

	ev_timer_stop(t->loop, &t->tm[i]);
}

static void lev_timer_fini(struct timer_ctx *ctx)
{
	struct lev_timers *t = ctx->drv;

	if (t->efd >= 0) {
		ev_io_stop(t->loop, &t->io);
		close(t->efd);
	}
	ev_loop_destroy(t->loop);
	free(t->tm);
	free(t);
}

/* echo-bench: an ev_io and an ev_timer per watcher (ev_timer_again). */
struct lev_io {
	ev_io w; /* first */
	ev_timer t;
	struct bench_io *io;
	struct ev_loop *loop;
	bool now; /* libev-now: ev_now_update() before every arm */
};

static void eio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct lev_io *x = (struct lev_io *)w;
	uint32_t r = 0;

	(void)loop;
	if (revents & EV_READ)
		r |= EPOLLIN;
	if (revents & EV_WRITE)
		r |= EPOLLOUT;
	if (revents & EV_ERROR)
		r |= EPOLLERR;
	x->io->cb(x->io, r);
}

static void etm_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct lev_io *x = t->data;

	(void)loop;
	(void)revents;
	x->io->cb(x->io, 0);
}

static void eguard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	*(int *)t->data = 1;
	ev_break(loop, EVBREAK_ALL);
}

static int ev_mask(uint32_t events)
{
	return (events & EPOLLIN ? EV_READ : 0) | (events & EPOLLOUT ? EV_WRITE : 0);
}

static struct bench_loop *lev_loop_new(void)
{
	return (struct bench_loop *)ev_loop_new(EVBACKEND_EPOLL);
}

static int lev_loop_run(struct bench_loop *loop, int64_t deadline_ns)
{
	struct ev_loop *l = (struct ev_loop *)loop;
	ev_timer g;
	int fired = 0;

	ev_now_update(l);
	ev_timer_init(&g, eguard_cb, (ev_tstamp)(deadline_ns - bench_now_ns()) / 1e9, 0.);
	g.data = &fired;
	ev_timer_start(l, &g);
	ev_run(l, 0);
	ev_timer_stop(l, &g);
	return fired;
}

static void lev_loop_stop(struct bench_loop *loop)
{
	ev_break((struct ev_loop *)loop, EVBREAK_ALL);
}

static void lev_loop_free(struct bench_loop *loop)
{
	ev_loop_destroy((struct ev_loop *)loop);
}

static int lev_io_set(struct bench_io *io, uint32_t events, int64_t tmo_ns)
{
	struct lev_io *x = io->drv;

	if (events != io->events) {
		ev_io_stop(x->loop, &x->w);
		ev_io_set(&x->w, io->fd, ev_mask(events));
		if (events)
			ev_io_start(x->loop, &x->w);
		io->events = events;
	}
	if (tmo_ns < 0) {
		ev_timer_stop(x->loop, &x->t);
	} else {
		if (x->now)
			ev_now_update(x->loop);
		x->t.repeat = (ev_tstamp)tmo_ns / 1e9;
		ev_timer_again(x->loop, &x->t);
	}
	return 0;
}

static int lev_io_add_(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		       int64_t tmo_ns, bool now)
{
	struct lev_io *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->io = io;
	x->loop = (struct ev_loop *)loop;
	x->now = now;
	ev_io_init(&x->w, eio_cb, io->fd, 0);
	ev_init(&x->t, etm_cb);
	x->t.data = x;
	io->drv = x;
	io->events = 0;
	return lev_io_set(io, events, tmo_ns);
}

static int lev_io_add(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		      int64_t tmo_ns)
{
	return lev_io_add_(loop, io, events, tmo_ns, false);
}

static int lev_io_add_now(struct bench_loop *loop, struct bench_io *io, uint32_t events,
			  int64_t tmo_ns)
{
	return lev_io_add_(loop, io, events, tmo_ns, true);
}

static void lev_io_del(struct bench_io *io)
{
	struct lev_io *x = io->drv;

	ev_io_stop(x->loop, &x->w);
	ev_timer_stop(x->loop, &x->t);
	free(x);
}

static const char *lev_version(void)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%d.%d", ev_version_major(), ev_version_minor());
	return buf;
}

const struct bench_driver bench_driver_libev = {
	.name = "libev",
	.version = lev_version,
	.ring_init = lev_ring_init,
	.ring_register = lev_ring_register,
	.ring_poll = lev_ring_poll,
	.ring_rearm = lev_ring_rearm,
	.ring_fini = lev_ring_fini,
	.timer_init = lev_timer_init,
	.timer_add = lev_timer_add,
	.timer_mod = lev_timer_mod,
	.timer_cancel = lev_timer_cancel,
	.timer_fini = lev_timer_fini,
	.loop_new = lev_loop_new,
	.loop_run = lev_loop_run,
	.loop_stop = lev_loop_stop,
	.loop_free = lev_loop_free,
	.io_add = lev_io_add,
	.io_set = lev_io_set,
	.io_del = lev_io_del,
	.timer_batch = lev_timer_batch,
};

const struct bench_driver bench_driver_libev_now = {
	.name = "libev-now",
	.version = lev_version,
	.ring_init = lev_ring_init,
	.ring_register = lev_ring_register,
	.ring_poll = lev_ring_poll,
	.ring_rearm = lev_ring_rearm_now,
	.ring_fini = lev_ring_fini,
	.timer_init = lev_timer_init,
	.timer_add = lev_timer_add_now,
	.timer_mod = lev_timer_mod_now,
	.timer_cancel = lev_timer_cancel,
	.timer_fini = lev_timer_fini,
	.loop_new = lev_loop_new,
	.loop_run = lev_loop_run,
	.loop_stop = lev_loop_stop,
	.loop_free = lev_loop_free,
	.io_add = lev_io_add_now,
	.io_set = lev_io_set,
	.io_del = lev_io_del,
	.timer_batch = lev_timer_batch,
};
