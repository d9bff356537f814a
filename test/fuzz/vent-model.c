/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vent-model.c - model-checked random API driver (see vent-model.h).
 *
 * Each of the 64 slots holds at most one heap-allocated event object, either
 * a pure timer or the read end of a pipe whose write end the driver keeps.
 * The model knows, for every slot, whether the event is added, its epoll
 * mask, whether its pipe is readable or hung up, and the exact deadline the
 * library reported in evt->tmo. From that it flags:
 *   - a callback for an event that is not added (after removal or cleanup),
 *     or whose pipe has nothing to report, or with a wrong reason/mask;
 *   - a timeout callback before its deadline, out of deadline order within
 *     one wait, or without an armed timeout; a due timer that never fires;
 *   - a ready, enabled fd that a vent_wait(.., 0, ..) did not dispatch;
 *   - a cleanup that is unexpected, missing or doubled;
 *   - any return code that differs from the contract in event.h;
 *   - an fd count that differs from the baseline at the end of a run.
 * Removed events are freed at once (the API allows it), so under ASan a
 * library access to a removed event is a use-after-free report.
 */
#include "vent-model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>

#include "../util/clock.h"
#include "../util/fd.h"

#define NSLOTS 64
#define NEVER INT64_MAX
__extension__ typedef __int128 i128;

enum state { ST_NONE, ST_IDLE, ST_ADDED };

struct fev {
	struct event ev; /* first: the callback gets &ev */
	int idx;
	int wfd;         /* pipe write end, -1 for a timer or once closed */
};

struct slot {
	struct fev *p;
	enum state st;
	bool is_pipe;
	bool readable;   /* bytes in the pipe */
	bool hup;        /* write end closed */
	bool fd_gone;    /* the user closed ev.fd while added: no fd checks */
	int dupfd;       /* a dup keeping the closed fd's file open, or -1 */
	int placeholder; /* /dev/null parked on the closed number, or -1 */
	uint32_t mask;   /* EPOLLIN or 0 as last applied */
	bool armed;
	bool future;      /* the deadline was ahead when armed (lateness stats) */
	int64_t deadline; /* exact, from evt->tmo after add/mod_timeout */
	bool stamp;       /* relative re-arm from a callback: @deadline is only a
			   * lower bound until the wait returns (event.h) */
	uint64_t seq;     /* arm order, for tie-breaking */
};

static struct {
	struct vm_source *src;
	struct vm_stats *st;
	int max_wait_ms;
	struct dispatcher *d;
	struct slot s[NSLOTS];
	/* Per-wait bookkeeping, kept apart from the slots (which are zeroed
	 * on release): the wait id in which a call changed the slot, and in
	 * which an fd callback ran for it. */
	uint64_t touched[NSLOTS];
	uint64_t ran[NSLOTS];
	uint64_t arm_seq;
	uint64_t wait_id;
	bool in_wait;
	int teardown;       /* >0 while cleanup_dispatcher/free_dispatcher run */
	bool dsp_freed;     /* free_dispatcher() ran from a callback */
	int pending_cleanup; /* slot whose callback returned CLEANUP */
	int in_callback;    /* slot whose callback runs, or -1 */
	/* ordering within one wait */
	bool seen_timeout;
	int64_t last_deadline;
	uint64_t last_seq;
	int wait_callbacks;
	uint64_t op_no;
} M;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "vent-model: violation at op %llu: ", (unsigned long long)M.op_no);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static bool tracing;
static bool expose_known_bugs;
#define TRACE(...)                                     \
	do {                                           \
		if (tracing)                           \
			fprintf(stderr, __VA_ARGS__);  \
	} while (0)

#define CHECK_RC(got, want, what)                                                         \
	do {                                                                               \
		int g_ = (got), w_ = (want);                                               \
		if (g_ != w_)                                                              \
			fail("%s returned %d (%s), expected %d", what, g_, strerror(-g_), w_); \
	} while (0)

