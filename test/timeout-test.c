/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * timeout-test.c - timeouts of the core dispatcher (vent/event.h):
 * normalisation, relative vs absolute (TMO_ABS), no early firing on the
 * dispatcher's clock, deadline order with ties in arming order, no livelock
 * on past deadlines, huge values, moving deadlines (later costs no
 * timerfd_settime), changes from callbacks, the timer macros, and a big
 * cohort that must not starve fd events.
 *
 * Timing rule: only lower bounds are asserted ("callback time >= deadline");
 * upper bounds are at most "it happens within a few seconds".
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/epoll.h>

#include <vent/event.h>

#include "util/case.h"
#include "util/epoll.h"

struct tt {
	struct event e; /* first */
	int idx;
	int calls;
	int early;           /* fired before its deadline */
	int64_t deadline;    /* as armed (dispatcher clock, ns) */
	int64_t fired_at;    /* clock at the last call */
	int order;           /* seq at the last call */
	unsigned short reason;
	uint32_t events;
	int (*hook)(struct tt *t);
	struct tt *peer;
	int drain;
};

static clockid_t g_clock = CLOCK_MONOTONIC;
static int seq;
static int g_calls;
static int g_early;
static int g_in_cb; /* tt_cb() frames running */

static int tt_cb(struct event *evt, uint32_t events)
{
	struct tt *t = (struct tt *)evt;
	int64_t now = clock_ns(g_clock);

	t->calls++;
	g_calls++;
	t->fired_at = now;
	t->order = ++seq;
	t->reason = evt->reason;
	t->events = events;
	if (evt->reason == REASON_TIMEOUT && now < t->deadline) {
		t->early++;
		g_early++;
		print_error("timer %d early by %" PRId64 " ns\n", t->idx, t->deadline - now);
	}
	if (t->drain && evt->fd >= 0) {
		char buf[64];
		while (read(evt->fd, buf, sizeof(buf)) > 0)
			;
	}
	if (t->hook) {
		g_in_cb++;
		int rc = t->hook(t);
		g_in_cb--;
		return rc;
	}
	return EVENTCB_CONTINUE;
}

static void tt_init(struct tt *t, int fd, uint32_t mask)
{
	memset(t, 0, sizeof(*t));
	t->e = __EVENT_INIT(tt_cb, NULL, fd, mask, 0, 0);
	t->deadline = INT64_MAX;
}

static void reset(clockid_t clk)
{
	g_clock = clk;
	seq = 0;
	g_calls = 0;
	g_early = 0;
}

/* Adds @t with timeout {s, ns} (relative unless @abs) and records the deadline. */
static int tt_add(struct dispatcher *d, struct tt *t, long long s, long long ns, int abs)
{
	t->e.tmo.tv_sec = (time_t)s;
	t->e.tmo.tv_nsec = (long)ns;
	if (abs)
		t->e.flags |= TMO_ABS;
	else
		t->e.flags &= (unsigned short)~TMO_ABS;
	int rc = event_add(d, &t->e);
	if (rc == 0)
		t->deadline = ts_ns(&t->e.tmo);
	return rc;
}

static int tt_mod(struct tt *t, long long s, long long ns)
{
	struct timespec ts = { (time_t)s, (long)ns };
	const int64_t before = clock_ns(g_clock);
	int rc = event_mod_timeout(&t->e, &ts);

	if (rc != 0)
		return rc;
	if (g_in_cb && !(t->e.flags & TMO_ABS) && (s || ns))
		/* From a callback the deadline is stamped when the batch ends
		 * (event.h): what is known now is that it is not before the
		 * call plus the timeout, which is what "never early" means. */
		t->deadline = before + (int64_t)s * NS_PER_S + ns;
	else
		t->deadline = (t->e.tmo.tv_sec || t->e.tmo.tv_nsec) ? ts_ns(&t->e.tmo) : INT64_MAX;
	return rc;
}

static struct dispatcher *mkdsp(clockid_t clk)
{
	struct dispatcher *d = new_dispatcher(clk);

	assert_non_null(d);
	reset(clk);
	return d;
}

/* Waits (bounded, a few seconds) until @t was called @n times. */
static void wait_calls(struct dispatcher *d, struct tt *t, int n)
{
	int64_t give_up = now_ns() + 10 * NS_PER_S * (int64_t)slowdown();

	while (t->calls < n && now_ns() < give_up)
		assert_true(vent_wait(d, 1000, NULL) >= 0);
	assert_int_equal(t->calls, n);
}

static void expect_normalised(const struct timespec *ts)
{
	assert_true(ts->tv_nsec >= 0 && ts->tv_nsec < NS_PER_S);
}

/* ------------------------------------------------------------------------
 * Values
 */

static void test_normalisation(void **state)
{
	static const long long ok[][3] = {
		/* s, ns, normalised relative ns */
		{ 0, 2500000000LL, 2500000000LL },
		{ 3, -500000000, 2500000000LL },
		{ -1, 1500000000, 500000000 },
		{ 0, 1, 1 },
		{ 2, 999999999, 2999999999LL },
		/* Either side of the library's short path (tv_sec < INT32_MAX). */
		{ 2147483646, 999999999, 2147483646999999999LL },
		{ 2147483647, 0, 2147483647000000000LL },
		{ 2147483647, 999999999, 2147483647999999999LL },
	};
	static const long long bad[][2] = {
		{ -1, 0 }, { 0, -1 }, { 1, -1000000001 }, { -5, 4999999999LL }, { LLONG_MIN, 0 },
	};
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct tt t, u;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		tt_init(&t, -1, 0);
		int64_t before = now_ns();
		assert_int_equal(tt_add(d, &t, ok[i][0], ok[i][1], 0), 0);
		int64_t after = now_ns();
		expect_normalised(&t.e.tmo);
		/* The absolute expiry on the dispatcher's clock. */
		assert_true(t.deadline >= before + ok[i][2]);
		assert_true(t.deadline <= after + ok[i][2]);
		/* The same through event_mod_timeout(). */
		tt_init(&u, -1, 0);
		assert_int_equal(tt_add(d, &u, 100, 0, 0), 0);
		before = now_ns();
		assert_int_equal(tt_mod(&u, ok[i][0], ok[i][1]), 0);
		after = now_ns();
		expect_normalised(&u.e.tmo);
		assert_true(u.deadline >= before + ok[i][2]);
		assert_true(u.deadline <= after + ok[i][2]);
		assert_int_equal(event_remove(&t.e), 0);
		assert_int_equal(event_remove(&u.e), 0);
	}
	/* Negative after normalisation: -EINVAL; nothing registered/changed. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tt_init(&t, -1, 0);
		assert_int_equal(tt_add(d, &t, bad[i][0], bad[i][1], 0), -EINVAL);
		assert_null(t.e.dsp);
		tt_init(&u, -1, 0);
		assert_int_equal(tt_add(d, &u, 100, 0, 0), 0);
		struct timespec keep = u.e.tmo;
		assert_int_equal(tt_mod(&u, bad[i][0], bad[i][1]), -EINVAL);
		assert_memory_equal(&u.e.tmo, &keep, sizeof(keep));
		assert_int_equal(event_remove(&u.e), 0);
	}
	/*
	 * {1, -1e9} is a relative zero after normalisation, not {0, 0}: it is
	 * a timeout that is due at once (fires on the next wait).
	 */
	tt_init(&t, -1, 0);
	assert_int_equal(tt_add(d, &t, 1, -1000000000, 0), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(t.calls, 1);
	assert_int_equal(t.reason, REASON_TIMEOUT);
	/* {0, 0}: none, for add and mod. */
	tt_init(&t, -1, 0);
	assert_int_equal(tt_add(d, &t, 0, 0, 0), 0);
	assert_int_equal(t.e.tmo.tv_sec, 0);
	assert_int_equal(t.e.tmo.tv_nsec, 0);
	tt_init(&u, -1, 0);
	assert_int_equal(tt_add(d, &u, 0, 10 * NS_PER_MS, 0), 0);
	assert_int_equal(tt_mod(&u, 0, 0), 0);
	assert_int_equal(u.e.tmo.tv_sec, 0);
	assert_int_equal(u.e.tmo.tv_nsec, 0);
	assert_int_equal(vent_wait(d, 60, NULL), 0);
	assert_int_equal(t.calls + u.calls, 0);
	free_dispatcher(d);
	assert_int_equal(g_early, 0);
}

