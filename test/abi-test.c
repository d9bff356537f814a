/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * abi-test - pins the minivent-compatible ABI of vent/event.h: the layout of
 * struct event and struct timer_event, the enum values, reason_str, and the
 * values the initialiser macros produce, as vent/event.h documents them
 * (minivent's layout, byte for byte, and minivent's macro expansions).
 *
 * A program compiled against minivent's header embeds struct event and
 * expands the macros at its own compile time; any drift here breaks it
 * silently at run time. Every expected value below is written out by hand
 * from the contract, never derived from the header under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>

#include "util/case.h"

/* Offsets are checked with run-time asserts (and not _Static_assert) so that
 * one run reports every mismatch by name. */
#define assert_offset(type, member, off) \
	assert_int_equal(offsetof(type, member), (off))

static int dummy_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	return EVENTCB_CONTINUE;
}

static void dummy_cleanup(struct event *evt)
{
	(void)evt;
}

static void dummy_timer(void *arg)
{
	(void)arg;
}

/* The bytes nobody initialised explicitly must be zero: the library reads
 * @dsp to detect double adds, @flags for TMO_ABS and @reason is reported. */
static void assert_defaults(const struct event *e)
{
	assert_int_equal(e->ep.data.u64, 0);
	assert_int_equal(e->reason, 0);
	assert_int_equal(e->flags, 0);
	assert_null(e->dsp);
}

static void test_abi_struct_event_layout(void **state)
{
	(void)state;
#if defined(__x86_64__) && !defined(__ILP32__)
	/* struct epoll_event is packed on x86-64: 4 + 8 bytes. */
	assert_int_equal(sizeof(struct epoll_event), 12);
	assert_int_equal(sizeof(struct event), 64);
	assert_int_equal(_Alignof(struct event), 8);
	assert_offset(struct event, ep, 0);
	assert_offset(struct event, ep.events, 0);
	assert_offset(struct event, ep.data, 4);
	assert_offset(struct event, fd, 12);
	assert_offset(struct event, reason, 16);
	assert_offset(struct event, flags, 18);
	assert_offset(struct event, dsp, 24);
	assert_offset(struct event, tmo, 32);
	assert_offset(struct event, tmo.tv_sec, 32);
	assert_offset(struct event, tmo.tv_nsec, 40);
	assert_offset(struct event, callback, 48);
	assert_offset(struct event, cleanup, 56);

	assert_int_equal(sizeof(struct timer_event), 80);
	assert_offset(struct timer_event, e, 0);
	assert_offset(struct timer_event, timer_fn, 64);
	assert_offset(struct timer_event, timer_arg, 72);
#else
	/* Elsewhere only the order is the contract: fields in the order of
	 * vent/event.h, no field overlapping the next, nothing after cleanup but padding. */
	assert_true(offsetof(struct event, ep) == 0);
	assert_true(offsetof(struct event, fd) >= sizeof(struct epoll_event));
	assert_true(offsetof(struct event, reason) >= offsetof(struct event, fd) + sizeof(int));
	assert_true(offsetof(struct event, flags) ==
		    offsetof(struct event, reason) + sizeof(unsigned short));
	assert_true(offsetof(struct event, dsp) >=
		    offsetof(struct event, flags) + sizeof(unsigned short));
	assert_true(offsetof(struct event, tmo) >= offsetof(struct event, dsp) + sizeof(void *));
	assert_true(offsetof(struct event, callback) >=
		    offsetof(struct event, tmo) + sizeof(struct timespec));
	assert_true(offsetof(struct event, cleanup) >=
		    offsetof(struct event, callback) + sizeof(cb_fn));
	assert_true(sizeof(struct event) < offsetof(struct event, cleanup) + 2 * sizeof(void *));
	assert_true(offsetof(struct timer_event, e) == 0);
#endif
}