static int byte(void)
{
	int b = M.src->next(M.src->ctx);
	return b < 0 ? 0 : b;
}

/* A timespec in ns, saturated (the fuzzer feeds any tv_sec). */
static int64_t ts_ns_sat(struct timespec ts)
{
	i128 v = (i128)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (v > INT64_MAX)
		return NEVER;
	if (v < INT64_MIN)
		return INT64_MIN;
	return (int64_t)v;
}

static int slot_of(const struct event *evt)
{
	for (int i = 0; i < NSLOTS; i++)
		if (M.s[i].p && &M.s[i].p->ev == evt)
			return i;
	return -1;
}

static void touch(int i)
{
	if (M.in_wait)
		M.touched[i] = M.wait_id;
}

/* Frees the object and its fds: the only place that does. */
static void release(int i)
{
	struct slot *s = &M.s[i];
	touch(i);
	if (s->p->ev.fd >= 0 && !s->fd_gone)
		close(s->p->ev.fd);
	if (s->p->wfd >= 0)
		close(s->p->wfd);
	if (s->dupfd >= 0)
		close(s->dupfd);
	if (s->placeholder >= 0)
		close(s->placeholder);
	free(s->p);
	memset(s, 0, sizeof(*s));
	s->st = ST_NONE;
	s->dupfd = -1;
	s->placeholder = -1;
}

static int on_event(struct event *evt, uint32_t events);
static void do_add(int i, bool from_cb);

static void on_cleanup(struct event *evt)
{
	int i = slot_of(evt);
	if (i < 0)
		fail("cleanup for an unknown or freed event %p", (void *)evt);
	struct slot *s = &M.s[i];
	if (s->st != ST_ADDED)
		fail("cleanup for slot %d, which is not added (double cleanup?)", i);
	if (!M.teardown && M.pending_cleanup != i)
		fail("unexpected cleanup for slot %d", i);
	if (evt->dsp != NULL)
		fail("cleanup for slot %d with evt->dsp still set", i);
	if (M.pending_cleanup == i)
		M.pending_cleanup = -1;
	if (M.st)
		M.st->cleanups++;
	touch(i);

	/* A cleanup may remove another event, or try calls that teardown
	 * refuses. */
	int b = byte();
	int j = byte() % NSLOTS;
	TRACE("  cleanup slot %d: act %d j %d\n", i, b & 7, j);
	if (j != i && (b & 3) == 1 && M.s[j].st == ST_ADDED) {
		CHECK_RC(event_remove(&M.s[j].p->ev), 0, "event_remove from cleanup");
		M.s[j].st = ST_IDLE;
		touch(j);
	} else if (j != i && (b & 3) == 2 && M.s[j].st == ST_ADDED && M.teardown) {
		CHECK_RC(event_modify(&M.s[j].p->ev), -EBUSY, "event_modify during teardown");
		struct timespec t = {0, 1000};
		CHECK_RC(event_mod_timeout(&M.s[j].p->ev, &t), -EBUSY,
			 "event_mod_timeout during teardown");
	} else if (j != i && (b & 3) == 0 && (b & 4) && M.s[j].st != ST_ADDED) {
		do_add(j, true); /* -EBUSY during teardown */
	} else if ((b & 3) == 3 && M.teardown && M.d) {
		CHECK_RC(cleanup_dispatcher(M.d), -EBUSY, "cleanup_dispatcher during teardown");
		CHECK_RC(vent_wait(M.d, 0, NULL), -EBUSY, "vent_wait during teardown");
	}
	s->st = ST_IDLE; /* so release() does not trip */
	release(i);
}

