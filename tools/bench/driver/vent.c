/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vent.c - benchmark driver for vent: one struct event per fd (or per
 * timer), written the way a minivent program would be.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>

#include "../bench-util.h"
#include "driver.h"

struct vent_ring {
	struct dispatcher *dsp;
	struct ring_ctx *ctx;
	struct event *ev;
	bool added;
};

/* The ring context of the dispatcher being run (one per process). */
static struct vent_ring *cur_ring;

static struct timespec ns_to_ts(int64_t ns)
{
	return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

static int ring_cb(struct event *evt, uint32_t events)
{
	(void)events;
	if (evt->reason == REASON_EVENT_OCCURED)
		ring_fire(cur_ring->ctx, (int)(evt - cur_ring->ev));
	return EVENTCB_CONTINUE;
}

static int vent_ring_init(struct ring_ctx *ctx)
{
	struct vent_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->dsp = new_dispatcher(CLOCK_MONOTONIC);
	r->ev = bench_calloc((size_t)ctx->n, sizeof(*r->ev));
	if (!r->dsp || !r->ev)
		return -1;
	r->ctx = ctx;
	ctx->drv = r;
	cur_ring = r;
	return 0;
}

static int vent_ring_register(struct ring_ctx *ctx)
{
	struct vent_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		struct event *e = &r->ev[i];
		if (r->added)
			event_remove(e);
		*e = EVENT_ON_STACK(ring_cb, ctx->fds[i], EPOLLIN);
		if (ctx->timeouts)
			e->tmo = ns_to_ts(ring_timeout_ns());
		if (event_add(r->dsp, e) < 0)
			return -1;
	}
	r->added = true;
	return 0;
}

static int vent_ring_poll(struct ring_ctx *ctx)
{
	struct vent_ring *r = ctx->drv;

	return vent_wait(r->dsp, 0, NULL);
}

static void vent_ring_rearm(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct vent_ring *r = ctx->drv;
	struct timespec ts = ns_to_ts(tmo_ns);

	event_mod_timeout(&r->ev[idx], &ts);
}

static void vent_ring_fini(struct ring_ctx *ctx)
{
	struct vent_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++)
		r->ev[i].cleanup = NULL;
	free_dispatcher(r->dsp);
	free(r->ev);
	free(r);
}

struct vent_timers {
	struct dispatcher *dsp;
	struct event *ev;
	/* --from callback: the always-ready event and what its callback does */
	struct event io;
	int efd;
	struct timer_ctx *ctx;
	void (*work)(struct timer_ctx *ctx);
};

static int vtimer_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	return EVENTCB_CONTINUE;
}

static int vtimer_io_cb(struct event *evt, uint32_t events)
{
	struct vent_timers *t = (struct vent_timers *)((char *)evt - offsetof(struct vent_timers, io));

	(void)events;
	t->work(t->ctx);
	return EVENTCB_CONTINUE;
}

static int vent_timer_batch(struct timer_ctx *ctx, void (*work)(struct timer_ctx *ctx))
{
	struct vent_timers *t = ctx->drv;

	if (t->efd < 0) {
		t->efd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
		if (t->efd < 0)
			return -1;
		t->io = EVENT_ON_STACK(vtimer_io_cb, t->efd, EPOLLIN);
		t->io.cleanup = NULL;
		if (event_add(t->dsp, &t->io) < 0)
			return -1;
	}
	t->ctx = ctx;
	t->work = work;
	return vent_wait(t->dsp, 0, NULL) < 0 ? -1 : 0;
}

static int vent_timer_init(struct timer_ctx *ctx)
{
	struct vent_timers *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->efd = -1;
	t->dsp = new_dispatcher(CLOCK_MONOTONIC);
	t->ev = bench_calloc((size_t)ctx->n, sizeof(*t->ev));
	if (!t->dsp || !t->ev)
		return -1;
	ctx->drv = t;
	return 0;
}

static void vent_timer_add(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct vent_timers *t = ctx->drv;
	struct event *e = &t->ev[i];

	*e = TIMER_EVENT_ON_STACK(vtimer_cb, 0);
	e->cleanup = NULL;
	e->tmo = ns_to_ts(after_ns);
	event_add(t->dsp, e);
}

static void vent_timer_mod(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct vent_timers *t = ctx->drv;
	struct timespec ts = ns_to_ts(after_ns);

	event_mod_timeout(&t->ev[i], &ts);
}