static void test_abi_field_types(void **state)
{
	struct event e;

	(void)state;
	/* Sizes and signedness of each field as minivent declares them. */
	assert_int_equal(sizeof(e.ep.events), sizeof(uint32_t));
	assert_int_equal(sizeof(e.fd), sizeof(int));
	assert_int_equal(sizeof(e.reason), sizeof(unsigned short));
	assert_int_equal(sizeof(e.flags), sizeof(unsigned short));
	assert_int_equal(sizeof(e.dsp), sizeof(struct dispatcher *));
	assert_int_equal(sizeof(e.tmo), sizeof(struct timespec));
	assert_int_equal(sizeof(e.callback), sizeof(void (*)(void)));
	assert_int_equal(sizeof(e.cleanup), sizeof(void (*)(void)));
	e.fd = -1;
	assert_true(e.fd < 0);
	e.reason = (unsigned short)-1;
	assert_true(e.reason > 0);
	e.flags = (unsigned short)-1;
	assert_true(e.flags > 0);

	/* The types are the documented ones (C11 _Generic: exact match). */
	assert_true(_Generic(e.fd, int: 1, default: 0));
	assert_true(_Generic(e.reason, unsigned short: 1, default: 0));
	assert_true(_Generic(e.flags, unsigned short: 1, default: 0));
	assert_true(_Generic(e.dsp, struct dispatcher *: 1, default: 0));
	assert_true(_Generic(e.callback, int (*)(struct event *, uint32_t): 1, default: 0));
	assert_true(_Generic(e.cleanup, void (*)(struct event *): 1, default: 0));
	assert_true(_Generic(e.callback, cb_fn: 1, default: 0));
	assert_true(_Generic(e.cleanup, cleanup_fn: 1, default: 0));
	assert_true(_Generic((timer_cb)0, void (*)(void *): 1, default: 0));
	assert_true(_Generic(&_call_timer_cb, int (*)(struct event *, uint32_t): 1, default: 0));
	assert_true(_Generic(&_event_invoke_callback,
			     void (*)(struct event *, unsigned short, unsigned int, bool): 1,
			     default: 0));
}

static void test_abi_enum_values(void **state)
{
	(void)state;
	assert_int_equal(REASON_EVENT_OCCURED, 0);
	assert_int_equal(REASON_TIMEOUT, 1);
	assert_int_equal(__MAX_CALLBACK_REASON, 2);
	assert_int_equal(EVENTCB_CONTINUE, 0);
	assert_int_equal(EVENTCB_REMOVE, 1);
	assert_int_equal(EVENTCB_CLEANUP, 2);
	assert_int_equal(TMO_ABS, 1);
	assert_int_equal(__EV_REMOVE, 256);
	assert_int_equal(__EV_CLEANUP, 512);
	assert_int_equal(ELOOP_CONTINUE, 0);
	assert_int_equal(ELOOP_QUIT, 1);
}

static void test_abi_reason_str(void **state)
{
	(void)state;
	/* The array has exactly __MAX_CALLBACK_REASON entries. */
	assert_int_equal(sizeof(reason_str) / sizeof(reason_str[0]), 2);
	assert_non_null(reason_str[REASON_EVENT_OCCURED]);
	assert_non_null(reason_str[REASON_TIMEOUT]);
	assert_string_equal(reason_str[REASON_EVENT_OCCURED], "event occured");
	assert_string_equal(reason_str[REASON_TIMEOUT], "timeout");
	assert_true(_Generic(reason_str[0], const char *: 1, default: 0));
}

static void test_abi_event_init(void **state)
{
	(void)state;
	struct event e = __EVENT_INIT(dummy_cb, dummy_cleanup, 7, EPOLLIN | EPOLLOUT, 3, 4);

	assert_int_equal(e.fd, 7);
	assert_int_equal(e.ep.events, EPOLLIN | EPOLLOUT);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, dummy_cleanup);
	assert_int_equal(e.tmo.tv_sec, 3);
	assert_int_equal(e.tmo.tv_nsec, 4);
	assert_defaults(&e);

	/* minivent's macro is a compound literal: an lvalue whose address can
	 * be taken, and whose arguments are each evaluated once. */
	int n = 0;
	struct event *p = &__EVENT_INIT(dummy_cb, NULL, ++n, 0, 0, 0);
	assert_int_equal(p->fd, 1);
	assert_int_equal(n, 1);
	assert_null(p->cleanup);
	assert_defaults(p);
}

static void test_abi_event_w_tmo_on_stack(void **state)
{
	(void)state;
	struct event e = EVENT_W_TMO_ON_STACK(dummy_cb, 5, EPOLLIN, 2500000);

	assert_int_equal(e.fd, 5);
	assert_int_equal(e.ep.events, EPOLLIN);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, cleanup_event_on_stack);
	assert_int_equal(e.tmo.tv_sec, 2);
	assert_int_equal(e.tmo.tv_nsec, 500000000);
	assert_defaults(&e);

	/* Arguments are parenthesised: an expression for @us works. */
	e = EVENT_W_TMO_ON_STACK(dummy_cb, 5, EPOLLIN, 1000000 + 999999);
	assert_int_equal(e.tmo.tv_sec, 1);
	assert_int_equal(e.tmo.tv_nsec, 999999000);
	e = EVENT_W_TMO_ON_STACK(dummy_cb, 5, EPOLLIN, 1);
	assert_int_equal(e.tmo.tv_sec, 0);
	assert_int_equal(e.tmo.tv_nsec, 1000);
}