static struct fev *new_fev(int i, bool pipe_kind)
{
	struct fev *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	f->idx = i;
	f->wfd = -1;
	f->ev.fd = -1;
	f->ev.callback = on_event;
	f->ev.cleanup = on_cleanup;
	if (pipe_kind) {
		int p[2];
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			fail("pipe2: %s", strerror(errno));
		f->ev.fd = p[0];
		f->wfd = p[1];
	}
	struct slot *s = &M.s[i];
	memset(s, 0, sizeof(*s));
	s->p = f;
	s->st = ST_IDLE;
	s->dupfd = -1;
	s->placeholder = -1;
	s->is_pipe = pipe_kind;
	return f;
}

/*
 * Decodes a timeout. Sets *expect to 0 or -EINVAL, *abs_flag for TMO_ABS,
 * *lower to the earliest legal deadline.
 */
static struct timespec decode_tmo(bool *abs_flag, int *expect, int64_t *lower)
{
	int k = byte() % 10;
	int v = byte();
	struct timespec t = {0, 0};
	int64_t now = now_ns();
	*abs_flag = false;
	*expect = 0;
	*lower = now;
	switch (k) {
	case 0: /* none / cancel */
		break;
	case 1: /* microseconds */
		t.tv_nsec = (long)v * 1000 + 1;
		break;
	case 2: /* up to ~4 ms */
		t.tv_nsec = (long)(v % 4) * 1000000 + (long)v * 4000;
		break;
	case 3: /* "forever" clamps without overflow */
		t.tv_sec = (v & 1) ? (time_t)LLONG_MAX : (time_t)LLONG_MAX / 1000;
		t.tv_nsec = 999999999;
		break;
	case 4: /* absolute, past */
		*abs_flag = true;
		t.tv_sec = (v & 1) ? 0 : (time_t)((now - (int64_t)v * 1000000) / 1000000000);
		t.tv_nsec = 1 + v;
		break;
	case 5: { /* absolute, near future */
		*abs_flag = true;
		int64_t dl = now + (int64_t)v * 10000;
		t.tv_sec = (time_t)(dl / 1000000000);
		t.tv_nsec = (long)(dl % 1000000000);
		break;
	}
	case 6: /* unnormalised: tv_nsec carries */
		t.tv_sec = -1;
		t.tv_nsec = 1000000000L + (long)v * 1000 + 1; /* = v µs */
		break;
	case 7: /* negative relative: -EINVAL */
		t.tv_sec = (v & 1) ? -1 : 0;
		t.tv_nsec = (v & 1) ? 0 : -1 - v;
		*expect = -EINVAL;
		break;
	case 8: /* absolute, far past (clamps) */
		*abs_flag = true;
		t.tv_sec = (time_t)LLONG_MIN;
		t.tv_nsec = v;
		break;
	default: /* a few hundred µs */
		t.tv_nsec = 100000 + (long)v * 1000;
		break;
	}
	if (!*abs_flag) {
		i128 r = (i128)t.tv_sec * 1000000000 + t.tv_nsec;
		if (r < 0)
			*expect = -EINVAL;
		i128 l = r + now;
		*lower = l > INT64_MAX ? NEVER : (int64_t)l;
	} else {
		*lower = ts_ns_sat(t);
		if (*lower > INT64_MAX - 1)
			*lower = NEVER;
	}
	return t;
}

/* After a successful add/mod_timeout: read back and check the deadline. */
static void record_deadline(int i, bool timed, int64_t lower, bool stamped)
{
	struct slot *s = &M.s[i];
	struct timespec got = s->p->ev.tmo;
	s->stamp = false;
	if (timed && stamped) {
		/* Stamped when the batch ends: checked in do_wait(). The arm
		 * order is the call's. */
		s->stamp = true;
		s->armed = true;
		s->future = true;
		s->deadline = lower;
		s->seq = ++M.arm_seq;
		return;
	}
	if (!timed) {
		if (got.tv_sec || got.tv_nsec)
			fail("slot %d: evt->tmo not {0,0} without a timeout", i);
		s->armed = false;
		return;
	}
	if (got.tv_nsec < 0 || got.tv_nsec >= 1000000000)
		fail("slot %d: evt->tmo not normalised", i);
	int64_t dl = ts_ns_sat(got);
	if (dl < lower)
		fail("slot %d: deadline %lld earlier than requested %lld", i, (long long)dl,
		     (long long)lower);
	s->armed = true;
	s->future = dl > now_ns();
	s->deadline = dl;
	s->seq = ++M.arm_seq;
}

