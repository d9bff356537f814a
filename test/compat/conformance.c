/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * compat/conformance - minivent's documented contracts that go beyond
 * event.h: ts-util.h / tv-util.h (search and insert) and the timeout list
 * of timeout.h. Written against minivent's header names only ("-I
 * include/vent", #include "timeout.h"), built against libvent and, with
 * -Dminivent_compat=true, against libminivent.so.
 *
 * The timeout list cases check vent's guarantees as well: never early,
 * ties in arming order, changes from any callback, no fd leaked, -ECHILD
 * after fork.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event.h"
#include "timeout.h"
#include "ts-util.h"
#include "tv-util.h"

#include <fcntl.h>

/* util/case.h includes no vent header: this program sees them only as
 * minivent's ("-I include/vent"). */
#include "../util/case.h"

/* ---- ts-util.h / tv-util.h ------------------------------------------------ */

static void test_ts_search_before_equals(void **state)
{
	struct timespec a = {1, 0}, b = {1, 0}, c = {2, 0};
	struct timespec *arr[3] = {&a, &b, &c};
	struct timespec k = {1, 0};
	(void)state;

	/* minivent's README of ts_search: tvs[n-1] < new <= tvs[n]. */
	assert_int_equal(ts_search(arr, 3, &k), 0);
	k = (struct timespec){2, 0};
	assert_int_equal(ts_search(arr, 3, &k), 2);
	k = (struct timespec){0, 999999999};
	assert_int_equal(ts_search(arr, 3, &k), 0);
	k = (struct timespec){1, 1};
	assert_int_equal(ts_search(arr, 3, &k), 2);
	k = (struct timespec){5, 0};
	assert_int_equal(ts_search(arr, 3, &k), 3);
	assert_int_equal(ts_search(arr, 0, &k), 0);
}

static void test_ts_errors_and_normalisation(void **state)
{
	struct timespec a = {1, 0}, b = {3, 0};
	struct timespec *arr[3] = {&a, &b, NULL};
	size_t len = 2;
	struct timespec k = {0, 1500000000};
	(void)state;

	assert_int_equal(ts_search(NULL, 2, &k), -EINVAL);
	assert_int_equal(ts_search(arr, 2, NULL), -EINVAL);
	/* Not normalised on failure... */
	assert_int_equal(k.tv_sec, 0);
	assert_int_equal(k.tv_nsec, 1500000000);
	/* ...but in place on success. */
	assert_int_equal(ts_search(arr, 2, &k), 1);
	assert_int_equal(k.tv_sec, 1);
	assert_int_equal(k.tv_nsec, 500000000);

	k = (struct timespec){0, 2500000000};
	assert_int_equal(ts_insert(NULL, &len, 3, &k), -EINVAL);
	assert_int_equal(ts_insert(arr, &len, 3, NULL), -EINVAL);
	assert_int_equal(len, 2);
	/* Full: -EOVERFLOW, nothing changed. */
	assert_int_equal(ts_insert(arr, &len, 2, &k), -EOVERFLOW);
	assert_int_equal(len, 2);
	assert_int_equal(k.tv_nsec, 2500000000);
	assert_int_equal(ts_insert(arr, &len, 3, &k), 1);
	assert_int_equal(len, 3);
	assert_ptr_equal(arr[1], &k);
	assert_ptr_equal(arr[2], &b);
	assert_int_equal(k.tv_sec, 2);
	assert_int_equal(k.tv_nsec, 500000000);
	/* The new element goes before an equal one. */
	struct timespec e = {3, 0};
	struct timespec *arr2[3] = {&a, &b, NULL};
	len = 2;
	assert_int_equal(ts_insert(arr2, &len, 3, &e), 1);
	assert_ptr_equal(arr2[1], &e);
	assert_ptr_equal(arr2[2], &b);
}