static void test_abi_event_on_stack(void **state)
{
	(void)state;
	struct event e = EVENT_ON_STACK(dummy_cb, 9, EPOLLIN | EPOLLET);

	assert_int_equal(e.fd, 9);
	assert_int_equal(e.ep.events, EPOLLIN | EPOLLET);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, cleanup_event_on_stack);
	/* No timeout. */
	assert_int_equal(e.tmo.tv_sec, 0);
	assert_int_equal(e.tmo.tv_nsec, 0);
	assert_defaults(&e);
}

static void test_abi_timer_event_on_stack(void **state)
{
	(void)state;
	struct event e = TIMER_EVENT_ON_STACK(dummy_cb, 1500000);

	assert_int_equal(e.fd, -1);
	assert_int_equal(e.ep.events, 0);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, cleanup_event_on_stack);
	/* 1 ns is added so that 0 µs still means "fire on the next wait". */
	assert_int_equal(e.tmo.tv_sec, 1);
	assert_int_equal(e.tmo.tv_nsec, 500000001);
	assert_defaults(&e);

	e = TIMER_EVENT_ON_STACK(dummy_cb, 0);
	assert_int_equal(e.tmo.tv_sec, 0);
	assert_int_equal(e.tmo.tv_nsec, 1);
}

static void test_abi_on_heap_variants(void **state)
{
	(void)state;
	struct event e = EVENT_W_TMO_ON_HEAP(dummy_cb, 4, EPOLLOUT, 3000001);

	assert_int_equal(e.fd, 4);
	assert_int_equal(e.ep.events, EPOLLOUT);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, cleanup_event_on_heap);
	assert_int_equal(e.tmo.tv_sec, 3);
	assert_int_equal(e.tmo.tv_nsec, 1000);
	assert_defaults(&e);

	e = EVENT_ON_HEAP(dummy_cb, 6, EPOLLPRI);
	assert_int_equal(e.fd, 6);
	assert_int_equal(e.ep.events, EPOLLPRI);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, cleanup_event_on_heap);
	assert_int_equal(e.tmo.tv_sec, 0);
	assert_int_equal(e.tmo.tv_nsec, 0);
	assert_defaults(&e);

	e = TIMER_EVENT_ON_HEAP(dummy_cb, 42);
	assert_int_equal(e.fd, -1);
	assert_int_equal(e.ep.events, 0);
	assert_ptr_equal(e.callback, dummy_cb);
	assert_ptr_equal(e.cleanup, cleanup_event_on_heap);
	assert_int_equal(e.tmo.tv_sec, 0);
	assert_int_equal(e.tmo.tv_nsec, 42001);
	assert_defaults(&e);
}

static void test_abi_timer_on_stack(void **state)
{
	(void)state;
	int arg;
	struct timer_event t = TIMER_ON_STACK(dummy_timer, &arg, 2000003);

	assert_int_equal(t.e.fd, -1);
	assert_int_equal(t.e.ep.events, 0);
	assert_ptr_equal(t.e.callback, _call_timer_cb);
	assert_ptr_equal(t.e.cleanup, cleanup_event_on_stack);
	assert_int_equal(t.e.tmo.tv_sec, 2);
	assert_int_equal(t.e.tmo.tv_nsec, 3001);
	assert_defaults(&t.e);
	assert_ptr_equal(t.timer_fn, dummy_timer);
	assert_ptr_equal(t.timer_arg, &arg);

	struct timer_event *p = &TIMER_ON_STACK(dummy_timer, NULL, 0);
	assert_int_equal(p->e.tmo.tv_sec, 0);
	assert_int_equal(p->e.tmo.tv_nsec, 1);
	assert_null(p->timer_arg);
}