static void do_add(int i, bool from_cb)
{
	struct slot *s = &M.s[i];
	if (s->st == ST_NONE)
		new_fev(i, byte() & 1);
	struct fev *f = s->p;
	if (s->st == ST_ADDED) {
		CHECK_RC(event_add(M.d, &f->ev), -EEXIST, "event_add of an added event");
		return;
	}
	bool abs_flag;
	int expect;
	int64_t lower;
	f->ev.tmo = decode_tmo(&abs_flag, &expect, &lower);
	f->ev.flags = abs_flag ? TMO_ABS : 0;
	f->ev.ep.events = (s->is_pipe && (byte() & 3)) ? EPOLLIN : 0;
	bool timed = f->ev.tmo.tv_sec || f->ev.tmo.tv_nsec;
	if (!timed)
		expect = 0;
	if (s->fd_gone)
		return; /* the fd number is stale: adding it is the user's bug */
	int rc = event_add(M.d, &f->ev);
	CHECK_RC(rc, M.teardown ? -EBUSY : expect, from_cb ? "event_add in callback" : "event_add");
	if (rc < 0) {
		if (f->ev.dsp)
			fail("failed event_add left evt->dsp set");
		return;
	}
	if (f->ev.dsp != M.d)
		fail("event_add did not set evt->dsp");
	s->st = ST_ADDED;
	s->mask = f->ev.ep.events;
	touch(i);
	record_deadline(i, timed, lower, false);
}

/* Removes slot @i; frees it at once if @free_it. */
static void do_remove(int i, bool free_it)
{
	struct slot *s = &M.s[i];
	if (s->st == ST_NONE)
		return;
	if (s->st == ST_IDLE) {
		CHECK_RC(event_remove(&s->p->ev), -EINVAL, "event_remove of a removed event");
		if (free_it)
			release(i);
		return;
	}
	CHECK_RC(event_remove(&s->p->ev), 0, "event_remove");
	if (s->p->ev.dsp)
		fail("event_remove left evt->dsp set");
	s->st = ST_IDLE;
	s->armed = false;
	touch(i);
	if (free_it)
		release(i);
}

static void do_modify(int i)
{
	struct slot *s = &M.s[i];
	if (s->st != ST_ADDED || s->fd_gone)
		return;
	uint32_t want = s->is_pipe && s->mask == 0 ? EPOLLIN : 0;
	s->p->ev.ep.events = want;
	int rc = event_modify(&s->p->ev);
	CHECK_RC(rc, 0, "event_modify");
	s->mask = want;
	touch(i);
}

static void do_mod_timeout(int i)
{
	struct slot *s = &M.s[i];
	if (s->st == ST_NONE)
		return;
	bool abs_flag;
	int expect;
	int64_t lower;
	struct timespec t = decode_tmo(&abs_flag, &expect, &lower);
	s->p->ev.flags = (unsigned short)((s->p->ev.flags & ~TMO_ABS) | (abs_flag ? TMO_ABS : 0));
	bool timed = t.tv_sec || t.tv_nsec;
	if (!timed)
		expect = 0;
	int rc = event_mod_timeout(&s->p->ev, &t);
	if (s->st != ST_ADDED) {
		CHECK_RC(rc, -EINVAL, "event_mod_timeout of a removed event");
		return;
	}
	CHECK_RC(rc, expect, "event_mod_timeout");
	if (rc < 0)
		return;
	touch(i);
	/* A relative re-arm from a callback takes its deadline from the
	 * clock read that ends the batch. */
	record_deadline(i, timed, lower, M.in_wait && !abs_flag);
}