static void test_tv_contract(void **state)
{
	struct timeval a = {1, 0}, b = {1, 0}, c = {2, 0};
	struct timeval *arr[4] = {&a, &b, &c, NULL};
	size_t len = 3;
	struct timeval k = {1, 0};
	(void)state;

	assert_int_equal(tv_search(arr, 3, &k), 0);
	assert_int_equal(tv_search(NULL, 3, &k), -EINVAL);
	assert_int_equal(tv_search(arr, 3, NULL), -EINVAL);
	k = (struct timeval){0, 1500000};
	assert_int_equal(tv_insert(arr, &len, 3, &k), -EOVERFLOW);
	assert_int_equal(k.tv_usec, 1500000);
	assert_int_equal(tv_insert(arr, &len, 4, &k), 2);
	assert_int_equal(k.tv_sec, 1);
	assert_int_equal(k.tv_usec, 500000);
	assert_ptr_equal(arr[2], &k);
	assert_ptr_equal(arr[3], &c);
	assert_int_equal(tv_insert(NULL, &len, 8, &k), -EINVAL);
	assert_int_equal(len, 4);
}

/* ---- timeout.h ------------------------------------------------------------- */

#define NREC 64

/* An entry: a struct event with bookkeeping. */
struct entry {
	struct event ev;
	int id;
	long long deadline_ns; /* what the test expects, absolute */
	int runs;
	long runseq; /* when it last ran (a global count of callbacks) */
	int (*action)(struct entry *);
};

static struct event *tl;      /* the list under test */
static int order[NREC * 4];   /* ids in the order their callbacks ran */
static int norder;
static long ncalls;
static bool early;            /* a callback ran before its deadline */
static int bad_reason;

static int entry_cb(struct event *evt, uint32_t events)
{
	struct entry *e = (struct entry *)evt;

	if (evt->reason != REASON_TIMEOUT || events != 0)
		bad_reason++;
	if (evt->tmo.tv_sec != 0 || evt->tmo.tv_nsec != 0)
		bad_reason++;
	if (now_ns() < e->deadline_ns)
		early = true;
	e->runs++;
	e->runseq = ++ncalls;
	if (norder < (int)(sizeof(order) / sizeof(order[0])))
		order[norder++] = e->id;
	return e->action ? e->action(e) : EVENTCB_CONTINUE;
}

static void entry_init(struct entry *e, int id)
{
	memset(e, 0, sizeof(*e));
	e->ev.fd = -1;
	e->ev.callback = entry_cb;
	e->id = id;
}

/* Arms @e at the absolute monotonic time @abs_ns with timeout_add(). */
static int add_abs(struct entry *e, long long abs_ns)
{
	e->ev.flags |= TMO_ABS;
	e->ev.tmo.tv_sec = abs_ns / NS_PER_S;
	e->ev.tmo.tv_nsec = abs_ns % NS_PER_S;
	e->deadline_ns = abs_ns;
	return timeout_add(tl, &e->ev);
}

/* Runs the list once, as the dispatcher would. */
static void run_list(void)
{
	tl->reason = REASON_EVENT_OCCURED;
	assert_int_equal(timeout_event(tl, EPOLLIN), EVENTCB_CONTINUE);
}

static int setup(void **state)
{
	(void)state;
	case_begin();
	tl = new_timeout_event(CLOCK_MONOTONIC);
	assert_non_null(tl);
	norder = 0;
	early = false;
	bad_reason = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free_timeout_event(tl);
	tl = NULL;
	assert_false(early);
	assert_int_equal(bad_reason, 0);
	case_end();
	return 0;
}

static long long timer_value_ns(void)
{
	struct itimerspec its;
	assert_int_equal(timerfd_gettime(tl->fd, &its), 0);
	return ts_ns(&its.it_value);
}

