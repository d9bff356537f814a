/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * raw.c - the library-free reference: plain epoll, an indexed 4-ary heap of
 * deadlines and one timerfd, written directly for the benchmark.
 *
 * Same guarantees as vent, so the comparison measures library overhead and
 * nothing else: relative timeouts are taken from a fresh clock read (no
 * timeout fires early), and the timerfd is re-armed only when the earliest
 * deadline moved earlier (moving a deadline later costs no syscall).
 *
 * For echo-bench it is the library-free limit: epoll_ctl() only when a mask
 * changes, no per-step timeouts (a timerfd only for a pause with mask 0),
 * the guard a timerfd in the epoll set.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#define NOT_QUEUED UINT32_MAX
#define BATCH 256

struct heap_entry {
	int64_t when;
	uint32_t id;
};

struct raw_heap {
	struct heap_entry *h;
	uint32_t *pos; /* id -> heap index (the user's record would hold it) */
	size_t len, cap;
	int tfd;
	int64_t armed; /* what the timerfd holds; INT64_MAX: nothing */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void heap_place(struct raw_heap *q, size_t i, struct heap_entry e)
{
	q->h[i] = e;
	q->pos[e.id] = (uint32_t)i;
}

static void sift_up(struct raw_heap *q, size_t i)
{
	struct heap_entry e = q->h[i];

	while (i > 0) {
		size_t p = (i - 1) / 4;
		if (q->h[p].when <= e.when)
			break;
		heap_place(q, i, q->h[p]);
		i = p;
	}
	heap_place(q, i, e);
}

static void sift_down(struct raw_heap *q, size_t i)
{
	struct heap_entry e = q->h[i];

	for (;;) {
		size_t c = 4 * i + 1, best = c;
		if (c >= q->len)
			break;
		size_t end = c + 4 < q->len ? c + 4 : q->len;
		for (size_t k = c + 1; k < end; k++)
			if (q->h[k].when < q->h[best].when)
				best = k;
		if (q->h[best].when >= e.when)
			break;
		heap_place(q, i, q->h[best]);
		i = best;
	}
	heap_place(q, i, e);
}

static int heap_init(struct raw_heap *q, size_t ids)
{
	q->pos = malloc(ids * sizeof(*q->pos));
	q->h = NULL;
	q->len = q->cap = 0;
	q->armed = INT64_MAX;
	q->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (!q->pos || q->tfd < 0)
		return -1;
	for (size_t i = 0; i < ids; i++)
		q->pos[i] = NOT_QUEUED;
	return 0;
}

static void heap_fini(struct raw_heap *q)
{
	free(q->h);
	free(q->pos);
	close(q->tfd);
}

static void heap_set(struct raw_heap *q, uint32_t id, int64_t when)
{
	uint32_t i = q->pos[id];

	if (i != NOT_QUEUED) {
		int64_t old = q->h[i].when;
		q->h[i].when = when;
		if (when < old)
			sift_up(q, i);
		else
			sift_down(q, i);
		return;
	}
	if (q->len == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->h = realloc(q->h, q->cap * sizeof(*q->h));
	}
	q->h[q->len] = (struct heap_entry){when, id};
	sift_up(q, q->len++);
}

static void heap_erase(struct raw_heap *q, uint32_t id)
{
	uint32_t i = q->pos[id];

	if (i == NOT_QUEUED)
		return;
	q->pos[id] = NOT_QUEUED;
	if (i != --q->len) {
		heap_place(q, i, q->h[q->len]);
		if (i > 0 && q->h[i].when < q->h[(i - 1) / 4].when)
			sift_up(q, i);
		else
			sift_down(q, i);
	}
}

/* Lazy re-arm: a syscall only when the top moved earlier than the kernel's. */
static void heap_arm(struct raw_heap *q)
{
	if (q->len == 0 || q->h[0].when >= q->armed)
		return;
	struct itimerspec its = {.it_value = {q->h[0].when / 1000000000,
					      q->h[0].when % 1000000000}};
	timerfd_settime(q->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	q->armed = q->h[0].when;
}

/* ------------------------------------------------------------------------ */

struct raw_ring {
	int ep;
	struct raw_heap q;
	bool added;
};

static int raw_ring_init(struct ring_ctx *ctx)
{
	struct raw_ring *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	if (r->ep < 0 || heap_init(&r->q, (size_t)ctx->n) < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->q.tfd, &ev) < 0)
		return -1;
	ctx->drv = r;
	return 0;
}

static int raw_ring_register(struct ring_ctx *ctx)
{
	struct raw_ring *r = ctx->drv;

	for (int i = 0; i < ctx->n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
		if (r->added) {
			epoll_ctl(r->ep, EPOLL_CTL_DEL, ctx->fds[i], NULL);
			heap_erase(&r->q, (uint32_t)i);
		}
		if (epoll_ctl(r->ep, EPOLL_CTL_ADD, ctx->fds[i], &ev) < 0)
			return -1;
		if (ctx->timeouts) {
			heap_set(&r->q, (uint32_t)i, now_ns() + ring_timeout_ns());
			heap_arm(&r->q);
		}
	}
	r->added = true;
	return 0;
}

static int raw_ring_poll(struct ring_ctx *ctx)
{
	struct raw_ring *r = ctx->drv;
	struct epoll_event evs[BATCH];
	int n = epoll_wait(r->ep, evs, BATCH, 0);

	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == UINT64_MAX) {
			/* Expired: the ring's timeouts never do; drop the record. */
			uint64_t x;
			ssize_t rr = read(r->q.tfd, &x, sizeof(x));
			(void)rr;
			r->q.armed = INT64_MAX;
			continue;
		}
		ring_fire(ctx, (int)evs[i].data.u64);
	}
	heap_arm(&r->q);
	return n;
}