static void drain(int i)
{
	struct slot *s = &M.s[i];
	char buf[64];
	if (!s->is_pipe || s->fd_gone)
		return;
	while (read(s->p->ev.fd, buf, sizeof(buf)) > 0)
		;
	s->readable = false;
}

static void teardown_begin(void)
{
	M.teardown++;
}

static void teardown_end(const char *what)
{
	M.teardown--;
	for (int i = 0; i < NSLOTS; i++)
		if (M.s[i].st == ST_ADDED)
			fail("%s left slot %d added without cleanup", what, i);
}

static void do_cleanup_dispatcher(void)
{
	teardown_begin();
	for (int i = 0; i < NSLOTS; i++)
		touch(i);
	CHECK_RC(cleanup_dispatcher(M.d), 0, "cleanup_dispatcher");
	teardown_end("cleanup_dispatcher");
}

static void do_free_dispatcher(void)
{
	teardown_begin();
	for (int i = 0; i < NSLOTS; i++)
		touch(i);
	free_dispatcher(M.d);
	teardown_end("free_dispatcher");
	M.d = NULL;
}

static void new_dsp(void)
{
	M.d = new_dispatcher(CLOCK_MONOTONIC);
	if (!M.d)
		fail("new_dispatcher: %s", strerror(errno));
}

