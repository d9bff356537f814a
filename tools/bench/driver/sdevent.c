/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sdevent.c - benchmark driver for systemd's sd-event: an io source and a
 * time source per fd (1 µs accuracy, so no coalescing slack), re-armed with
 * sd_event_source_set_time_relative(). Sources are allocated by the
 * library, so re-registering means unref + add.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "../bench-util.h"
#include "driver.h"

struct sde_ring {
	sd_event *e;
	struct ring_ctx *ctx;
	sd_event_source **io;
	sd_event_source **tm;
};

static struct sde_ring *cur;

static int io_cb(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	(void)s;
	(void)fd;
	(void)revents;
	ring_fire(cur->ctx, (int)(intptr_t)arg);
	return 0;
}

static int tm_cb(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	(void)arg;
	return 0;
}

static int sde_ring_init(struct ring_ctx *ctx)
{
	struct sde_ring *r = calloc(1, sizeof(*r));

	if (!r || sd_event_new(&r->e) < 0)
		return -1;
	r->io = bench_calloc((size_t)ctx->n, sizeof(*r->io));
	r->tm = bench_calloc((size_t)ctx->n, sizeof(*r->tm));
	if (!r->io || !r->tm)
		return -1;
	r->ctx = ctx;
	ctx->drv = r;
	return 0;
}

static int sde_ring_register(struct ring_ctx *ctx)
{
	struct sde_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		r->io[i] = sd_event_source_disable_unref(r->io[i]);
		r->tm[i] = sd_event_source_disable_unref(r->tm[i]);
		if (sd_event_add_io(r->e, &r->io[i], ctx->fds[i], EPOLLIN, io_cb,
				    (void *)(intptr_t)i) < 0)
			return -1;
		if (ctx->timeouts &&
		    sd_event_add_time_relative(r->e, &r->tm[i], CLOCK_MONOTONIC,
					       (uint64_t)ring_timeout_ns() / 1000, 1, tm_cb,
					       NULL) < 0)
			return -1;
	}
	return 0;
}

static int sde_ring_poll(struct ring_ctx *ctx)
{
	struct sde_ring *r = ctx->drv;

	cur = r;
	return sd_event_run(r->e, 0);
}

static void sde_ring_rearm(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct sde_ring *r = ctx->drv;

	sd_event_source_set_time_relative(r->tm[idx], (uint64_t)tmo_ns / 1000);
}

static void sde_ring_fini(struct ring_ctx *ctx)
{
	struct sde_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		sd_event_source_disable_unref(r->io[i]);
		sd_event_source_disable_unref(r->tm[i]);
	}
	sd_event_unref(r->e);
	free(r->io);
	free(r->tm);
	free(r);
}

struct sde_timers {
	sd_event *e;
	sd_event_source **tm;
};

static int sde_timer_init(struct timer_ctx *ctx)
{
	struct sde_timers *t = calloc(1, sizeof(*t));

	if (!t || sd_event_new(&t->e) < 0)
		return -1;
	t->tm = bench_calloc((size_t)ctx->n, sizeof(*t->tm));
	if (!t->tm)
		return -1;
	ctx->drv = t;
	return 0;
}

static void sde_timer_add(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct sde_timers *t = ctx->drv;

	sd_event_add_time_relative(t->e, &t->tm[i], CLOCK_MONOTONIC, (uint64_t)after_ns / 1000,
				   1, tm_cb, NULL);
}

static void sde_timer_mod(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct sde_timers *t = ctx->drv;

	sd_event_source_set_time_relative(t->tm[i], (uint64_t)after_ns / 1000);
}

static void sde_timer_cancel(struct timer_ctx *ctx, long i)
{
	struct sde_timers *t = ctx->drv;

	t->tm[i] = sd_event_source_disable_unref(t->tm[i]);
}

static void sde_timer_fini(struct timer_ctx *ctx)
{
	struct sde_timers *t = ctx->drv;

	sd_event_unref(t->e);
	free(t->tm);
	free(t);
}

/* echo-bench: an io source and a oneshot time source per watcher. */
struct sde_io {
	sd_event_source *src, *tm;
	struct bench_io *io;
	sd_event *e;
};