static void raw_ring_rearm(struct ring_ctx *ctx, int idx, int64_t tmo_ns)
{
	struct raw_ring *r = ctx->drv;

	heap_set(&r->q, (uint32_t)idx, now_ns() + tmo_ns);
}

static void raw_ring_fini(struct ring_ctx *ctx)
{
	struct raw_ring *r = ctx->drv;

	heap_fini(&r->q);
	close(r->ep);
	free(r);
}

/* ------------------------------------------------------------------------ */

static int raw_timer_init(struct timer_ctx *ctx)
{
	struct raw_heap *q = calloc(1, sizeof(*q));

	/* The position table stands for a field in the user's timer record. */
	if (!q || heap_init(q, (size_t)ctx->n) < 0)
		return -1;
	ctx->drv = q;
	return 0;
}

static void raw_timer_add(struct timer_ctx *ctx, long i, int64_t after_ns)
{
	struct raw_heap *q = ctx->drv;

	heap_set(q, (uint32_t)i, now_ns() + after_ns);
	heap_arm(q);
}

static void raw_timer_cancel(struct timer_ctx *ctx, long i)
{
	heap_erase(ctx->drv, (uint32_t)i);
}

static void raw_timer_fini(struct timer_ctx *ctx)
{
	heap_fini(ctx->drv);
	free(ctx->drv);
}

/* ------------------------------------------------------------------------ */

struct raw_loop {
	int ep;
	bool stop;
	bool dispatching;
	struct raw_io *dead; /* io_del()'d during a batch: freed after it */
};

struct raw_io {
	struct bench_io *io;
	struct raw_loop *l;
	uint32_t mask; /* registered with epoll; 0: not in the set */
	int tfd;       /* the pause timer, created on first use */
	bool armed;
	bool dead;
	struct raw_io *next_dead;
};

/* epoll_data: the raw_io, with bit 0 set for its timerfd; 0 for the guard. */
#define RAW_TIMER_TAG 1u

static struct bench_loop *raw_loop_new(void)
{
	struct raw_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0) {
		free(l);
		return NULL;
	}
	return (struct bench_loop *)l;
}

static void raw_bury(struct raw_loop *l)
{
	while (l->dead) {
		struct raw_io *w = l->dead;
		l->dead = w->next_dead;
		free(w);
	}
}