static int on_event(struct event *evt, uint32_t events)
{
	int i = slot_of(evt);
	if (i < 0)
		fail("callback for an unknown or freed event %p", (void *)evt);
	struct slot *s = &M.s[i];
	if (!M.in_wait)
		fail("callback for slot %d outside a wait", i);
	if (M.pending_cleanup >= 0)
		fail("slot %d returned EVENTCB_CLEANUP but its cleanup did not run",
		     M.pending_cleanup);
	if (M.in_callback >= 0)
		fail("nested callback for slot %d inside slot %d", i, M.in_callback);
	if (s->st != ST_ADDED)
		fail("callback for slot %d, which is not added (after removal)", i);
	if (evt->dsp != M.d)
		fail("callback for slot %d with a wrong evt->dsp", i);
	M.wait_callbacks++;
	if (M.st)
		M.st->callbacks++;

	if (evt->reason == REASON_TIMEOUT) {
		int64_t t = now_ns();
		if (events != 0)
			fail("timeout callback for slot %d with events %#x", i, events);
		if (!s->armed)
			fail("timeout callback for slot %d without an armed timeout", i);
		if (t < s->deadline)
			fail("EARLY timeout for slot %d: %lld ns before its deadline", i,
			     (long long)(s->deadline - t));
		if (evt->tmo.tv_sec || evt->tmo.tv_nsec)
			fail("timeout callback for slot %d: evt->tmo not cleared", i);
		if (M.seen_timeout && (s->deadline < M.last_deadline ||
				       (s->deadline == M.last_deadline && s->seq < M.last_seq)))
			fail("timeouts out of deadline order in one wait (slot %d)", i);
		M.seen_timeout = true;
		M.last_deadline = s->deadline;
		M.last_seq = s->seq;
		/* Only deadlines that were ahead when armed: a past absolute
		 * one (possibly INT64_MIN) says nothing about lateness, and
		 * t - deadline would overflow. */
		if (M.st)
			M.st->timeouts++;
		if (M.st && s->future) {
			uint64_t late = (uint64_t)(t - s->deadline);
			M.st->late_sum_ns += late;
			M.st->late_count++;
			if (late > M.st->late_max_ns)
				M.st->late_max_ns = late;
		}
		s->armed = false;
	} else if (evt->reason == REASON_EVENT_OCCURED) {
		if (M.seen_timeout)
			fail("fd callback for slot %d after a timeout callback in one wait", i);
		if (!s->is_pipe)
			fail("fd callback for timer-only slot %d", i);
		if (!s->fd_gone) {
			if (s->mask == 0)
				fail("fd callback for disabled slot %d", i);
			if (!s->readable && !s->hup)
				fail("spurious fd callback for slot %d (events %#x)", i, events);
			if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				fail("fd callback for slot %d with events %#x", i, events);
		}
		M.ran[i] = M.wait_id;
		if (M.st)
			M.st->fd_callbacks++;
	} else {
		fail("callback for slot %d with reason %u", i, evt->reason);
	}

	M.in_callback = i;
	int b = byte();
	int act = byte();
	int j = byte() % NSLOTS;
	TRACE("  callback slot %d reason %u events %#x: ret %d act %d j %d drain %d\n", i,
	      evt->reason, events, b & 7, act % 16, j, !!(b & 8));
	int ret = (b & 7) < 5 ? EVENTCB_CONTINUE : (b & 7) < 7 ? EVENTCB_REMOVE : EVENTCB_CLEANUP;
	if (b & 8)
		drain(i);
	bool self_gone = false;  /* evt may no longer be touched */
	bool ret_moot = false;   /* the library ignores the return value */

	switch (act % 16) {
	case 1:
		if (j != i)
			do_remove(j, act & 16);
		break;
	case 2:
		if (j != i)
			do_add(j, true);
		break;
	case 3:
		do_mod_timeout(j);
		break;
	case 4:
		if (j != i)
			do_modify(j);
		break;
	case 5: /* remove self, then add self again */
		do_remove(i, false);
		do_add(i, true);
		ret_moot = true;
		break;
	case 6: /* remove self and free it at once */
		do_remove(i, true);
		self_gone = ret_moot = true;
		break;
	case 7:
		CHECK_RC(vent_wait(M.d, 0, NULL), -EBUSY, "nested vent_wait");
		CHECK_RC(event_wait(M.d, NULL), -EBUSY, "nested event_wait");
		break;
	case 8:
		if (act & 0x60)
			break; /* keep it rare */
		do_cleanup_dispatcher();
		self_gone = ret_moot = true;
		break;
	case 9:
		if ((act & 0x70) != 0x70)
			break;
		do_free_dispatcher();
		M.dsp_freed = true;
		self_gone = ret_moot = true;
		break;
	case 10:
		if (M.s[j].is_pipe && M.s[j].p && M.s[j].p->wfd >= 0 &&
		    write(M.s[j].p->wfd, "x", 1) == 1)
			M.s[j].readable = true;
		break;
	case 11:
		do_remove(j, false);
		break;
	default:
		break;
	}
	M.in_callback = -1;
	if (!self_gone && M.s[i].st != ST_ADDED)
		ret_moot = true; /* removed by an action above */
	if (!ret_moot && !self_gone) {
		if (ret == EVENTCB_REMOVE) {
			s->st = ST_IDLE;
			s->armed = false;
		} else if (ret == EVENTCB_CLEANUP) {
			M.pending_cleanup = i;
		}
	}
	return ret;
}

static void check_consistency(void)
{
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &M.s[i];
		if (s->st == ST_NONE)
			continue;
		if (s->st == ST_IDLE && s->p->ev.dsp)
			fail("removed slot %d still has evt->dsp", i);
		if (s->st != ST_ADDED)
			continue;
		if (s->p->ev.dsp != M.d)
			fail("added slot %d lost evt->dsp", i);
		struct timespec t = s->p->ev.tmo;
		if (s->armed && !s->stamp && ts_ns_sat(t) != s->deadline)
			fail("slot %d: evt->tmo changed behind the user's back", i);
		if (!s->armed && (t.tv_sec || t.tv_nsec))
			fail("slot %d: expired timeout not cleared in evt->tmo", i);
	}
}