static void test_absolute_vs_relative(void **state)
{
	static const clockid_t clocks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME };

	(void)state;
	for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
		struct dispatcher *d = mkdsp(clocks[c]);
		struct tt rel, abs_future, abs_past, abs_neg;

		/* Relative: now + value on the dispatcher's clock. */
		tt_init(&rel, -1, 0);
		int64_t before = clock_ns(clocks[c]);
		assert_int_equal(tt_add(d, &rel, 0, 30 * NS_PER_MS, 0), 0);
		assert_true(rel.deadline >= before + 30 * NS_PER_MS);
		assert_true(rel.deadline <= clock_ns(clocks[c]) + 30 * NS_PER_MS);
		assert_false(rel.e.flags & TMO_ABS);

		/* Absolute: taken as is. */
		int64_t when = clock_ns(clocks[c]) + 40 * NS_PER_MS;
		tt_init(&abs_future, -1, 0);
		assert_int_equal(tt_add(d, &abs_future, when / NS_PER_S, when % NS_PER_S, 1), 0);
		assert_true(abs_future.deadline == when);
		assert_true(abs_future.e.flags & TMO_ABS);

		/* In the past (and before the epoch): due on the next wait. */
		tt_init(&abs_past, -1, 0);
		assert_int_equal(tt_add(d, &abs_past, 1, 0, 1), 0);
		tt_init(&abs_neg, -1, 0);
		assert_int_equal(tt_add(d, &abs_neg, -5, 3, 1), 0);
		expect_normalised(&abs_neg.e.tmo);
		assert_true(vent_wait(d, 5000, NULL) >= 2);
		assert_int_equal(abs_past.calls, 1);
		assert_int_equal(abs_neg.calls, 1);
		/* Earlier deadline first. */
		assert_true(abs_neg.order < abs_past.order);

		wait_calls(d, &rel, 1);
		wait_calls(d, &abs_future, 1);
		assert_true(abs_future.fired_at >= when);

		/* event_mod_timeout() reads TMO_ABS from flags and keeps it. */
		when = clock_ns(clocks[c]) + 20 * NS_PER_MS;
		assert_int_equal(tt_mod(&abs_future, when / NS_PER_S, when % NS_PER_S), 0);
		assert_true(abs_future.deadline == when);
		assert_true(abs_future.e.flags & TMO_ABS);
		wait_calls(d, &abs_future, 2);
		/* Clearing the flag makes the next value relative. */
		abs_future.e.flags &= (unsigned short)~TMO_ABS;
		before = clock_ns(clocks[c]);
		assert_int_equal(tt_mod(&abs_future, 0, 10 * NS_PER_MS), 0);
		assert_true(abs_future.deadline >= before + 10 * NS_PER_MS);
		wait_calls(d, &abs_future, 3);
		free_dispatcher(d);
		assert_int_equal(g_early, 0);
	}
}

static void test_huge_values(void **state)
{
	static const long long huge[][2] = {
		{ LLONG_MAX, 999999999 },
		{ LLONG_MAX, 0 },
		{ LLONG_MAX / 1000000000, 0 },
		{ LLONG_MAX / 2, 0 },
		{ 0, LONG_MAX },
		{ LLONG_MAX - 1, 1999999999 },
	};
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct tt t[2 * 6], soon;

	(void)state;
	for (int i = 0; i < 6; i++) {
		for (int abs = 0; abs < 2; abs++) {
			struct tt *x = &t[2 * i + abs];
			tt_init(x, -1, 0);
			x->idx = 2 * i + abs;
			assert_int_equal(tt_add(d, x, huge[i][0], huge[i][1], abs), 0);
			expect_normalised(&x->e.tmo);
			/* Far in the future, not wrapped into the past. */
			assert_true(x->e.tmo.tv_sec > 1000000);
		}
	}
	/* The same through event_mod_timeout(), from a near deadline. */
	tt_init(&soon, -1, 0);
	assert_int_equal(tt_add(d, &soon, 0, 10 * NS_PER_MS, 0), 0);
	assert_int_equal(tt_mod(&soon, LLONG_MAX, 999999999), 0);
	expect_normalised(&soon.e.tmo);
	assert_true(soon.e.tmo.tv_sec > 1000000);
	/* Nothing fires; a normal timer next to them still does. */
	struct tt n;
	tt_init(&n, -1, 0);
	assert_int_equal(tt_add(d, &n, 0, 20 * NS_PER_MS, 0), 0);
	wait_calls(d, &n, 1);
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_int_equal(g_calls, 1);
	/* And can be cancelled or brought back. */
	assert_int_equal(tt_mod(&t[0], 0, 0), 0);
	assert_int_equal(tt_mod(&t[1], 0, 1), 0);
	wait_calls(d, &t[1], 1);
	assert_int_equal(t[0].calls, 0);
	free_dispatcher(d);
	assert_int_equal(g_early, 0);
}

/* ------------------------------------------------------------------------
 * Timing and order
 */

static void run_no_early(clockid_t clk, int n, int max_ms)
{
	struct dispatcher *d = mkdsp(clk);
	struct tt *t = calloc((size_t)n, sizeof(*t));
	uint64_t r = 12345;

	assert_non_null(t);
	for (int i = 0; i < n; i++) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		long long ns = (long long)((r >> 20) % ((uint64_t)max_ms * NS_PER_MS)) + 1;
		tt_init(&t[i], -1, 0);
		t[i].idx = i;
		if (i % 3 == 0) {
			int64_t when = clock_ns(clk) + ns;
			assert_int_equal(tt_add(d, &t[i], when / NS_PER_S, when % NS_PER_S, 1), 0);
		} else {
			assert_int_equal(tt_add(d, &t[i], 0, ns, 0), 0);
		}
	}
	/* Move some later and some earlier (still in the future). */
	for (int i = 0; i < n; i += 5) {
		t[i].e.flags &= (unsigned short)~TMO_ABS;
		assert_int_equal(tt_mod(&t[i], 0, (i % 2 ? 3 : 1) * (long long)max_ms * NS_PER_MS / 2), 0);
	}
	int64_t give_up = now_ns() + 30 * NS_PER_S * (int64_t)slowdown();
	while (g_calls < n && now_ns() < give_up)
		assert_true(vent_wait(d, 1000, NULL) >= 0);
	assert_int_equal(g_calls, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(t[i].calls, 1);
		assert_true(t[i].fired_at >= t[i].deadline);
	}
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
	free(t);
}

