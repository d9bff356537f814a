/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libuv.c - benchmark driver for libuv: uv_poll_t + uv_timer_t per fd,
 * timers re-armed with uv_timer_start() (millisecond resolution, counted
 * from the cached loop time).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include <uv.h>

#include "../bench-util.h"
#include "driver.h"

struct luv_ring {
	uv_loop_t loop;
	struct ring_ctx *ctx;
	uv_poll_t *poll;
	uv_timer_t *tm;
};

static struct luv_ring *cur;

static void poll_cb(uv_poll_t *h, int status, int events)
{
	(void)status;
	if (events & UV_READABLE)
		ring_fire(cur->ctx, (int)(h - cur->poll));
}

static void tm_cb(uv_timer_t *h)
{
	(void)h;
}

static uint64_t ns_to_ms(int64_t ns)
{
	return (uint64_t)(ns / 1000000);
}

static int luv_ring_init(struct ring_ctx *ctx)
{
	struct luv_ring *r = calloc(1, sizeof(*r));

	if (!r || uv_loop_init(&r->loop) < 0)
		return -1;
	r->poll = bench_calloc((size_t)ctx->n, sizeof(*r->poll));
	r->tm = bench_calloc((size_t)ctx->n, sizeof(*r->tm));
	if (!r->poll || !r->tm)
		return -1;
	for (int i = 0; i < ctx->n; i++) {
		if (uv_poll_init(&r->loop, &r->poll[i], ctx->fds[i]) < 0 ||
		    uv_timer_init(&r->loop, &r->tm[i]) < 0)
			return -1;
	}
	r->ctx = ctx;
	ctx->drv = r;
	cur = r;
	return 0;
}

static int luv_ring_register(struct ring_ctx *ctx)
{
	struct luv_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		uv_poll_stop(&r->poll[i]);
		uv_timer_stop(&r->tm[i]);
		if (uv_poll_start(&r->poll[i], UV_READABLE, poll_cb) < 0)
			return -1;
		if (ctx->timeouts)
			uv_timer_start(&r->tm[i], tm_cb, ns_to_ms(ring_timeout_ns()), 0);
	}
	return 0;
}

static int luv_ring_poll(struct ring_ctx *ctx)
{
	struct luv_ring *r = ctx->drv;

	return uv_run(&r->loop, UV_RUN_NOWAIT);
}

static void luv_ring_rearm(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct luv_ring *r = ctx->drv;

	uv_timer_start(&r->tm[idx], tm_cb, ns_to_ms(tmo_ns), 0);
}

static void luv_ring_fini(struct ring_ctx *ctx)
{
	struct luv_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		uv_close((uv_handle_t *)&r->poll[i], NULL);
		uv_close((uv_handle_t *)&r->tm[i], NULL);
	}
	uv_run(&r->loop, UV_RUN_DEFAULT);
	uv_loop_close(&r->loop);
	free(r->poll);
	free(r->tm);
	free(r);
}

struct luv_timers {
	uv_loop_t loop;
	uv_timer_t *tm;
	long n;
};

static int luv_timer_init(struct timer_ctx *ctx)
{
	struct luv_timers *t = calloc(1, sizeof(*t));

	if (!t || uv_loop_init(&t->loop) < 0)
		return -1;
	t->tm = bench_calloc((size_t)ctx->n, sizeof(*t->tm));
	if (!t->tm)
		return -1;
	for (long i = 0; i < ctx->n; i++)
		uv_timer_init(&t->loop, &t->tm[i]);
	t->n = ctx->n;
	ctx->drv = t;
	return 0;
}

static void luv_timer_add(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct luv_timers *t = ctx->drv;

	uv_timer_start(&t->tm[i], tm_cb, ns_to_ms(after_ns), 0);
}

static void luv_timer_cancel(struct timer_ctx *ctx, long i)
{
	struct luv_timers *t = ctx->drv;

	uv_timer_stop(&t->tm[i]);
}

