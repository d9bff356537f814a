/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libuv.c - benchmark driver for libuv: uv_poll_t + uv_timer_t per fd,
 * timers re-armed with uv_timer_start() (millisecond resolution, counted
 * from the cached loop time).
 */
#include <stdlib.h>

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
};