static void test_no_early_firing_monotonic(void **state)
{
	(void)state;
	run_no_early(CLOCK_MONOTONIC, (int)scaled(300, 60), 150);
}

static void test_no_early_firing_realtime(void **state)
{
	(void)state;
	run_no_early(CLOCK_REALTIME, (int)scaled(100, 30), 100);
}

static void test_no_early_firing_boottime(void **state)
{
	(void)state;
	run_no_early(CLOCK_BOOTTIME, (int)scaled(100, 30), 100);
}

/* Deadline order across one wait; equal deadlines in arming order. */
static void test_deadline_order_and_ties(void **state)
{
	enum { N = 200 };
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	static struct tt t[N];
	int perm[N];

	(void)state;
	for (int i = 0; i < N; i++)
		perm[i] = i;
	/* Shuffle the arming order (deterministic). */
	uint64_t r = 777;
	for (int i = N - 1; i > 0; i--) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		int j = (int)((r >> 33) % (uint64_t)(i + 1));
		int x = perm[i];
		perm[i] = perm[j];
		perm[j] = x;
	}
	int64_t base = now_ns() + 30 * NS_PER_MS;
	/* Four distinct deadlines, added in shuffled order. */
	for (int k = 0; k < N; k++) {
		int i = perm[k];
		int64_t when = base + (int64_t)(i % 4) * NS_PER_MS;
		tt_init(&t[i], -1, 0);
		t[i].idx = i;
		assert_int_equal(tt_add(d, &t[i], when / NS_PER_S, when % NS_PER_S, 1), 0);
	}
	/* Re-arming at the same deadline counts as arming last. */
	int moved = perm[0];
	int64_t mw = base + (int64_t)(moved % 4) * NS_PER_MS;
	assert_int_equal(tt_mod(&t[moved], mw / NS_PER_S, mw % NS_PER_S), 0);

	/* All due before the wait: one batch. */
	while (now_ns() < base + 4 * NS_PER_MS)
		sleep_ms(5);
	assert_int_equal(vent_wait(d, 5000, NULL), N);
	/* Expected: by deadline, then by arming position (perm index). */
	int pos[N];
	for (int k = 0; k < N; k++)
		pos[perm[k]] = k;
	pos[moved] = N; /* re-armed last */
	for (int a = 0; a < N; a++)
		for (int b = 0; b < N; b++) {
			if (t[a].deadline < t[b].deadline ||
			    (t[a].deadline == t[b].deadline && pos[a] < pos[b]))
				assert_true(t[a].order < t[b].order);
		}
	free_dispatcher(d);
	assert_int_equal(g_early, 0);
}

/*
 * A deadline moved later is applied lazily (the heap entry stays at the old
 * deadline until that comes up). Nothing may show: no callback at the old
 * deadline, and the arming order of equal deadlines is that of the
 * event_mod_timeout() calls.
 */