static void test_new_and_free(void **state)
{
	(void)state;
	int fds = fd_count();
	struct event *t = new_timeout_event(CLOCK_REALTIME);

	assert_non_null(t);
	assert_true(t->fd >= 0);
	assert_int_equal(fd_count(), fds + 1);
	assert_int_equal(t->ep.events, EPOLLIN);
	assert_true(t->callback == timeout_event);
	assert_null(t->cleanup);
	assert_null(t->dsp);
	assert_int_equal(timeout_get_clocksource(t), CLOCK_REALTIME);
	free_timeout_event(t);
	assert_int_equal(fd_count(), fds);
	free_timeout_event(NULL);

	errno = 0;
	assert_null(new_timeout_event(-12345));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(fd_count(), fds);

	/* Out of fds: NULL and EMFILE, nothing left open. */
	struct rlimit old, lim;
	int lowest = 0;
	while (fcntl(lowest, F_GETFD) >= 0)
		lowest++;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)lowest; /* every number below is taken */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	errno = 0;
	t = new_timeout_event(CLOCK_MONOTONIC);
	int err = errno;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_null(t);
	assert_int_equal(err, EMFILE);
	assert_int_equal(fd_count(), fds);
}

static void test_null_args(void **state)
{
	struct entry e;
	struct timespec ts = {1, 0};
	(void)state;

	entry_init(&e, 0);
	assert_int_equal(timeout_add(NULL, &e.ev), -EINVAL);
	assert_int_equal(timeout_add(tl, NULL), -EINVAL);
	assert_int_equal(timeout_modify(NULL, &e.ev, &ts), -EINVAL);
	assert_int_equal(timeout_modify(tl, NULL, &ts), -EINVAL);
	assert_int_equal(timeout_modify(tl, &e.ev, NULL), -EINVAL);
	assert_int_equal(timeout_cancel(NULL, &e.ev), -EINVAL);
	assert_int_equal(timeout_cancel(tl, NULL), -EINVAL);
	assert_int_equal(timeout_reset(NULL), -EINVAL);
	assert_int_equal(timeout_get_clocksource(NULL), -EINVAL);
	assert_int_equal(timeout_event(NULL, EPOLLIN), EVENTCB_CONTINUE);
	/* Bad input: no callback, the list itself, a negative relative value. */
	e.ev.tmo = ts;
	e.ev.callback = NULL;
	assert_int_equal(timeout_add(tl, &e.ev), -EINVAL);
	assert_int_equal(timeout_modify(tl, &e.ev, &ts), -EINVAL);
	e.ev.callback = entry_cb;
	tl->tmo = ts;
	assert_int_equal(timeout_add(tl, tl), -EINVAL);
	assert_int_equal(timeout_modify(tl, tl, &ts), -EINVAL);
	tl->tmo = (struct timespec){0, 0};
	e.ev.tmo = (struct timespec){-1, 0};
	assert_int_equal(timeout_add(tl, &e.ev), -EINVAL);
	struct timespec neg = {0, -1};
	assert_int_equal(timeout_modify(tl, &e.ev, &neg), -EINVAL);
	/* Nothing was listed by any of them. */
	assert_int_equal(e.ev.tmo.tv_sec, -1);
	assert_int_equal(timeout_cancel(tl, &e.ev), -ENOENT);
}

