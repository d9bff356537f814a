/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * all-api - one program that uses every macro, type, constant and function
 * of the minivent-compatible headers (vent/event.h, vent/ts-util.h,
 * vent/tv-util.h), plus the loop control calls of vent/event.h.
 *
 * The same file is built as C (-std=c11 -Wall -Wextra -Werror) and as C++
 * (a copy named .cpp, same flags): the headers and macros must work in both
 * languages. The C build runs as a test and checks what each call does;
 * the C++ build runs too, to show that the C++ expansions of the macros
 * give the same values.
 *
 * Written without designated initialisers, compound literals or implicit
 * void * conversions, so that it is also valid C++.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/ts-util.h>
#include <vent/tv-util.h>

static int failures;

/* The layout is the same in both languages (checked at compile time). */
#ifdef __cplusplus
#define ALL_API_ASSERT(c, m) static_assert(c, m)
#else
#define ALL_API_ASSERT(c, m) _Static_assert(c, m)
#endif
#if defined(__x86_64__) && !defined(__ILP32__)
ALL_API_ASSERT(sizeof(struct event) == 64, "struct event is 64 bytes");
ALL_API_ASSERT(offsetof(struct event, fd) == 12 && offsetof(struct event, reason) == 16 &&
		       offsetof(struct event, flags) == 18 && offsetof(struct event, dsp) == 24 &&
		       offsetof(struct event, tmo) == 32 && offsetof(struct event, callback) == 48 &&
		       offsetof(struct event, cleanup) == 56,
	       "struct event offsets");
ALL_API_ASSERT(sizeof(struct timer_event) == 80 && offsetof(struct timer_event, timer_fn) == 64,
	       "struct timer_event layout");
#endif

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                 \
			failures++;                                               \
		}                                                                 \
	} while (0)

/* Counters filled by the callbacks. */
static int fd_calls, tmo_calls, timer_calls, cleanups, loop_errors;
static uint32_t last_events;