static void test_push_later_keeps_arming_order(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	static struct tt c, a, b, e, f;
	int64_t base = now_ns() + 40 * NS_PER_MS;
	int64_t d1 = base, d2 = base + 60 * NS_PER_MS;

	(void)state;
	tt_init(&c, -1, 0);
	tt_init(&a, -1, 0);
	tt_init(&b, -1, 0);
	tt_init(&e, -1, 0);
	tt_init(&f, -1, 0);
	c.idx = 1, a.idx = 2, b.idx = 3, e.idx = 4, f.idx = 5;
	assert_int_equal(tt_add(d, &a, d1 / NS_PER_S, d1 % NS_PER_S, 1), 0);
	assert_int_equal(tt_add(d, &e, d1 / NS_PER_S, d1 % NS_PER_S, 1), 0);
	assert_int_equal(tt_add(d, &f, d2 / NS_PER_S, d2 % NS_PER_S, 1), 0);
	assert_int_equal(tt_add(d, &c, d2 / NS_PER_S, d2 % NS_PER_S, 1), 0);
	/* Later (lazy): a after c, e twice (its last arm comes after b's). */
	assert_int_equal(tt_mod(&a, d2 / NS_PER_S, d2 % NS_PER_S), 0);
	assert_int_equal(tt_mod(&e, (d2 - NS_PER_MS) / NS_PER_S, (d2 - NS_PER_MS) % NS_PER_S), 0);
	assert_int_equal(tt_add(d, &b, d2 / NS_PER_S, d2 % NS_PER_S, 1), 0);
	assert_int_equal(tt_mod(&e, d2 / NS_PER_S, d2 % NS_PER_S), 0);
	/* f: later (lazy), then earlier than its old deadline: re-queued
	 * exactly, and fires first. */
	int64_t fl = d2 + 100 * NS_PER_MS, fe = d1 + 10 * NS_PER_MS;
	assert_int_equal(tt_mod(&f, fl / NS_PER_S, fl % NS_PER_S), 0);
	assert_int_equal(tt_mod(&f, fe / NS_PER_S, fe % NS_PER_S), 0);

	/* The old deadline d1 passes: nothing fires (f is due at fe). */
	while (now_ns() < d1 + 5 * NS_PER_MS)
		sleep_ms(2);
	int64_t give_up = now_ns() + 10 * NS_PER_S * (int64_t)slowdown();
	while (f.calls == 0 && now_ns() < give_up)
		assert_true(vent_wait(d, 1000, NULL) >= 0);
	assert_int_equal(f.calls, 1);
	assert_int_equal(c.calls + a.calls + b.calls + e.calls, 0);

	/* All four at d2, in one wait once due: c, a, b, e. */
	while (now_ns() < d2)
		sleep_ms(2);
	assert_int_equal(vent_wait(d, 5000, NULL), 4);
	assert_int_equal(c.calls, 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(e.calls, 1);
	assert_true(c.order < a.order);
	assert_true(a.order < b.order);
	assert_true(b.order < e.order);
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
}

/*
 * Many timeouts pushed later, whose old deadlines all pass at once: an fd
 * event is still served in the first wait, no timeout fires, and once the
 * old deadlines are worked off nothing is left due.
 */
static int later_fd_calls;

static int later_fd_cb(struct event *evt, uint32_t events)
{
	char c;

	(void)events;
	later_fd_calls++;
	assert_int_equal(read(evt->fd, &c, 1), 1);
	return EVENTCB_CONTINUE;
}

static void test_push_later_cohort_no_starvation(void **state)
{
	const int n = (int)scaled(20000, 3000);
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct tt *t = calloc((size_t)n, sizeof(*t));
	int p[2];

	(void)state;
	assert_non_null(t);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct event rd = EVENT_ON_STACK(later_fd_cb, p[0], EPOLLIN);
	int64_t d1 = now_ns() + 20 * NS_PER_MS, d2 = d1 + 3600 * NS_PER_S;
	for (int i = 0; i < n; i++) {
		tt_init(&t[i], -1, 0);
		assert_int_equal(tt_add(d, &t[i], d1 / NS_PER_S, d1 % NS_PER_S, 1), 0);
	}
	for (int i = 0; i < n; i++)
		assert_int_equal(tt_mod(&t[i], d2 / NS_PER_S, d2 % NS_PER_S), 0);
	assert_int_equal(event_add(d, &rd), 0);
	while (now_ns() < d1 + 5 * NS_PER_MS)
		sleep_ms(2);
	assert_int_equal(write(p[1], "x", 1), 1);
	later_fd_calls = 0;
	/* The first wait serves the fd; the old deadlines are worked off over
	 * a few waits (at most the per-wait budget each); no timeout runs. */
	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	assert_int_equal(later_fd_calls, 1);
	for (int i = 0; i < n / 1024 + 2; i++)
		assert_true(vent_wait(d, 0, NULL) >= 0);
	assert_int_equal(g_calls, 0);
	/* Nothing is left due: a bounded wait now blocks for its full time. */
	int64_t t0 = now_ns();
	assert_int_equal(vent_wait(d, 30, NULL), 0);
	assert_true(now_ns() - t0 >= 25 * NS_PER_MS);
	free_dispatcher(d);
	free(t);
	close(p[0]);
	close(p[1]);
}

/* ------------------------------------------------------------------------
 * Past deadlines, re-arming from callbacks
 */

static int g_wait_timer_calls;

static int rearm_past_hook(struct tt *t)
{
	g_wait_timer_calls++;
	/* To the past: absolute 1 s after the epoch, or relative 0+1 ns. */
	if (t->calls % 2) {
		t->e.flags |= TMO_ABS;
		struct timespec ts = { 1, 0 };
		assert_int_equal(event_mod_timeout(&t->e, &ts), 0);
	} else {
		t->e.flags &= (unsigned short)~TMO_ABS;
		struct timespec ts = { 0, 1 };
		assert_int_equal(event_mod_timeout(&t->e, &ts), 0);
	}
	t->deadline = ts_ns(&t->e.tmo);
	return EVENTCB_CONTINUE;
}

static void test_past_deadline_no_livelock(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct tt tm, fd;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	tt_init(&tm, -1, 0);
	tm.hook = rearm_past_hook;
	assert_int_equal(tt_add(d, &tm, 0, 1, 0), 0);
	tt_init(&fd, p[0], EPOLLIN); /* never drained: ready on every wait */
	assert_int_equal(event_add(d, &fd.e), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	sleep_ms(2);
	for (int i = 0; i < 50; i++) {
		g_wait_timer_calls = 0;
		int before = fd.calls;
		int rc = vent_wait(d, 5000, NULL);
		assert_true(rc >= 1);
		/* Each wait returns; the timer at most once, the fd every time. */
		assert_true(g_wait_timer_calls <= 1);
		assert_int_equal(fd.calls, before + 1);
	}
	/* And the timer does keep firing (once per wait once it is due). */
	assert_true(tm.calls >= 25);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
	assert_int_equal(g_early, 0);
}

/* A periodic timer: re-armed from its own callback, never early. */
static int periodic_hook(struct tt *t)
{
	if (t->calls < 5)
		assert_int_equal(tt_mod(t, 0, 7 * NS_PER_MS), 0);
	return EVENTCB_CONTINUE;
}

/* Cancels or moves the peer, whose timeout is expired in the same batch. */
static int g_peer_action;

static int peer_hook(struct tt *t)
{
	struct tt *o = t->peer;

	if (!o)
		return EVENTCB_CONTINUE;
	t->peer = NULL;
	switch (g_peer_action) {
	case 0: /* cancel */
		assert_int_equal(tt_mod(o, 0, 0), 0);
		break;
	case 1: /* later (relative) */
		o->e.flags &= (unsigned short)~TMO_ABS;
		assert_int_equal(tt_mod(o, 0, 40 * NS_PER_MS), 0);
		break;
	case 2: /* to the past: next wait, not this one */
		o->e.flags |= TMO_ABS;
		assert_int_equal(tt_mod(o, 0, 1), 0);
		break;
	}
	return EVENTCB_CONTINUE;
}

static void test_mod_timeout_from_callbacks(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct tt per, a, b, f;
	int p[2];

	(void)state;
	tt_init(&per, -1, 0);
	per.hook = periodic_hook;
	assert_int_equal(tt_add(d, &per, 0, 5 * NS_PER_MS, 0), 0);
	wait_calls(d, &per, 5);
	assert_int_equal(per.early, 0);
	assert_int_equal(vent_wait(d, 30, NULL), 0);
	assert_int_equal(per.calls, 5);

	for (g_peer_action = 0; g_peer_action < 3; g_peer_action++) {
		tt_init(&a, -1, 0);
		tt_init(&b, -1, 0);
		a.hook = peer_hook;
		a.peer = &b;
		/* Same deadline, a armed first: a runs first in the batch. */
		int64_t when = now_ns() + 5 * NS_PER_MS;
		assert_int_equal(tt_add(d, &a, when / NS_PER_S, when % NS_PER_S, 1), 0);
		assert_int_equal(tt_add(d, &b, when / NS_PER_S, when % NS_PER_S, 1), 0);
		sleep_ms(10);
		assert_int_equal(vent_wait(d, 5000, NULL), 1);
		assert_int_equal(a.calls, 1);
		assert_int_equal(b.calls, 0);
		if (g_peer_action == 0) {
			assert_int_equal(vent_wait(d, 60, NULL), 0);
			assert_int_equal(b.calls, 0);
		} else {
			wait_calls(d, &b, 1);
			assert_true(b.fired_at >= b.deadline);
		}
		assert_int_equal(event_remove(&a.e), 0);
		assert_int_equal(event_remove(&b.e), 0);
	}

	/* An fd callback arms its own timeout; the fd event does not cancel it. */
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	tt_init(&f, p[0], EPOLLIN);
	f.drain = 1;
	f.hook = NULL;
	assert_int_equal(event_add(d, &f.e), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(tt_mod(&f, 0, 15 * NS_PER_MS), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(f.reason, REASON_EVENT_OCCURED);
	wait_calls(d, &f, 3);
	assert_int_equal(f.reason, REASON_TIMEOUT);
	assert_int_equal(f.events, 0);
	assert_true(f.fired_at >= f.deadline);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
	assert_int_equal(g_early, 0);
}

/*
 * Pushing a deadline later makes no timerfd_settime(): the kernel timer
 * (read through /proc/self/fdinfo) still holds the earlier expiry. Pulling
 * it earlier re-arms at once.
 */
static int find_timerfd(struct dispatcher *d)
{
	char path[64], line[256];
	int found = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", dispatcher_inner_epfd(d));
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		int tfd;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %*x data: %llx", &tfd, &data) == 2 &&
		    data == UINT64_MAX)
			found = tfd;
	}
	fclose(f);
	return found;
}

/* Remaining time of the kernel timer, in ns (0: disarmed). */
static int64_t timer_remaining(int tfd)
{
	char path[64], line[256];
	int64_t rem = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", tfd);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		long long s, ns;
		if (sscanf(line, "it_value: (%lld, %lld)", &s, &ns) == 2)
			rem = s * NS_PER_S + ns;
	}
	fclose(f);
	assert_true(rem >= 0);
	return rem;
}

static void test_push_later_costs_no_settime(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct tt t;

	(void)state;
	int tfd = find_timerfd(d);
	assert_true(tfd >= 0);
	assert_int_equal(timer_remaining(tfd), 0);
	tt_init(&t, -1, 0);
	assert_int_equal(tt_add(d, &t, 2, 0, 0), 0);
	int64_t rem = timer_remaining(tfd);
	assert_true(rem > 0 && rem <= 2 * NS_PER_S);
	/* Later: the kernel keeps the 2 s expiry. */
	assert_int_equal(tt_mod(&t, 10, 0), 0);
	rem = timer_remaining(tfd);
	assert_true(rem > 0 && rem <= 2 * NS_PER_S);
	/* Earlier: re-armed. */
	assert_int_equal(tt_mod(&t, 0, 50 * NS_PER_MS), 0);
	rem = timer_remaining(tfd);
	assert_true(rem > 0 && rem <= 50 * NS_PER_MS);
	/* Later again, then the early kernel expiry fires for nothing. */
	assert_int_equal(tt_mod(&t, 0, 200 * NS_PER_MS), 0);
	assert_true(timer_remaining(tfd) <= 50 * NS_PER_MS);
	wait_calls(d, &t, 1);
	assert_true(t.fired_at >= t.deadline);
	free_dispatcher(d);
	assert_int_equal(g_early, 0);
}

/* ------------------------------------------------------------------------
 * Timer macros
 */

static int timer_fn_calls;
static void *timer_fn_arg;

static void timer_fn(void *arg)
{
	timer_fn_calls++;
	timer_fn_arg = arg;
}

static int plain_cb_calls;

static int plain_cb(struct event *evt, uint32_t events)
{
	(void)events;
	assert_int_equal(evt->reason, REASON_TIMEOUT);
	assert_int_equal(evt->fd, -1);
	plain_cb_calls++;
	return EVENTCB_CLEANUP;
}

static void test_timer_macros(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	int x;

	(void)state;
	/* us = 0: 1 ns, due on the next wait. */
	struct event t0 = TIMER_EVENT_ON_STACK(plain_cb, 0);
	assert_int_equal(t0.fd, -1);
	assert_int_equal(t0.ep.events, 0);
	assert_int_equal(t0.tmo.tv_sec, 0);
	assert_int_equal(t0.tmo.tv_nsec, 1);
	assert_ptr_equal(t0.cleanup, cleanup_event_on_stack);
	assert_null(t0.dsp);
	assert_int_equal(event_add(d, &t0), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(plain_cb_calls, 1);
	assert_null(t0.dsp);

	/* 2.5 s in µs: split into seconds and nanoseconds (+1 ns). */
	struct event t1 = TIMER_EVENT_ON_STACK(plain_cb, 2500000);
	assert_int_equal(t1.tmo.tv_sec, 2);
	assert_int_equal(t1.tmo.tv_nsec, 500000001);
	struct event w = EVENT_W_TMO_ON_STACK(plain_cb, 7, EPOLLIN, 1500000);
	assert_int_equal(w.fd, 7);
	assert_int_equal(w.ep.events, EPOLLIN);
	assert_int_equal(w.tmo.tv_sec, 1);
	assert_int_equal(w.tmo.tv_nsec, 500000000);

	/* A 20 ms timer is not early. */
	struct event t2 = TIMER_EVENT_ON_STACK(plain_cb, 20000);
	int64_t start = now_ns();
	assert_int_equal(event_add(d, &t2), 0);
	while (plain_cb_calls < 2)
		assert_true(vent_wait(d, 5000, NULL) >= 0);
	assert_true(now_ns() - start >= 20 * NS_PER_MS);

	/* On the heap: the cleanup frees it (ASan/valgrind check). */
	struct event *h = malloc(sizeof(*h));
	assert_non_null(h);
	*h = TIMER_EVENT_ON_HEAP(plain_cb, 1000);
	assert_ptr_equal(h->cleanup, cleanup_event_on_heap);
	assert_int_equal(event_add(d, h), 0);
	while (plain_cb_calls < 3)
		assert_true(vent_wait(d, 5000, NULL) >= 0);

	/* struct timer_event: fn(arg) once, then cleaned up. */
	struct timer_event te = TIMER_ON_STACK(timer_fn, &x, 0);
	assert_ptr_equal(te.e.callback, _call_timer_cb);
	assert_ptr_equal(te.timer_fn, timer_fn);
	assert_ptr_equal(te.timer_arg, &x);
	assert_int_equal(event_add(d, &te.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(timer_fn_calls, 1);
	assert_ptr_equal(timer_fn_arg, &x);
	assert_null(te.e.dsp);

	struct timer_event *th = malloc(sizeof(*th));
	assert_non_null(th);
	*th = TIMER_ON_HEAP(timer_fn, th, 5000);
	assert_int_equal(th->e.tmo.tv_nsec, 5000001);
	assert_int_equal(event_add(d, &th->e), 0);
	while (timer_fn_calls < 2)
		assert_true(vent_wait(d, 5000, NULL) >= 0);
	assert_ptr_equal(timer_fn_arg, th); /* freed now: only compared */

	/* _call_timer_cb without a function: just EVENTCB_CLEANUP. */
	struct timer_event nofn = TIMER_ON_STACK(NULL, NULL, 0);
	assert_int_equal(_call_timer_cb(&nofn.e, 0), EVENTCB_CLEANUP);
	assert_int_equal(_call_timer_cb(&te.e, 0), EVENTCB_CLEANUP);
	assert_int_equal(timer_fn_calls, 3);

	/* Nothing left: no cleanup runs here. */
	free_dispatcher(d);
	assert_int_equal(plain_cb_calls, 3);
}

/* ------------------------------------------------------------------------
 * A big cohort of expiring timers does not starve fd events
 */

struct small {
	struct event e;
	int idx;
};

static int cohort_next;   /* the index expected next */
static int cohort_bad;    /* out of order */
static int cohort_fired;
static int cohort_in_wait;

static int cohort_cb(struct event *evt, uint32_t events)
{
	struct small *s = (struct small *)evt;

	(void)events;
	if (s->idx != cohort_next)
		cohort_bad++;
	cohort_next = s->idx + 1;
	cohort_fired++;
	cohort_in_wait++;
	return EVENTCB_CONTINUE;
}

static void test_big_cohort_no_starvation(void **state)
{
	const int n = (int)scaled(100000, 10000);
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct small *s = calloc((size_t)n, sizeof(*s));
	struct tt fd;
	int p[2];

	(void)state;
	assert_non_null(s);
	cohort_next = 0;
	cohort_bad = 0;
	cohort_fired = 0;
	/* All due at one absolute instant: they fire in arming order. */
	int64_t when = now_ns() + 20 * NS_PER_MS;
	for (int i = 0; i < n; i++) {
		s[i].e = __EVENT_INIT(cohort_cb, NULL, -1, 0, when / NS_PER_S, when % NS_PER_S);
		s[i].e.flags = TMO_ABS;
		s[i].idx = i;
		assert_int_equal(event_add(d, &s[i].e), 0);
	}
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	tt_init(&fd, p[0], EPOLLIN);
	fd.drain = 1;
	assert_int_equal(event_add(d, &fd.e), 0);
	while (now_ns() < when)
		sleep_ms(5);

	/* The first wait starts the cohort but does not run all of it. */
	cohort_in_wait = 0;
	assert_true(vent_wait(d, 5000, NULL) > 0);
	int first = cohort_in_wait;
	assert_true(first > 0);
	assert_true(first < n);

	/* The fd becomes ready while most of the cohort is pending. */
	assert_int_equal(write(p[1], "x", 1), 1);
	int waits = 0;
	while (fd.calls == 0 && waits < 3) {
		assert_true(vent_wait(d, 5000, NULL) > 0);
		waits++;
	}
	assert_int_equal(fd.calls, 1);
	assert_true(cohort_fired < n);

	/* Every wait makes progress; all fire once, in arming order. */
	int max_per_wait = first;
	int64_t give_up = now_ns() + 60 * NS_PER_S * (int64_t)slowdown();
	while (cohort_fired < n && now_ns() < give_up) {
		cohort_in_wait = 0;
		assert_true(vent_wait(d, 5000, NULL) > 0);
		assert_true(cohort_in_wait > 0);
		if (cohort_in_wait > max_per_wait)
			max_per_wait = cohort_in_wait;
		/* fd events keep being served between the chunks. */
		if (cohort_fired < n && cohort_fired % 4 == 0) {
			int before = fd.calls;
			assert_int_equal(write(p[1], "x", 1), 1);
			assert_true(vent_wait(d, 5000, NULL) > 0);
			assert_int_equal(fd.calls, before + 1);
		}
	}
	assert_int_equal(cohort_fired, n);
	assert_int_equal(cohort_bad, 0);
	assert_true(max_per_wait < n / 4);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	free_dispatcher(d);
	free(s);
	close(p[0]);
	close(p[1]);
}


/*
 * The lazy re-queue against a model. Random arms, re-arms (earlier and
 * later, so that heap entries keep older keys than their events), cancels,
 * removals and re-adds on a few thousand timer events, all with absolute
 * deadlines: those "due" lie in the past (a few distinct values, many
 * ties), the others an hour ahead. Then the loop runs until nothing is
 * due. Expected, exactly: every due timeout fires once, in (deadline, last
 * arm) order, across as many waits as the per-wait budget needs; no other
 * one fires. No timing margin is involved.
 */
static int model_fired[4096];
static int model_nfired;

static int model_cb(struct event *evt, uint32_t events)
{
	struct tt *t = (struct tt *)evt;

	(void)events;
	assert_int_equal(evt->reason, REASON_TIMEOUT);
	model_fired[model_nfired++] = t->idx;
	return EVENTCB_CONTINUE;
}

static void test_lazy_requeue_model(void **state)
{
	enum { N = 3000 };
	const int ops = (int)scaled(40000, 8000);
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	static struct tt t[N];
	static long long arm[N]; /* model: last arm (counter), -1: no timeout */
	static int64_t when[N];
	static bool added[N];
	long long arms = 0;
	const int64_t now = now_ns();
	const int64_t past = now - 10 * NS_PER_S, future = now + 3600 * NS_PER_S;
	uint64_t r = 12345;

	(void)state;
	model_nfired = 0;
	for (int i = 0; i < N; i++) {
		tt_init(&t[i], -1, 0);
		t[i].idx = i;
		t[i].e.callback = model_cb;
		arm[i] = -1;
	}
	for (int k = 0; k < ops; k++) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		const int i = (int)((r >> 33) % N);
		const unsigned what = (unsigned)(r >> 20) % 16;
		/* Deadlines: 8 past values 1 ms apart, or one of 8 future ones. */
		const unsigned pick = (unsigned)(r >> 8) % 16;
		const int64_t w = pick < 8 ? past + (int64_t)pick * NS_PER_MS
					   : future + (int64_t)(pick - 8) * NS_PER_MS;
		if (!added[i]) {
			t[i].e.flags = TMO_ABS;
			t[i].e.tmo.tv_sec = (time_t)(w / NS_PER_S);
			t[i].e.tmo.tv_nsec = (long)(w % NS_PER_S);
			assert_int_equal(event_add(d, &t[i].e), 0);
			added[i] = true;
			arm[i] = arms++;
			when[i] = w;
		} else if (what == 0) {
			assert_int_equal(event_remove(&t[i].e), 0);
			added[i] = false;
			arm[i] = -1;
		} else if (what == 1) {
			struct timespec zero = {0, 0};

			assert_int_equal(event_mod_timeout(&t[i].e, &zero), 0);
			arm[i] = -1;
		} else {
			struct timespec ts = {(time_t)(w / NS_PER_S), (long)(w % NS_PER_S)};

			assert_int_equal(event_mod_timeout(&t[i].e, &ts), 0);
			arm[i] = arms++;
			when[i] = w;
		}
	}
	/* The model's order: due timeouts by (deadline, last arm). */
	int want[N], nwant = 0;
	for (int i = 0; i < N; i++)
		if (arm[i] >= 0 && when[i] < now)
			want[nwant++] = i;
	for (int a = 1; a < nwant; a++)
		for (int b = a; b > 0; b--) {
			const int x = want[b - 1], y = want[b];
			if (when[x] < when[y] || (when[x] == when[y] && arm[x] < arm[y]))
				break;
			want[b - 1] = y;
			want[b] = x;
		}
	for (int k = 0; k < 2 * N / 1024 + 4; k++)
		assert_true(vent_wait(d, 0, NULL) >= 0);
	assert_int_equal(model_nfired, nwant);
	for (int k = 0; k < nwant; k++)
		assert_int_equal(model_fired[k], want[k]);
	/* What fired has no timeout left; the rest is still armed. */
	for (int i = 0; i < N; i++) {
		if (!added[i])
			continue;
		if (arm[i] >= 0 && when[i] < now)
			assert_true(t[i].e.tmo.tv_sec == 0 && t[i].e.tmo.tv_nsec == 0);
		else if (arm[i] >= 0)
			assert_true(ts_ns(&t[i].e.tmo) == when[i]);
	}
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	free_dispatcher(d);
}

/*
 * A deadline pushed later, then brought back earlier than where it was
 * pushed but not before its first deadline: the heap entry keeps the first
 * deadline, the event fires at the last one it was given, never at the
 * first nor at the pushed one; relative re-arms, real time.
 */
static void test_push_later_then_earlier(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	static struct tt a, b;

	(void)state;
	tt_init(&a, -1, 0);
	tt_init(&b, -1, 0);
	a.idx = 1;
	b.idx = 2;
	assert_int_equal(tt_add(d, &a, 0, 20 * NS_PER_MS, 0), 0);
	assert_int_equal(tt_mod(&a, 10, 0), 0);
	assert_int_equal(tt_mod(&a, 0, 80 * NS_PER_MS), 0);
	/* b is armed after a, at a's final deadline: it fires after a. */
	assert_int_equal(tt_add(d, &b, a.e.tmo.tv_sec, a.e.tmo.tv_nsec, 1), 0);
	wait_calls(d, &a, 1);
	wait_calls(d, &b, 1);
	assert_true(a.fired_at >= a.deadline);
	assert_true(a.order < b.order);
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
}

/* ------------------------------------------------------------------------
 * Batch-stamped re-arms: a relative event_mod_timeout() from a callback
 * takes its deadline from one clock read when the batch ends (event.h).
 */

/* An always-ready fd event whose callback runs a step of the scenario. */
struct stamp_io {
	struct event e; /* first */
	int (*step)(struct stamp_io *io);
	int64_t end;    /* clock when the step returned */
};

static int stamp_io_cb(struct event *evt, uint32_t events)
{
	struct stamp_io *io = (struct stamp_io *)evt;
	int rc;

	(void)events;
	g_in_cb++;
	rc = io->step(io);
	g_in_cb--;
	io->end = now_ns();
	return rc;
}

/* Adds two always-ready events (a pipe with a byte never read), run in the
 * order added in one batch; returns the pipe. */
static void stamp_ios(struct dispatcher *d, struct stamp_io io[2], int p[2])
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	for (int i = 0; i < 2; i++) {
		memset(&io[i], 0, sizeof(io[i]));
		io[i].e = __EVENT_INIT(stamp_io_cb, NULL, i ? p[1] : p[0], i ? EPOLLOUT : EPOLLIN,
				       0, 0);
		assert_int_equal(event_add(d, &io[i].e), 0);
	}
}

static struct tt *g_st[4];
static struct timespec g_tmo_in_batch;

static int rearm_step(struct stamp_io *io)
{
	(void)io;
	/* Outside a batch this would be {now + 5 ms}; here the deadline
	 * waits for the end of the batch. */
	assert_int_equal(tt_mod(g_st[0], 0, 5 * NS_PER_MS), 0);
	g_tmo_in_batch = g_st[0]->e.tmo;
	return EVENTCB_CONTINUE;
}

static int slow_step(struct stamp_io *io)
{
	(void)io;
	sleep_ms(20); /* the rest of the batch */
	return EVENTCB_CONTINUE;
}

static int nop_step(struct stamp_io *io)
{
	(void)io;
	return EVENTCB_CONTINUE;
}

/*
 * The deadline is the end of the batch plus the timeout: after the call,
 * and after the callbacks that ran after it in the batch; the timer fires
 * no earlier than that. Outside a batch the same call reads the clock.
 */
static void test_stamped_rearm_never_early(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct stamp_io io[2];
	struct tt t;
	int p[2];

	(void)state;
	tt_init(&t, -1, 0);
	assert_int_equal(tt_add(d, &t, 100, 0, 0), 0);
	const struct timespec before = t.e.tmo;
	stamp_ios(d, io, p);
	g_st[0] = &t;
	io[0].step = rearm_step;
	io[1].step = slow_step;
	assert_int_equal(vent_wait(d, 1000, NULL), 2);
	/* Untouched during the batch, stamped when it ended. */
	assert_true(g_tmo_in_batch.tv_sec == before.tv_sec &&
		    g_tmo_in_batch.tv_nsec == before.tv_nsec);
	const int64_t stamped = ts_ns(&t.e.tmo);
	assert_true(stamped >= io[1].end + 5 * NS_PER_MS);
	assert_true(stamped >= t.deadline); /* the call + 5 ms */
	expect_normalised(&t.e.tmo);
	t.deadline = stamped;
	event_remove(&io[0].e);
	event_remove(&io[1].e);
	wait_calls(d, &t, 1);
	assert_true(t.fired_at >= stamped);

	/* Outside a batch: the deadline is there when the call returns. */
	int64_t t0 = now_ns();
	assert_int_equal(tt_mod(&t, 0, 5 * NS_PER_MS), 0);
	assert_true(ts_ns(&t.e.tmo) >= t0 + 5 * NS_PER_MS);
	assert_true(ts_ns(&t.e.tmo) <= now_ns() + 5 * NS_PER_MS);
	wait_calls(d, &t, 2);
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
}

/* Re-arms in a deliberate order: ties in call order. */
static int ties_step(struct stamp_io *io)
{
	(void)io;
	/* c, a, b: the same stamped deadline, fired in this order. */
	assert_int_equal(tt_mod(g_st[2], 0, 2 * NS_PER_MS), 0);
	assert_int_equal(tt_mod(g_st[0], 0, 2 * NS_PER_MS), 0);
	assert_int_equal(tt_mod(g_st[1], 0, 2 * NS_PER_MS), 0);
	/* d: pushed later than its entry (armed at 1 ms), stamped too. */
	assert_int_equal(tt_mod(g_st[3], 0, 30 * NS_PER_MS), 0);
	return EVENTCB_CONTINUE;
}

/*
 * Tie order of batch-stamped re-arms is call order (the arm sequence is
 * taken by the call, the deadline by the batch's end); a stamped deadline
 * that pushes a queued one later keeps its place among timers armed after
 * the batch at the same deadline.
 */
static void test_stamped_ties_and_pushed_later(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct stamp_io io[2];
	struct tt t[5];
	int p[2];

	(void)state;
	for (int i = 0; i < 5; i++) {
		tt_init(&t[i], -1, 0);
		t[i].idx = i;
		if (i < 4)
			g_st[i] = &t[i];
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(tt_add(d, &t[i], 60, 0, 0), 0);
	assert_int_equal(tt_add(d, &t[3], 0, 1 * NS_PER_MS, 0), 0);
	stamp_ios(d, io, p);
	io[0].step = ties_step;
	io[1].step = nop_step;
	assert_int_equal(vent_wait(d, 1000, NULL), 2);
	event_remove(&io[0].e);
	event_remove(&io[1].e);
	/* One clock read stamped all three. */
	assert_true(ts_ns(&t[0].e.tmo) == ts_ns(&t[1].e.tmo));
	assert_true(ts_ns(&t[0].e.tmo) == ts_ns(&t[2].e.tmo));
	assert_true(ts_ns(&t[3].e.tmo) == ts_ns(&t[0].e.tmo) + 28 * NS_PER_MS);
	/* t[4]: armed after the batch at d's stamped deadline: after d. */
	assert_int_equal(tt_add(d, &t[4], t[3].e.tmo.tv_sec, t[3].e.tmo.tv_nsec, 1), 0);
	for (int i = 0; i < 4; i++)
		t[i].deadline = ts_ns(&t[i].e.tmo);
	wait_calls(d, &t[4], 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(t[i].calls, 1);
	assert_true(t[2].order < t[0].order);
	assert_true(t[0].order < t[1].order);
	assert_true(t[1].order < t[3].order);
	assert_true(t[3].order < t[4].order);
	/* d did not fire at its first deadline (1 ms): its entry was re-queued. */
	assert_true(t[3].fired_at >= t[3].deadline);
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
}

static struct tt *g_heap_tt;
static struct tt g_reuse;

static int rearm_remove_step(struct stamp_io *io)
{
	/* Re-armed, then removed and freed: the stamp must not touch it. */
	assert_int_equal(tt_mod(g_heap_tt, 0, 1 * NS_PER_MS), 0);
	assert_int_equal(event_remove(&g_heap_tt->e), 0);
	free(g_heap_tt);
	g_heap_tt = NULL;
	/* Re-armed, then cancelled. */
	assert_int_equal(tt_mod(g_st[0], 0, 1 * NS_PER_MS), 0);
	assert_int_equal(tt_mod(g_st[0], 0, 0), 0);
	/* Re-armed, removed, and its slot reused by an event with a timeout
	 * of its own: the old stamp is not applied to the new event. */
	assert_int_equal(tt_mod(g_st[1], 0, 1 * NS_PER_MS), 0);
	assert_int_equal(event_remove(&g_st[1]->e), 0);
	tt_init(&g_reuse, -1, 0);
	g_reuse.e.flags |= TMO_ABS;
	g_reuse.e.tmo = (struct timespec){ 1 << 30, 0 };
	assert_int_equal(event_add(io->e.dsp, &g_reuse.e), 0);
	/* Re-armed twice: the second call wins. */
	assert_int_equal(tt_mod(g_st[2], 0, 1 * NS_PER_MS), 0);
	assert_int_equal(tt_mod(g_st[2], 0, 3 * NS_PER_MS), 0);
	return EVENTCB_CONTINUE;
}

/*
 * A stamp whose event was removed (and freed), cancelled, removed with its
 * slot reused, or re-armed again in the same batch is dropped: nothing
 * fires for it, nothing is touched (ASan/valgrind see a freed event).
 */
static void test_stamped_rearm_then_remove(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct stamp_io io[2];
	struct tt t[3];
	int p[2];

	(void)state;
	g_heap_tt = calloc(1, sizeof(*g_heap_tt));
	assert_non_null(g_heap_tt);
	tt_init(g_heap_tt, -1, 0);
	assert_int_equal(tt_add(d, g_heap_tt, 60, 0, 0), 0);
	for (int i = 0; i < 3; i++) {
		tt_init(&t[i], -1, 0);
		t[i].idx = i;
		g_st[i] = &t[i];
		assert_int_equal(tt_add(d, &t[i], 60, 0, 0), 0);
	}
	stamp_ios(d, io, p);
	io[0].step = rearm_remove_step;
	io[1].step = nop_step;
	assert_int_equal(vent_wait(d, 1000, NULL), 2);
	assert_null(g_heap_tt);
	event_remove(&io[0].e);
	event_remove(&io[1].e);
	assert_true(t[0].e.tmo.tv_sec == 0 && t[0].e.tmo.tv_nsec == 0);
	assert_null(t[1].e.dsp);
	assert_true(g_reuse.e.tmo.tv_sec == 1 << 30 && g_reuse.e.tmo.tv_nsec == 0);
	t[2].deadline = ts_ns(&t[2].e.tmo);
	assert_true(t[2].deadline >= io[1].end + 3 * NS_PER_MS);
	wait_calls(d, &t[2], 1);
	/* Give the dropped ones time to misfire. */
	assert_true(vent_wait(d, 20, NULL) >= 0);
	assert_int_equal(t[0].calls, 0);
	assert_int_equal(t[1].calls, 0);
	assert_int_equal(g_reuse.calls, 0);
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
}

static int push_due_later_step(struct stamp_io *io)
{
	(void)io;
	/* Its deadline (1 ms) passed before the batch: pushed later. */
	assert_int_equal(tt_mod(g_st[0], 0, 20 * NS_PER_MS), 0);
	return EVENTCB_CONTINUE;
}

/*
 * A timer pushed later from a callback in the very batch in which its old
 * deadline comes up: the batch finds the timer re-armed (not due), re-queues
 * its entry under the pending key, and the stamp at the end of the batch
 * must move the entry to the stamped deadline even though that deadline is
 * later than the old one (a stamp that moves a deadline later otherwise
 * leaves the entry alone). It fires once, at the stamped deadline.
 */
static void test_stamped_push_later_of_due_timer(void **state)
{
	struct dispatcher *d = mkdsp(CLOCK_MONOTONIC);
	struct stamp_io io[2];
	struct tt t;
	int p[2];

	(void)state;
	for (int round = 0; round < 3; round++) {
		tt_init(&t, -1, 0);
		g_st[0] = &t;
		assert_int_equal(tt_add(d, &t, 0, 1 * NS_PER_MS, 0), 0);
		stamp_ios(d, io, p);
		io[0].step = push_due_later_step;
		io[1].step = nop_step;
		/* The timerfd and both pipe ends ready in one batch. */
		sleep_ms(5);
		assert_int_equal(vent_wait(d, 1000, NULL), 2);
		assert_int_equal(t.calls, 0);
		event_remove(&io[0].e);
		event_remove(&io[1].e);
		close(p[0]);
		close(p[1]);
		const int64_t stamped = ts_ns(&t.e.tmo);
		assert_true(stamped >= io[1].end + 20 * NS_PER_MS);
		t.deadline = stamped;
		wait_calls(d, &t, 1);
		assert_true(t.fired_at >= stamped);
		assert_int_equal(event_remove(&t.e), 0);
	}
	assert_int_equal(g_early, 0);
	free_dispatcher(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_normalisation),
		CASE(test_absolute_vs_relative),
		CASE(test_huge_values),
		CASE(test_no_early_firing_monotonic),
		CASE(test_no_early_firing_realtime),
		CASE(test_no_early_firing_boottime),
		CASE(test_deadline_order_and_ties),
		CASE(test_push_later_keeps_arming_order),
		CASE(test_push_later_cohort_no_starvation),
		CASE(test_past_deadline_no_livelock),
		CASE(test_mod_timeout_from_callbacks),
		CASE(test_push_later_costs_no_settime),
		CASE(test_timer_macros),
		CASE(test_big_cohort_no_starvation),
		CASE(test_lazy_requeue_model),
		CASE(test_push_later_then_earlier),
		CASE(test_stamped_rearm_never_early),
		CASE(test_stamped_ties_and_pushed_later),
		CASE(test_stamped_rearm_then_remove),
		CASE(test_stamped_push_later_of_due_timer),
	};

	return cmocka_run_group_tests_name("timeout", tests, NULL, NULL);
}