static void test_add_contract(void **state)
{
	struct entry e;
	(void)state;

	entry_init(&e, 1);
	/* {0, 0}: nothing done. */
	assert_int_equal(timeout_add(tl, &e.ev), 0);
	assert_int_equal(timeout_cancel(tl, &e.ev), -ENOENT);
	assert_int_equal(timer_value_ns(), 0);

	/* Relative, unnormalised: the absolute expiry comes back normalised. */
	long long before = now_ns();
	e.ev.tmo = (struct timespec){9, 1500000000};
	assert_int_equal(timeout_add(tl, &e.ev), 0);
	long long after = now_ns();
	long long got = ts_ns(&e.ev.tmo);
	assert_true(e.ev.tmo.tv_nsec >= 0 && e.ev.tmo.tv_nsec < NS_PER_S);
	assert_true(got >= before + 10500 * NS_PER_MS && got <= after + 10500 * NS_PER_MS);
	assert_true(timer_value_ns() > 0);
	/* Already listed. */
	assert_int_equal(timeout_add(tl, &e.ev), -EEXIST);
	assert_int_equal(ts_ns(&e.ev.tmo), got);

	/* Cancel: 0, {0, 0}, timer disarmed; a second cancel is -ENOENT. */
	assert_int_equal(timeout_cancel(tl, &e.ev), 0);
	assert_int_equal(e.ev.tmo.tv_sec, 0);
	assert_int_equal(e.ev.tmo.tv_nsec, 0);
	assert_int_equal(timer_value_ns(), 0);
	assert_int_equal(timeout_cancel(tl, &e.ev), -ENOENT);
	/* Never added, with a timeout value: -ENOENT, value cleared. */
	e.ev.tmo = (struct timespec){5, 0};
	assert_int_equal(timeout_cancel(tl, &e.ev), -ENOENT);
	assert_int_equal(e.ev.tmo.tv_sec, 0);

	/* Huge: "never", the timer stays disarmed. */
	e.ev.tmo = (struct timespec){LONG_MAX, 999999999};
	assert_int_equal(timeout_add(tl, &e.ev), 0);
	assert_int_equal(timer_value_ns(), 0);
	assert_int_equal(timeout_cancel(tl, &e.ev), 0);
	assert_int_equal(e.runs, 0);
}

static void test_absolute_past_and_reason(void **state)
{
	struct entry e;
	(void)state;

	entry_init(&e, 7);
	/* Absolute, before the epoch of the clock: expires at once. */
	e.ev.flags = TMO_ABS;
	e.ev.tmo = (struct timespec){0, 1};
	assert_int_equal(timeout_add(tl, &e.ev), 0);
	/* Not the dispatcher's call: nothing runs. */
	tl->reason = REASON_TIMEOUT;
	timeout_event(tl, EPOLLIN);
	tl->reason = REASON_EVENT_OCCURED;
	timeout_event(tl, EPOLLIN | EPOLLERR);
	assert_int_equal(e.runs, 0);
	run_list();
	assert_int_equal(e.runs, 1);
	assert_int_equal(e.ev.reason, 0); /* reset after the callback */
	assert_int_equal(timeout_cancel(tl, &e.ev), -ENOENT);
	assert_int_equal(timer_value_ns(), 0);
}

/* Deadline order, ties in arming order, timeout_modify() re-arms count. */
static void test_order(void **state)
{
	static struct entry e[NREC];
	long long base = now_ns() - NS_PER_S;
	int want[NREC], nwant = 0;
	(void)state;

	/* Deadlines base + (i % 5) ns: many ties. */
	for (int i = 0; i < NREC; i++) {
		entry_init(&e[i], i);
		assert_int_equal(add_abs(&e[i], base + (i % 5)), 0);
	}
	/* Re-arming e[0] to its own deadline puts it after the other ties. */
	struct timespec same = e[0].ev.tmo;
	assert_int_equal(timeout_modify(tl, &e[0].ev, &same), 0);
	/* e[1] moves to the latest slot. */
	struct timespec late = {(base + 4) / NS_PER_S, (base + 4) % NS_PER_S};
	assert_int_equal(timeout_modify(tl, &e[1].ev, &late), 0);
	e[1].deadline_ns = base + 4;

	for (int d = 0; d < 5; d++) {
		for (int i = 0; i < NREC; i++)
			if (i != 0 && i != 1 && i % 5 == d)
				want[nwant++] = i;
		if (d == 0)
			want[nwant++] = 0;
		if (d == 4)
			want[nwant++] = 1;
	}
	run_list();
	assert_int_equal(norder, NREC);
	for (int i = 0; i < NREC; i++)
		assert_int_equal(order[i], want[i]);
	assert_int_equal(timer_value_ns(), 0);
}