static int sio_cb(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	struct sde_io *x = arg;

	(void)s;
	(void)fd;
	x->io->cb(x->io, revents);
	return 0;
}

static int stm_cb(sd_event_source *s, uint64_t usec, void *arg)
{
	struct sde_io *x = arg;

	(void)s;
	(void)usec;
	x->io->cb(x->io, 0);
	return 0;
}

static int sguard_cb(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)usec;
	*(int *)arg = 1;
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static struct bench_loop *sde_loop_new(void)
{
	sd_event *e = NULL;

	if (sd_event_new(&e) < 0)
		return NULL;
	return (struct bench_loop *)e;
}

static int sde_loop_run(struct bench_loop *loop, int64_t deadline_ns)
{
	sd_event *e = (sd_event *)loop;
	sd_event_source *g = NULL;
	int fired = 0, rc;

	rc = sd_event_add_time(e, &g, CLOCK_MONOTONIC, (uint64_t)deadline_ns / 1000, 1, sguard_cb,
			       &fired);
	if (rc < 0)
		return rc;
	rc = sd_event_loop(e);
	sd_event_source_disable_unref(g);
	return rc < 0 ? rc : fired;
}

static void sde_loop_stop(struct bench_loop *loop)
{
	sd_event_exit((sd_event *)loop, 0);
}

static void sde_loop_free(struct bench_loop *loop)
{
	sd_event_unref((sd_event *)loop);
}

static int sde_io_set(struct bench_io *io, uint32_t events, int64_t tmo_ns)
{
	struct sde_io *x = io->drv;
	int rc;

	if (events != io->events) {
		if (events == 0) {
			rc = sd_event_source_set_enabled(x->src, SD_EVENT_OFF);
		} else {
			rc = sd_event_source_set_io_events(x->src, events);
			if (rc >= 0 && io->events == 0)
				rc = sd_event_source_set_enabled(x->src, SD_EVENT_ON);
		}
		if (rc < 0)
			return rc;
		io->events = events;
	}
	if (tmo_ns < 0)
		return x->tm ? sd_event_source_set_enabled(x->tm, SD_EVENT_OFF) : 0;
	if (!x->tm)
		return sd_event_add_time_relative(x->e, &x->tm, CLOCK_MONOTONIC,
						  (uint64_t)tmo_ns / 1000, 1, stm_cb, x);
	rc = sd_event_source_set_time_relative(x->tm, (uint64_t)tmo_ns / 1000);
	return rc < 0 ? rc : sd_event_source_set_enabled(x->tm, SD_EVENT_ONESHOT);
}

static int sde_io_add(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		      int64_t tmo_ns)
{
	struct sde_io *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	x->e = (sd_event *)loop;
	x->io = io;
	io->drv = x;
	rc = sd_event_add_io(x->e, &x->src, io->fd, events ? events : EPOLLIN, sio_cb, x);
	if (rc < 0) {
		free(x);
		return rc;
	}
	io->events = events ? events : EPOLLIN;
	return sde_io_set(io, events, tmo_ns);
}

static void sde_io_del(struct bench_io *io)
{
	struct sde_io *x = io->drv;

	/* From a callback too: sd-event frees a source after its dispatch. */
	sd_event_source_disable_unref(x->src);
	sd_event_source_disable_unref(x->tm);
	free(x);
}

static const char *sde_version(void)
{
	return "libsystemd";
}

const struct bench_driver bench_driver_sdevent = {
	.name = "sd-event",
	.version = sde_version,
	.ring_init = sde_ring_init,
	.ring_register = sde_ring_register,
	.ring_poll = sde_ring_poll,
	.ring_rearm = sde_ring_rearm,
	.ring_fini = sde_ring_fini,
	.timer_init = sde_timer_init,
	.timer_add = sde_timer_add,
	.timer_mod = sde_timer_mod,
	.timer_cancel = sde_timer_cancel,
	.timer_fini = sde_timer_fini,
	.loop_new = sde_loop_new,
	.loop_run = sde_loop_run,
	.loop_stop = sde_loop_stop,
	.loop_free = sde_loop_free,
	.io_add = sde_io_add,
	.io_set = sde_io_set,
	.io_del = sde_io_del,
};