static void vent_timer_cancel(struct timer_ctx *ctx, long i)
{
	struct vent_timers *t = ctx->drv;

	event_remove(&t->ev[i]);
}

static void vent_timer_fini(struct timer_ctx *ctx)
{
	struct vent_timers *t = ctx->drv;

	free_dispatcher(t->dsp);
	if (t->efd >= 0)
		close(t->efd);
	free(t->ev);
	free(t);
}

/* echo-bench: one struct event per watcher, mask and timeout per step. */
struct vent_io {
	struct event e; /* first */
	struct bench_io *io;
};

struct vent_guard {
	struct event e; /* first */
	bool fired;
};

static struct timespec tmo_to_ts(int64_t tmo_ns)
{
	return tmo_ns >= 0 ? ns_to_ts(tmo_ns) : (struct timespec){0, 0};
}

static int vio_cb(struct event *evt, uint32_t events)
{
	struct vent_io *w = (struct vent_io *)evt;

	/* May remove and free @evt: vent then ignores the return value. */
	w->io->cb(w->io, evt->reason == REASON_TIMEOUT ? 0 : events);
	return EVENTCB_CONTINUE;
}

static int vguard_cb(struct event *evt, uint32_t events)
{
	(void)events;
	((struct vent_guard *)evt)->fired = true;
	vent_loop_stop(evt->dsp);
	return EVENTCB_REMOVE;
}

static struct bench_loop *vent_loop_new(void)
{
	return (struct bench_loop *)new_dispatcher(CLOCK_MONOTONIC);
}

static int vent_loop_run(struct bench_loop *loop, int64_t deadline_ns)
{
	struct dispatcher *dsp = (struct dispatcher *)loop;
	struct vent_guard g = {.e = TIMER_EVENT_ON_STACK(vguard_cb, 0)};
	int rc;

	g.e.cleanup = NULL;
	g.e.flags = TMO_ABS;
	g.e.tmo = ns_to_ts(deadline_ns);
	if ((rc = event_add(dsp, &g.e)) < 0)
		return rc;
	rc = event_loop(dsp, NULL, NULL);
	if (!g.fired)
		event_remove(&g.e);
	return rc < 0 ? rc : g.fired;
}

static void vent_loop_stop_(struct bench_loop *loop)
{
	vent_loop_stop((struct dispatcher *)loop);
}

static void vent_loop_free(struct bench_loop *loop)
{
	free_dispatcher((struct dispatcher *)loop);
}

static int vent_io_add(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		       int64_t tmo_ns)
{
	struct vent_io *w = malloc(sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->e = EVENT_ON_STACK(vio_cb, io->fd, events);
	w->e.cleanup = NULL;
	w->e.tmo = tmo_to_ts(tmo_ns);
	w->io = io;
	io->drv = w;
	io->events = events;
	if ((rc = event_add((struct dispatcher *)loop, &w->e)) < 0)
		free(w);
	return rc;
}

static int vent_io_set(struct bench_io *io, uint32_t events, int64_t tmo_ns)
{
	struct vent_io *w = io->drv;
	struct timespec ts = tmo_to_ts(tmo_ns);
	int rc;

	w->e.ep.events = events;
	io->events = events;
	if ((rc = event_modify(&w->e)) < 0)
		return rc;
	return event_mod_timeout(&w->e, &ts);
}

static void vent_io_del(struct bench_io *io)
{
	struct vent_io *w = io->drv;

	event_remove(&w->e);
	free(w);
}

const struct bench_driver bench_driver_vent = {
	.name = "vent",
	.version = vent_version,
	.ring_init = vent_ring_init,
	.ring_register = vent_ring_register,
	.ring_poll = vent_ring_poll,
	.ring_rearm = vent_ring_rearm,
	.ring_fini = vent_ring_fini,
	.timer_init = vent_timer_init,
	.timer_add = vent_timer_add,
	.timer_mod = vent_timer_mod,
	.timer_cancel = vent_timer_cancel,
	.timer_fini = vent_timer_fini,
	.loop_new = vent_loop_new,
	.loop_run = vent_loop_run,
	.loop_stop = vent_loop_stop_,
	.loop_free = vent_loop_free,
	.io_add = vent_io_add,
	.io_set = vent_io_set,
	.io_del = vent_io_del,
	.timer_batch = vent_timer_batch,
};