static void test_modify_contract(void **state)
{
	struct entry e;
	(void)state;

	entry_init(&e, 3);
	/* Not listed: added. @tmo is not modified. */
	struct timespec rel = {0, 2500000000};
	long long before = now_ns();
	assert_int_equal(timeout_modify(tl, &e.ev, &rel), 0);
	assert_int_equal(rel.tv_sec, 0);
	assert_int_equal(rel.tv_nsec, 2500000000);
	assert_true(e.ev.tmo.tv_nsec >= 0 && e.ev.tmo.tv_nsec < NS_PER_S);
	assert_true(ts_ns(&e.ev.tmo) >= before + 2500 * NS_PER_MS);
	assert_int_equal(timeout_add(tl, &e.ev), -EEXIST);
	/* Listed: moved (earlier: the timer follows). */
	struct timespec sooner = {1, 0};
	before = now_ns();
	assert_int_equal(timeout_modify(tl, &e.ev, &sooner), 0);
	assert_true(ts_ns(&e.ev.tmo) >= before + NS_PER_S &&
		    ts_ns(&e.ev.tmo) < before + 2 * NS_PER_S);
	assert_int_equal(timer_value_ns() > 0, 1);
	/* {0, 0}: cancelled; again: -ENOENT (timeout_cancel()'s result). */
	struct timespec zero = {0, 0};
	assert_int_equal(timeout_modify(tl, &e.ev, &zero), 0);
	assert_int_equal(e.ev.tmo.tv_sec, 0);
	assert_int_equal(timeout_modify(tl, &e.ev, &zero), -ENOENT);
	assert_int_equal(timer_value_ns(), 0);
	/* Setting @tmo before the call does no harm (vent finds by address). */
	e.ev.tmo = sooner;
	assert_int_equal(timeout_modify(tl, &e.ev, &sooner), 0);
	assert_int_equal(timeout_cancel(tl, &e.ev), 0);
	assert_int_equal(e.runs, 0);
}

/* ---- changes from callbacks ---------------------------------------------- */

static struct entry cbe[8];

static int act_cancel_next(struct entry *e)
{
	/* Cancels an expired entry that waits for its turn in this run. */
	assert_int_equal(timeout_cancel(tl, &cbe[e->id + 1].ev), 0);
	assert_int_equal(timeout_cancel(tl, &cbe[e->id + 1].ev), -ENOENT);
	return EVENTCB_CONTINUE;
}

static int act_move_next(struct entry *e)
{
	/* Moves an expired entry into the future: it does not run now. */
	struct timespec later = {3600, 0};
	cbe[e->id + 1].ev.flags = 0;
	assert_int_equal(timeout_modify(tl, &cbe[e->id + 1].ev, &later), 0);
	assert_int_equal(timeout_add(tl, &cbe[e->id + 1].ev), -EEXIST);
	return EVENTCB_CONTINUE;
}

static int act_rearm_self_past(struct entry *e)
{
	/* Once: re-armed to the past, it runs in the next call, not this. */
	if (e->runs == 1)
		assert_int_equal(add_abs(e, 1), 0);
	return EVENTCB_CONTINUE;
}

static int act_readd_expired(struct entry *e)
{
	/* Re-adds an expired, still listed entry: -EEXIST. */
	assert_int_equal(timeout_add(tl, &cbe[e->id + 1].ev), -EEXIST);
	return EVENTCB_CONTINUE;
}

static int act_nested(struct entry *e)
{
	(void)e;
	/* Not re-entrant: a nested call runs nothing. */
	int before = norder;
	run_list();
	assert_int_equal(norder, before);
	return EVENTCB_CONTINUE;
}