/* One vent_wait(); checks readiness delivery if @timeout_ms is 0. */
static void do_wait(int timeout_ms)
{
	bool expect_fd[NSLOTS];
	M.wait_id++;
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &M.s[i];
		expect_fd[i] = s->st == ST_ADDED && s->is_pipe && !s->fd_gone && s->mask &&
			       (s->readable || s->hup);
	}
	M.in_wait = true;
	M.seen_timeout = false;
	M.wait_callbacks = 0;
	M.pending_cleanup = -1;
	M.dsp_freed = false;
	int rc = vent_wait(M.d, timeout_ms, NULL);
	M.in_wait = false;
	if (M.st)
		M.st->waits++;
	if (M.pending_cleanup >= 0)
		fail("slot %d returned EVENTCB_CLEANUP but its cleanup did not run",
		     M.pending_cleanup);
	if (rc < 0)
		fail("vent_wait: %d (%s)", rc, strerror(-rc));
	if (rc != M.wait_callbacks)
		fail("vent_wait returned %d, but %d callbacks ran", rc, M.wait_callbacks);
	if (M.dsp_freed) {
		new_dsp();
		return;
	}
	/* Batch-stamped re-arms have their deadline now: not before the
	 * call plus the timeout. */
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &M.s[i];
		if (!s->stamp)
			continue;
		s->stamp = false;
		if (s->st != ST_ADDED || !s->armed)
			continue;
		struct timespec got = s->p->ev.tmo;
		if (got.tv_nsec < 0 || got.tv_nsec >= 1000000000)
			fail("slot %d: stamped evt->tmo not normalised", i);
		int64_t dl = ts_ns_sat(got);
		if (dl < s->deadline)
			fail("slot %d: stamped deadline %lld earlier than the call's %lld", i,
			     (long long)dl, (long long)s->deadline);
		s->deadline = dl;
		s->future = dl > now_ns();
	}
	for (int i = 0; i < NSLOTS; i++)
		if (expect_fd[i] && M.touched[i] != M.wait_id && M.ran[i] != M.wait_id)
			fail("slot %d: ready enabled fd not dispatched by vent_wait(0)", i);
}

/* Waits until every timer due now has fired; flags a lost timer. */
static void do_settle(void)
{
	int64_t start = now_ns();
	for (;;) {
		int64_t t = now_ns();
		int due = -1;
		for (int i = 0; i < NSLOTS; i++)
			if (M.s[i].st == ST_ADDED && M.s[i].armed && M.s[i].deadline <= start)
				due = i;
		if (due < 0)
			return;
		if (t - start > 5000000000LL)
			fail("slot %d: timer due %lld ns ago never fired", due,
			     (long long)(t - M.s[due].deadline));
		/* Due pipes would repeat: drain them so the settle converges. */
		for (int i = 0; i < NSLOTS; i++)
			if (!M.s[i].hup)
				drain(i);
		do_wait(2);
	}
}