static void test_abi_timer_on_heap(void **state)
{
	(void)state;
	int arg;
	struct timer_event t = TIMER_ON_HEAP(dummy_timer, &arg, 7);

	assert_int_equal(t.e.fd, -1);
	assert_int_equal(t.e.ep.events, 0);
	assert_ptr_equal(t.e.callback, _call_timer_cb);
	assert_ptr_equal(t.e.cleanup, cleanup_event_on_heap);
	assert_int_equal(t.e.tmo.tv_sec, 0);
	assert_int_equal(t.e.tmo.tv_nsec, 7001);
	assert_defaults(&t.e);
	assert_ptr_equal(t.timer_fn, dummy_timer);
	assert_ptr_equal(t.timer_arg, &arg);
}

static int timer_calls;
static void *timer_seen;

static void count_timer(void *arg)
{
	timer_calls++;
	timer_seen = arg;
}

/* The helpers behind the macros behave as minivent's do. */
static void test_abi_call_timer_cb(void **state)
{
	(void)state;
	int arg;
	struct timer_event t = TIMER_ON_STACK(count_timer, &arg, 0);

	timer_calls = 0;
	assert_int_equal(_call_timer_cb(&t.e, 0), EVENTCB_CLEANUP);
	assert_int_equal(timer_calls, 1);
	assert_ptr_equal(timer_seen, &arg);
}

static void test_abi_cleanup_event_on_stack_closes_fd(void **state)
{
	(void)state;
	int fd = eventfd(0, EFD_CLOEXEC);
	assert_true(fd >= 0);
	struct event e = EVENT_ON_STACK(dummy_cb, fd, EPOLLIN);

	cleanup_event_on_stack(&e);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);

	/* A pure timer: fd -1, nothing to close, no crash. */
	struct event t = TIMER_EVENT_ON_STACK(dummy_cb, 0);
	cleanup_event_on_stack(&t);
}

/* Runs under valgrind/ASan in CI: a leak or double free shows there. */
static void test_abi_timer_on_heap_dispatch_frees(void **state)
{
	(void)state;
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(dsp);
	struct timer_event *t = malloc(sizeof(*t));
	assert_non_null(t);
	int arg;
	*t = TIMER_ON_HEAP(count_timer, &arg, 0);

	timer_calls = 0;
	assert_int_equal(event_add(dsp, &t->e), 0);
	assert_ptr_equal(t->e.dsp, dsp);
	/* 1 ns: due at once. The callback returns EVENTCB_CLEANUP and the
	 * heap cleanup frees @t. */
	for (int i = 0; i < 100 && timer_calls == 0; i++)
		assert_true(vent_wait(dsp, 100, NULL) >= 0);
	assert_int_equal(timer_calls, 1);
	assert_ptr_equal(timer_seen, &arg);
	free_dispatcher(dsp);
}

/* Binary-compatibility export: runs the callback with the given reason. */
static int invoke_reason = -1;
static uint32_t invoke_events;

static int record_cb(struct event *evt, uint32_t events)
{
	invoke_reason = evt->reason;
	invoke_events = events;
	return EVENTCB_CONTINUE;
}

static void test_abi_event_invoke_callback(void **state)
{
	(void)state;
	struct event e = TIMER_EVENT_ON_STACK(record_cb, 0);

	_event_invoke_callback(&e, REASON_TIMEOUT, 0, false);
	assert_int_equal(invoke_reason, REASON_TIMEOUT);
	assert_int_equal(e.reason, REASON_TIMEOUT);
	_event_invoke_callback(&e, REASON_EVENT_OCCURED, EPOLLIN, false);
	assert_int_equal(invoke_reason, REASON_EVENT_OCCURED);
	assert_int_equal(invoke_events, EPOLLIN);
	_event_invoke_callback(&e, REASON_TIMEOUT, 0, true);
	assert_int_equal(invoke_reason, REASON_TIMEOUT);
	assert_int_equal(e.reason, REASON_EVENT_OCCURED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_abi_struct_event_layout),
		CASE(test_abi_field_types),
		CASE(test_abi_enum_values),
		CASE(test_abi_reason_str),
		CASE(test_abi_event_init),
		CASE(test_abi_event_w_tmo_on_stack),
		CASE(test_abi_event_on_stack),
		CASE(test_abi_timer_event_on_stack),
		CASE(test_abi_on_heap_variants),
		CASE(test_abi_timer_on_stack),
		CASE(test_abi_timer_on_heap),
		CASE(test_abi_call_timer_cb),
		CASE(test_abi_cleanup_event_on_stack_closes_fd),
		CASE(test_abi_timer_on_heap_dispatch_frees),
		CASE(test_abi_event_invoke_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