static void test_changes_from_callbacks(void **state)
{
	long long past = now_ns() - NS_PER_S;
	(void)state;

	for (int i = 0; i < 8; i++)
		entry_init(&cbe[i], i);
	cbe[0].action = act_cancel_next;   /* cancels 1 */
	cbe[2].action = act_move_next;     /* moves 3 */
	cbe[4].action = act_rearm_self_past;
	cbe[5].action = act_readd_expired; /* 6 stays */
	cbe[7].action = act_nested;
	for (int i = 0; i < 8; i++)
		assert_int_equal(add_abs(&cbe[i], past + i), 0);
	run_list();
	int want[] = {0, 2, 4, 5, 6, 7};
	assert_int_equal(norder, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(order[i], want[i]);
	/* The next call: 4 (re-armed to the past) runs again; 3 waits. */
	norder = 0;
	run_list();
	assert_int_equal(norder, 1);
	assert_int_equal(order[0], 4);
	assert_int_equal(cbe[1].runs, 0);
	assert_int_equal(cbe[3].runs, 0);
	assert_int_equal(timeout_cancel(tl, &cbe[3].ev), 0);
	assert_int_equal(timer_value_ns(), 0);
}

static int act_reset(struct entry *e)
{
	(void)e;
	assert_int_equal(timeout_reset(tl), 0);
	return EVENTCB_CONTINUE;
}

static void test_reset(void **state)
{
	static struct entry e[4];
	long long past = now_ns() - NS_PER_S;
	(void)state;

	for (int i = 0; i < 4; i++)
		entry_init(&e[i], i);
	assert_int_equal(add_abs(&e[0], past), 0);
	assert_int_equal(add_abs(&e[1], past + 1), 0);
	e[2].ev.tmo = (struct timespec){100, 0};
	assert_int_equal(timeout_add(tl, &e[2].ev), 0);
	/* No callbacks, timer disarmed, every entry off the list. */
	assert_int_equal(timeout_reset(tl), 0);
	assert_int_equal(timer_value_ns(), 0);
	run_list();
	assert_int_equal(norder, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(timeout_cancel(tl, &e[i].ev), -ENOENT);
	/* Usable afterwards; a reset from a callback drops the rest. */
	e[0].action = act_reset;
	for (int i = 0; i < 4; i++)
		assert_int_equal(add_abs(&e[i], past + i), 0);
	run_list();
	assert_int_equal(norder, 1);
	assert_int_equal(timeout_cancel(tl, &e[1].ev), -ENOENT);
	assert_int_equal(timer_value_ns(), 0);
}

static int act_free_list(struct entry *e)
{
	(void)e;
	free_timeout_event(tl);
	tl = NULL;
	return EVENTCB_CONTINUE;
}

static int probe_runs;
static int probe_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	probe_runs++;
	return EVENTCB_REMOVE;
}

/* Driven by a dispatcher: real timerfd expiry, and the list freed from its
 * own callback while added. */
static void test_with_dispatcher(void **state)
{
	static struct entry e[3];
	(void)state;
	int fds = fd_count();
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(d);
	assert_int_equal(event_add(d, tl), 0);

	for (int i = 0; i < 3; i++) {
		entry_init(&e[i], i);
		e[i].ev.tmo = (struct timespec){0, 20000000 + i}; /* ~20 ms */
		e[i].deadline_ns = now_ns() + 20000000 + i;
		assert_int_equal(timeout_add(tl, &e[i].ev), 0);
	}
	e[1].action = act_free_list; /* frees the list: e[2] never runs */
	while (norder < 2)
		assert_true(event_wait(d, NULL) >= 0 || errno == EINTR);
	assert_null(tl);
	assert_int_equal(e[0].runs, 1);
	assert_int_equal(e[1].runs, 1);
	/* The dispatcher lives on without the list (minivent's API only). */
	struct event probe = TIMER_EVENT_ON_STACK(probe_cb, 1000);
	probe.cleanup = NULL;
	assert_int_equal(event_add(d, &probe), 0);
	while (!probe_runs)
		assert_true(event_wait(d, NULL) >= 0 || errno == EINTR);
	assert_int_equal(e[2].runs, 0);
	free_dispatcher(d);
	assert_int_equal(fd_count(), fds - 1); /* setup's list is gone too */
	tl = new_timeout_event(CLOCK_MONOTONIC);
	assert_non_null(tl);
}

/* An event on a dispatcher too: EVENTCB_CLEANUP from its timeout callback
 * removes it there and runs its cleanup (minivent's _event_invoke_callback). */
static int cleanups;
static void count_cleanup(struct event *evt)
{
	(void)evt;
	cleanups++;
}

static int act_cleanup(struct entry *e)
{
	(void)e;
	return EVENTCB_CLEANUP;
}

static void test_return_values(void **state)
{
	struct entry on, off;
	(void)state;
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(d);
	entry_init(&on, 1);
	entry_init(&off, 2);
	on.ev.cleanup = count_cleanup;
	off.ev.cleanup = count_cleanup;
	on.action = off.action = act_cleanup;
	assert_int_equal(event_add(d, &on.ev), 0);
	assert_ptr_equal(on.ev.dsp, d);
	assert_int_equal(add_abs(&on, 1), 0);
	assert_int_equal(add_abs(&off, 2), 0);
	run_list();
	assert_int_equal(norder, 2);
	assert_null(on.ev.dsp);       /* removed from the dispatcher */
	assert_int_equal(cleanups, 1); /* only the added one is cleaned */
	free_dispatcher(d);
	assert_int_equal(cleanups, 1);
}

static void test_fork(void **state)
{
	struct entry e;
	(void)state;

	entry_init(&e, 1);
	e.ev.tmo = (struct timespec){3600, 0};
	assert_int_equal(timeout_add(tl, &e.ev), 0);
	long long armed = timer_value_ns();
	assert_true(armed > 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timespec ts = {1, 0};
		int bad = 0;
		struct entry f;
		entry_init(&f, 2);
		f.ev.tmo = ts;
		bad += timeout_add(tl, &f.ev) != -ECHILD;
		bad += timeout_modify(tl, &e.ev, &ts) != -ECHILD;
		bad += timeout_cancel(tl, &e.ev) != -ECHILD;
		bad += timeout_reset(tl) != -ECHILD;
		bad += timeout_get_clocksource(tl) != -ECHILD;
		tl->reason = REASON_EVENT_OCCURED;
		bad += timeout_event(tl, EPOLLIN) != EVENTCB_CONTINUE;
		free_timeout_event(tl);
		_exit(bad);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* The parent's list and timer are untouched. */
	long long now_armed = timer_value_ns();
	assert_true(now_armed > 0 && now_armed <= armed);
	assert_int_equal(timeout_cancel(tl, &e.ev), 0);
}

/* Many entries in random order with random cancels: every survivor runs
 * once, in (deadline, arm order) order. Not a timing test. */
static void test_many(void **state)
{
	enum { N = 3000 };
	static struct entry e[N];
	static int key[N];
	(void)state;
	long long past = now_ns() - NS_PER_S;
	unsigned r = 12345;

	for (int i = 0; i < N; i++) {
		entry_init(&e[i], i);
		r = r * 1103515245u + 12345u;
		key[i] = (int)((r >> 16) % 50);
		assert_int_equal(add_abs(&e[i], past + key[i]), 0);
	}
	int cancelled = 0;
	for (int i = 0; i < N; i += 7) {
		assert_int_equal(timeout_cancel(tl, &e[i].ev), 0);
		cancelled++;
	}
	int ngot = 0;
	run_list();
	for (int i = 0; i < N; i++) {
		if (i % 7 == 0)
			assert_int_equal(e[i].runs, 0);
		else
			assert_int_equal(e[i].runs, 1);
		ngot += e[i].runs;
	}
	assert_int_equal(ngot, N - cancelled);
	/* (deadline, arm order) order: by key, then by index. */
	long last = 0;
	for (int k = 0; k < 50; k++)
		for (int i = 0; i < N; i++) {
			if (i % 7 == 0 || key[i] != k)
				continue;
			assert_true(e[i].runseq > last);
			last = e[i].runseq;
		}
	assert_int_equal(timer_value_ns(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_ts_search_before_equals),
		CASE(test_ts_errors_and_normalisation),
		CASE(test_tv_contract),
		cmocka_unit_test_setup_teardown(test_new_and_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_contract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_past_and_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modify_contract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_from_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_with_dispatcher, setup, teardown),
		cmocka_unit_test_setup_teardown(test_return_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
	};

	return cmocka_run_group_tests_name("minivent-conformance", tests, NULL, NULL);
}