static int raw_loop_run(struct bench_loop *loop, int64_t deadline_ns)
{
	struct raw_loop *l = (struct raw_loop *)loop;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0}, evs[BATCH];
	struct itimerspec its = {.it_value = {deadline_ns / 1000000000, deadline_ns % 1000000000}};
	int gfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int fired = 0, rc = 0;

	if (gfd < 0 || timerfd_settime(gfd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ||
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, gfd, &ev) < 0) {
		rc = -errno;
		if (gfd >= 0)
			close(gfd);
		return rc;
	}
	l->stop = false;
	while (!l->stop) {
		int n = epoll_wait(l->ep, evs, BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		l->dispatching = true;
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			struct raw_io *w = (struct raw_io *)(uintptr_t)(d & ~(uint64_t)RAW_TIMER_TAG);
			if (d == 0) {
				fired = 1;
				l->stop = true;
			} else if (w->dead) {
				continue;
			} else if (d & RAW_TIMER_TAG) {
				uint64_t x;
				if (read(w->tfd, &x, sizeof(x)) < 0)
					continue;
				w->armed = false;
				w->io->cb(w->io, 0);
			} else {
				w->io->cb(w->io, evs[i].events);
			}
		}
		l->dispatching = false;
		raw_bury(l);
	}
	close(gfd);
	return rc < 0 ? rc : fired;
}

static void raw_loop_stop(struct bench_loop *loop)
{
	((struct raw_loop *)loop)->stop = true;
}

static void raw_loop_free(struct bench_loop *loop)
{
	struct raw_loop *l = (struct raw_loop *)loop;

	close(l->ep);
	free(l);
}

static int raw_pause(struct raw_io *w, int64_t tmo_ns)
{
	struct itimerspec its = {.it_value = {tmo_ns / 1000000000, tmo_ns % 1000000000}};

	if (w->tfd < 0) {
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.u64 = (uint64_t)(uintptr_t)w | RAW_TIMER_TAG};
		w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (w->tfd < 0 || epoll_ctl(w->l->ep, EPOLL_CTL_ADD, w->tfd, &ev) < 0)
			return -errno;
	}
	if (tmo_ns == 0)
		its.it_value.tv_nsec = 1; /* 0 would disarm */
	if (timerfd_settime(w->tfd, 0, &its, NULL) < 0)
		return -errno;
	w->armed = true;
	return 0;
}

static int raw_io_set(struct bench_io *io, uint32_t events, int64_t tmo_ns)
{
	struct raw_io *w = io->drv;

	io->events = events;
	if (events != w->mask) {
		struct epoll_event ev = {.events = events, .data.ptr = w};
		int op = w->mask == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
		if (epoll_ctl(w->l->ep, op, io->fd, &ev) < 0)
			return -errno;
		w->mask = events;
	}
	if (events == 0 && tmo_ns >= 0)
		return raw_pause(w, tmo_ns);
	if (w->armed) {
		struct itimerspec off = {{0, 0}, {0, 0}};
		timerfd_settime(w->tfd, 0, &off, NULL);
		w->armed = false;
	}
	return 0;
}

static int raw_io_add(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		      int64_t tmo_ns)
{
	struct raw_io *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->io = io;
	w->l = (struct raw_loop *)loop;
	w->tfd = -1;
	io->drv = w;
	if ((rc = raw_io_set(io, events, tmo_ns)) < 0) {
		if (w->tfd >= 0)
			close(w->tfd);
		free(w);
	}
	return rc;
}

static void raw_io_del(struct bench_io *io)
{
	struct raw_io *w = io->drv;

	if (w->mask)
		epoll_ctl(w->l->ep, EPOLL_CTL_DEL, io->fd, NULL);
	if (w->tfd >= 0)
		close(w->tfd);
	if (w->l->dispatching) {
		/* Later entries of this batch may still name @w. */
		w->dead = true;
		w->next_dead = w->l->dead;
		w->l->dead = w;
	} else {
		free(w);
	}
}

static const char *raw_version(void)
{
	return "epoll";
}

const struct bench_driver bench_driver_raw = {
	.name = "raw",
	.version = raw_version,
	.ring_init = raw_ring_init,
	.ring_register = raw_ring_register,
	.ring_poll = raw_ring_poll,
	.ring_rearm = raw_ring_rearm,
	.ring_fini = raw_ring_fini,
	.timer_init = raw_timer_init,
	.timer_add = raw_timer_add,
	.timer_mod = raw_timer_add,
	.timer_cancel = raw_timer_cancel,
	.timer_fini = raw_timer_fini,
	.loop_new = raw_loop_new,
	.loop_run = raw_loop_run,
	.loop_stop = raw_loop_stop,
	.loop_free = raw_loop_free,
	.io_add = raw_io_add,
	.io_set = raw_io_set,
	.io_del = raw_io_del,
};