static int fd_cb(struct event *evt, uint32_t events)
{
	if (evt->reason == REASON_TIMEOUT) {
		tmo_calls++;
		return EVENTCB_CONTINUE;
	}
	fd_calls++;
	last_events = events;
	uint64_t v;
	if (read(evt->fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		failures++;
	return EVENTCB_CONTINUE;
}

static int stop_cb(struct event *evt, uint32_t events)
{
	(void)events;
	CHECK(evt->reason == REASON_TIMEOUT);
	CHECK(strcmp(reason_str[evt->reason], "timeout") == 0);
	CHECK(vent_loop_stop(evt->dsp) == 0);
	return EVENTCB_REMOVE;
}

static int nested_cb(struct event *evt, uint32_t events)
{
	(void)events;
	/* Waits from a callback are refused. */
	CHECK(event_wait(evt->dsp, NULL) == -EBUSY);
	CHECK(vent_wait(evt->dsp, 0, NULL) == -EBUSY);
	CHECK(event_loop(evt->dsp, NULL, NULL) == -EBUSY);
	return EVENTCB_CLEANUP;
}

static int cleanup_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	return EVENTCB_CLEANUP;
}

static void count_cleanup(struct event *evt)
{
	(void)evt;
	cleanups++;
}

static void timer_fn(void *arg)
{
	timer_calls++;
	CHECK(arg == (void *)&timer_calls);
}

static int err_handler(int err)
{
	loop_errors++;
	return err == -EINTR ? ELOOP_CONTINUE : ELOOP_QUIT;
}

static void check_constants(void)
{
	cb_fn cb = fd_cb;
	cleanup_fn cln = count_cleanup;
	timer_cb tcb = timer_fn;

	CHECK(cb != NULL && cln != NULL && tcb != NULL);
	CHECK(REASON_EVENT_OCCURED == 0 && REASON_TIMEOUT == 1 && __MAX_CALLBACK_REASON == 2);
	CHECK(EVENTCB_CONTINUE == 0 && EVENTCB_REMOVE == 1 && EVENTCB_CLEANUP == 2);
	CHECK(TMO_ABS == 1 && __EV_REMOVE == 0x100 && __EV_CLEANUP == 0x200);
	CHECK(ELOOP_CONTINUE == 0 && ELOOP_QUIT == 1);
	CHECK(strcmp(reason_str[REASON_EVENT_OCCURED], "event occured") == 0);
	CHECK(strcmp(reason_str[REASON_TIMEOUT], "timeout") == 0);
	CHECK(vent_version() != NULL && vent_version()[0] != '\0');
}

static void check_ts_util(void)
{
	struct timespec a, b, c;
	struct timespec *arr[4];
	size_t len = 0;

	us_to_ts(1500000, &a);
	CHECK(a.tv_sec == 1 && a.tv_nsec == 500000000);
	CHECK(ts_to_us(&a) == 1500000);
	b.tv_sec = 0;
	b.tv_nsec = 2500000000L;
	ts_normalize(&b);
	CHECK(b.tv_sec == 2 && b.tv_nsec == 500000000);
	c = a;
	ts_add(&c, &b);
	CHECK(c.tv_sec == 4 && c.tv_nsec == 0);
	ts_subtract(&c, &a);
	CHECK(ts_compare(&c, &b) == 0);
	CHECK(ts_compare(&a, &b) == -1 && ts_compare(&b, &a) == 1);

	arr[0] = &c; /* 2.5 s */
	arr[1] = &a; /* 1.5 s */
	ts_sort(arr, 2);
	CHECK(arr[0] == &a && arr[1] == &c);
	len = 2;
	struct timespec d;
	us_to_ts(2000000, &d);
	CHECK(ts_search(arr, len, &d) == 1);
	CHECK(ts_insert(arr, &len, 4, &d) == 1);
	CHECK(len == 3 && arr[1] == &d && arr[2] == &c);
}

static void check_tv_util(void)
{
	struct timeval a, b, c;
	struct timeval *arr[4];
	size_t len = 0;

	us_to_tv(1500000, &a);
	CHECK(a.tv_sec == 1 && a.tv_usec == 500000);
	CHECK(tv_to_us(&a) == 1500000);
	b.tv_sec = 0;
	b.tv_usec = 2500000;
	tv_normalize(&b);
	CHECK(b.tv_sec == 2 && b.tv_usec == 500000);
	c = a;
	tv_add(&c, &b);
	CHECK(c.tv_sec == 4 && c.tv_usec == 0);
	tv_subtract(&c, &a);
	CHECK(tv_compare(&c, &b) == 0);
	CHECK(tv_compare(&a, &b) == -1 && tv_compare(&b, &a) == 1);

	arr[0] = &c;
	arr[1] = &a;
	tv_sort(arr, 2);
	CHECK(arr[0] == &a && arr[1] == &c);
	len = 2;
	struct timeval d;
	us_to_tv(2000000, &d);
	CHECK(tv_search(arr, len, &d) == 1);
	CHECK(tv_insert(arr, &len, 4, &d) == 1);
	CHECK(len == 3 && arr[1] == &d && arr[2] == &c);
}

static void check_macros(void)
{
	struct event e = __EVENT_INIT(fd_cb, count_cleanup, 3, EPOLLIN, 1, 2);
	CHECK(e.fd == 3 && e.ep.events == EPOLLIN && e.callback == fd_cb &&
	      e.cleanup == count_cleanup && e.tmo.tv_sec == 1 && e.tmo.tv_nsec == 2 &&
	      e.dsp == NULL && e.flags == 0 && e.reason == 0);

	e = EVENT_W_TMO_ON_STACK(fd_cb, 4, EPOLLOUT, 1000002);
	CHECK(e.fd == 4 && e.cleanup == cleanup_event_on_stack && e.tmo.tv_sec == 1 &&
	      e.tmo.tv_nsec == 2000);
	e = EVENT_ON_STACK(fd_cb, 5, EPOLLIN);
	CHECK(e.fd == 5 && e.tmo.tv_sec == 0 && e.tmo.tv_nsec == 0);
	e = TIMER_EVENT_ON_STACK(fd_cb, 0);
	CHECK(e.fd == -1 && e.ep.events == 0 && e.tmo.tv_sec == 0 && e.tmo.tv_nsec == 1);
	e = EVENT_W_TMO_ON_HEAP(fd_cb, 6, EPOLLIN, 3);
	CHECK(e.cleanup == cleanup_event_on_heap && e.tmo.tv_nsec == 3000);
	e = EVENT_ON_HEAP(fd_cb, 7, EPOLLIN);
	CHECK(e.fd == 7 && e.cleanup == cleanup_event_on_heap && e.tmo.tv_nsec == 0);
	e = TIMER_EVENT_ON_HEAP(fd_cb, 2000000);
	CHECK(e.fd == -1 && e.tmo.tv_sec == 2 && e.tmo.tv_nsec == 1);

	struct timer_event t = TIMER_ON_STACK(timer_fn, &timer_calls, 10);
	CHECK(t.e.callback == _call_timer_cb && t.e.cleanup == cleanup_event_on_stack &&
	      t.e.tmo.tv_nsec == 10001 && t.timer_fn == timer_fn &&
	      t.timer_arg == (void *)&timer_calls);
	t = TIMER_ON_HEAP(timer_fn, NULL, 0);
	CHECK(t.e.callback == _call_timer_cb && t.e.cleanup == cleanup_event_on_heap &&
	      t.e.tmo.tv_nsec == 1 && t.timer_arg == NULL);

	/* The helper itself: calls the function, asks for cleanup. */
	int before = timer_calls;
	t = TIMER_ON_STACK(timer_fn, &timer_calls, 0);
	CHECK(_call_timer_cb(&t.e, 0) == EVENTCB_CLEANUP);
	CHECK(timer_calls == before + 1);

	/* Exported for binary compatibility: runs a callback directly. */
	e = TIMER_EVENT_ON_STACK(fd_cb, 0);
	before = tmo_calls;
	_event_invoke_callback(&e, REASON_TIMEOUT, 0, true);
	CHECK(tmo_calls == before + 1 && e.reason == REASON_EVENT_OCCURED);
}

static void check_dispatcher(void)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	sigset_t mask;

	CHECK(dsp != NULL);
	if (!dsp)
		return;
	CHECK(dispatcher_get_efd(dsp) >= 0);
	CHECK(dispatcher_get_clocksource(dsp) == CLOCK_MONOTONIC);
	sigemptyset(&mask);

	/* An fd event with a long timeout: readiness, then a short timeout. */
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	struct event ev = EVENT_W_TMO_ON_STACK(fd_cb, efd, EPOLLIN, 60000000);
	CHECK(event_add(dsp, &ev) == 0);
	CHECK(ev.dsp == dsp);
	CHECK(event_add(dsp, &ev) == -EEXIST);
	uint64_t one = 1;
	CHECK(write(efd, &one, sizeof(one)) == (ssize_t)sizeof(one));
	CHECK(event_wait(dsp, &mask) == 0);
	CHECK(fd_calls == 1 && (last_events & EPOLLIN));

	ev.ep.events = 0; /* disabled: silent, the timeout stays */
	CHECK(event_modify(&ev) == 0);
	CHECK(write(efd, &one, sizeof(one)) == (ssize_t)sizeof(one));
	struct timespec tmo;
	tmo.tv_sec = 0;
	tmo.tv_nsec = 1000000;
	CHECK(event_mod_timeout(&ev, &tmo) == 0);
	int before = tmo_calls;
	CHECK(event_wait(dsp, NULL) == 0);
	CHECK(tmo_calls == before + 1 && fd_calls == 1);
	CHECK(ev.tmo.tv_sec == 0 && ev.tmo.tv_nsec == 0);

	/* Absolute timeouts, moved and cancelled. */
	ev.flags |= TMO_ABS;
	CHECK(clock_gettime(CLOCK_MONOTONIC, &tmo) == 0);
	tmo.tv_sec += 3600;
	CHECK(event_mod_timeout(&ev, &tmo) == 0);
	CHECK(ev.tmo.tv_sec == tmo.tv_sec);
	tmo.tv_sec = 0;
	tmo.tv_nsec = 0;
	CHECK(event_mod_timeout(&ev, &tmo) == 0);
	ev.flags &= (unsigned short)~TMO_ABS;
	CHECK(event_remove(&ev) == 0);
	CHECK(event_remove(&ev) == -EINVAL);
	CHECK(ev.dsp == NULL);

	/* event_loop ends through vent_loop_stop() from a callback. */
	struct event stop = TIMER_EVENT_ON_STACK(stop_cb, 1000);
	CHECK(event_add(dsp, &stop) == 0);
	CHECK(event_loop(dsp, &mask, err_handler) == 0);
	CHECK(loop_errors == 0);

	/* vent_wait: bounded, and cut short by a wake-up. */
	CHECK(vent_wait(dsp, 0, NULL) == 0);
	CHECK(vent_dispatcher_wake(dsp) == 0);
	CHECK(vent_wait(dsp, 10000, NULL) == 0);

	/* Nested waits and EVENTCB_CLEANUP with cleanup_event_on_stack, which
	 * closes the fd of the ON_STACK event. */
	struct event nested = EVENT_ON_STACK(nested_cb, efd, EPOLLIN);
	CHECK(event_add(dsp, &nested) == 0);
	CHECK(vent_wait(dsp, 1000, NULL) == 1);
	CHECK(fcntl(efd, F_GETFD) == -1 && errno == EBADF);

	/* Heap events of every flavour; cleanup frees them (valgrind, ASan). */
	struct event *h1 = (struct event *)malloc(sizeof(*h1));
	struct event *h2 = (struct event *)malloc(sizeof(*h2));
	struct event *h3 = (struct event *)malloc(sizeof(*h3));
	struct timer_event *h4 = (struct timer_event *)malloc(sizeof(*h4));
	CHECK(h1 && h2 && h3 && h4);
	if (!h1 || !h2 || !h3 || !h4)
		exit(1);
	*h1 = EVENT_ON_HEAP(fd_cb, eventfd(0, EFD_CLOEXEC), EPOLLIN);
	*h2 = EVENT_W_TMO_ON_HEAP(fd_cb, eventfd(0, EFD_CLOEXEC), EPOLLIN, 60000000);
	*h3 = TIMER_EVENT_ON_HEAP(cleanup_cb, 0);
	*h4 = TIMER_ON_HEAP(timer_fn, &timer_calls, 0);
	CHECK(h1->fd >= 0 && h2->fd >= 0);
	CHECK(event_add(dsp, h1) == 0 && event_add(dsp, h2) == 0);
	CHECK(event_add(dsp, h3) == 0 && event_add(dsp, &h4->e) == 0);
	before = timer_calls;
	/* h3 and h4 fire and clean themselves up (free). */
	for (int i = 0; i < 100 && timer_calls == before; i++)
		CHECK(vent_wait(dsp, 100, NULL) >= 0);
	CHECK(timer_calls == before + 1);

	/* A pure timer with its own cleanup, then cleanup_dispatcher(): it
	 * runs every remaining cleanup (h1 and h2 are closed and freed). */
	struct event own = __EVENT_INIT(fd_cb, count_cleanup, -1, 0, 3600, 0);
	CHECK(event_add(dsp, &own) == 0);
	CHECK(cleanup_dispatcher(dsp) == 0);
	CHECK(cleanups == 1);
	CHECK(own.dsp == NULL);

	/* free_dispatcher() runs the cleanups of what is still registered. */
	struct timer_event last = TIMER_ON_STACK(timer_fn, &timer_calls, 60000000);
	last.e.cleanup = count_cleanup;
	CHECK(event_add(dsp, &last.e) == 0);
	free_dispatcher(dsp);
	CHECK(cleanups == 2);
	free_dispatcher(NULL);

	/* An unsupported clock. */
	errno = 0;
	CHECK(new_dispatcher(-12345) == NULL && errno == EINVAL);
}

int main(void)
{
	check_constants();
	check_ts_util();
	check_tv_util();
	check_macros();
	check_dispatcher();
	if (failures) {
		fprintf(stderr, "all-api: %d check(s) failed\n", failures);
		return 1;
	}
	printf("all-api: every §1 call checked (%s, vent %s)\n",
#ifdef __cplusplus
	       "C++",
#else
	       "C",
#endif
	       vent_version());
	return 0;
}