static void luv_timer_fini(struct timer_ctx *ctx)
{
	struct luv_timers *t = ctx->drv;

	for (long i = 0; i < t->n; i++)
		uv_close((uv_handle_t *)&t->tm[i], NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	uv_loop_close(&t->loop);
	free(t->tm);
	free(t);
}

/* echo-bench: a uv_poll_t and a uv_timer_t per watcher. */
struct luv_io {
	uv_poll_t p; /* first */
	uv_timer_t t;
	struct bench_io *io;
	int closed;
};

struct luv_loop {
	uv_loop_t loop; /* first */
	uv_timer_t guard;
	int fired;
};

static void upoll_cb(uv_poll_t *h, int status, int events)
{
	struct luv_io *x = (struct luv_io *)h;
	uint32_t r = 0;

	if (status < 0)
		r |= EPOLLERR;
	if (events & UV_READABLE)
		r |= EPOLLIN;
	if (events & UV_WRITABLE)
		r |= EPOLLOUT;
	x->io->cb(x->io, r ? r : EPOLLERR);
}

static void utm_cb(uv_timer_t *t)
{
	struct luv_io *x = t->data;

	x->io->cb(x->io, 0);
}

static void uguard_cb(uv_timer_t *t)
{
	struct luv_loop *l = t->data;

	l->fired = 1;
	uv_stop(&l->loop);
}

static struct bench_loop *luv_loop_new(void)
{
	struct luv_loop *l = calloc(1, sizeof(*l));

	if (!l || uv_loop_init(&l->loop) < 0 || uv_timer_init(&l->loop, &l->guard) < 0) {
		free(l);
		return NULL;
	}
	l->guard.data = l;
	return (struct bench_loop *)l;
}

static int luv_loop_run(struct bench_loop *loop, int64_t deadline_ns)
{
	struct luv_loop *l = (struct luv_loop *)loop;
	int64_t left = deadline_ns - bench_now_ns();

	uv_update_time(&l->loop);
	uv_timer_start(&l->guard, uguard_cb, left > 0 ? ns_to_ms(left) : 0, 0);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&l->guard);
	return l->fired;
}

static void luv_loop_stop(struct bench_loop *loop)
{
	uv_stop(&((struct luv_loop *)loop)->loop);
}

static void luv_close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void luv_loop_free(struct bench_loop *loop)
{
	struct luv_loop *l = (struct luv_loop *)loop;

	uv_walk(&l->loop, luv_close_any, NULL);
	uv_run(&l->loop, UV_RUN_DEFAULT);
	uv_loop_close(&l->loop);
	free(l);
}

static int luv_io_set(struct bench_io *io, uint32_t events, int64_t tmo_ns)
{
	struct luv_io *x = io->drv;
	int rc = 0;

	if (events != io->events) {
		int m = (events & EPOLLIN ? UV_READABLE : 0) | (events & EPOLLOUT ? UV_WRITABLE : 0);
		rc = m ? uv_poll_start(&x->p, m, upoll_cb) : uv_poll_stop(&x->p);
		if (rc < 0)
			return rc;
		io->events = events;
	}
	if (tmo_ns < 0)
		return uv_timer_stop(&x->t);
	return uv_timer_start(&x->t, utm_cb, ns_to_ms(tmo_ns), 0);
}

static int luv_io_add(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		      int64_t tmo_ns)
{
	struct luv_loop *l = (struct luv_loop *)loop;
	struct luv_io *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	if ((rc = uv_poll_init(&l->loop, &x->p, io->fd)) < 0) {
		free(x);
		return rc;
	}
	uv_timer_init(&l->loop, &x->t);
	x->t.data = x;
	x->io = io;
	io->drv = x;
	io->events = 0;
	return luv_io_set(io, events, tmo_ns);
}

static void luv_io_closed(uv_handle_t *h)
{
	struct luv_io *x = h->data;

	if (++x->closed == 2)
		free(x);
}

static void luv_io_del(struct bench_io *io)
{
	struct luv_io *x = io->drv;

	/* Closing the poll handle takes the fd out of epoll at once. */
	x->p.data = x;
	uv_close((uv_handle_t *)&x->p, luv_io_closed);
	uv_close((uv_handle_t *)&x->t, luv_io_closed);
}

const struct bench_driver bench_driver_libuv = {
	.name = "libuv",
	.version = uv_version_string,
	.ring_init = luv_ring_init,
	.ring_register = luv_ring_register,
	.ring_poll = luv_ring_poll,
	.ring_rearm = luv_ring_rearm,
	.ring_fini = luv_ring_fini,
	.timer_init = luv_timer_init,
	.timer_add = luv_timer_add,
	.timer_mod = luv_timer_add,
	.timer_cancel = luv_timer_cancel,
	.timer_fini = luv_timer_fini,
	.loop_new = luv_loop_new,
	.loop_run = luv_loop_run,
	.loop_stop = luv_loop_stop,
	.loop_free = luv_loop_free,
	.io_add = luv_io_add,
	.io_set = luv_io_set,
	.io_del = luv_io_del,
};