static void step(int op)
{
	int i = byte() % NSLOTS;
	M.op_no++;
	if (M.st)
		M.st->ops++;
	TRACE("op %llu: %d slot %d (st %d fd %d mask %#x rd %d hup %d gone %d)\n",
	      (unsigned long long)M.op_no, op % 20, i, M.s[i].st, M.s[i].p ? M.s[i].p->ev.fd : -1,
	      M.s[i].mask, M.s[i].readable, M.s[i].hup, M.s[i].fd_gone);
	switch (op % 20) {
	case 0:
	case 1:
	case 2:
		do_add(i, false);
		break;
	case 3:
		do_remove(i, op & 0x80);
		break;
	case 4:
		do_modify(i);
		break;
	case 5:
	case 6:
		do_mod_timeout(i);
		break;
	case 7:
	case 8:
		if (M.s[i].is_pipe && M.s[i].p->wfd >= 0 && write(M.s[i].p->wfd, "x", 1) == 1)
			M.s[i].readable = true;
		break;
	case 9:
		if (M.s[i].is_pipe && M.s[i].p->wfd >= 0 && (op & 0x40)) {
			close(M.s[i].p->wfd);
			M.s[i].p->wfd = -1;
			M.s[i].hup = true;
		}
		break;
	case 10:
		drain(i);
		break;
	case 11:
	case 12:
	case 13:
		do_wait(0);
		break;
	case 14:
		do_settle();
		break;
	case 15:
		if ((op & 0xe0) == 0xe0)
			do_cleanup_dispatcher();
		break;
	case 16:
		if ((op & 0xe0) == 0xe0) {
			do_free_dispatcher();
			new_dsp();
		}
		break;
	case 17: { /* close the fd while added, maybe with a dup keeping it open */
		struct slot *s = &M.s[i];
		if (s->st != ST_ADDED || !s->is_pipe || s->fd_gone || !(op & 0x40))
			break;
		/* With a dup, the kernel keeps the registration (an orphan
		 * once the event is removed); the number may be reused. */
		s->dupfd = (op & 0x80) ? dup(s->p->ev.fd) : -1;
		close(s->p->ev.fd);
		s->fd_gone = true;
		if (!expose_known_bugs) {
			/*
			 * WORKAROUND (known core bug, test/harden-rebuild-test.c):
			 * Dispatcher::rebuild_epoll() re-registers the stale number
			 * of an added event whose fd was closed; if an unrelated
			 * file took the number, the event gets its readiness and the
			 * file's own event_add() fails with -EEXIST. Park /dev/null
			 * (which epoll refuses) on the number until the slot dies.
			 * VM_EXPOSE_KNOWN_BUGS=1 turns this off.
			 */
			int ph = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (ph >= 0 && ph != s->p->ev.fd) {
				dup3(ph, s->p->ev.fd, O_CLOEXEC);
				close(ph);
			}
			s->placeholder = s->p->ev.fd;
		}
		break;
	}
	case 18:
		if (M.max_wait_ms > 0)
			do_wait(byte() % (M.max_wait_ms + 1));
		else
			do_wait(0);
		break;
	default: {
		int efd = dispatcher_get_efd(M.d);
		if (efd < 0)
			fail("dispatcher_get_efd: %d", efd);
		CHECK_RC(dispatcher_get_clocksource(M.d), CLOCK_MONOTONIC,
			 "dispatcher_get_clocksource");
		CHECK_RC(event_remove(NULL), -EINVAL, "event_remove(NULL)");
		CHECK_RC(event_add(M.d, NULL), -EINVAL, "event_add(NULL)");
		break;
	}
	}
	if (!M.in_wait)
		check_consistency();
}

void vm_run(struct vm_source *src, int max_wait_ms, struct vm_stats *stats)
{
	memset(&M, 0, sizeof(M));
	M.src = src;
	M.st = stats;
	M.max_wait_ms = max_wait_ms;
	M.pending_cleanup = -1;
	M.in_callback = -1;
	tracing = getenv("VM_TRACE") != NULL;
	expose_known_bugs = getenv("VM_EXPOSE_KNOWN_BUGS") != NULL;
	/* Writing to a pipe whose read end the input closed. */
	signal(SIGPIPE, SIG_IGN);
	int base = fd_count();
	new_dsp();
	for (;;) {
		int b = src->next(src->ctx);
		if (b < 0)
			break;
		step(b);
	}
	do_free_dispatcher();
	for (int i = 0; i < NSLOTS; i++)
		if (M.s[i].st != ST_NONE)
			release(i);
	int end = fd_count();
	if (end != base)
		fail("fd leak: %d open fds at start, %d at end", base, end);
}

struct buf_src {
	const uint8_t *p;
	size_t n, off;
};

static int buf_next(void *ctx)
{
	struct buf_src *b = ctx;
	return b->off < b->n ? b->p[b->off++] : -1;
}

void vm_run_buffer(const uint8_t *data, size_t size, struct vm_stats *stats)
{
	struct buf_src b = {data, size, 0};
	struct vm_source src = {buf_next, &b};
	vm_run(&src, 0, stats);
}
