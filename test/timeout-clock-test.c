/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * timeout-clock-test.c - vent/timeout.h when the list's clock cannot be
 * read: timeout_add() and timeout_modify() with a relative timeout return
 * the clock's error and change nothing, and timeout_event() runs nothing
 * rather than comparing with an uninitialised time.
 *
 * util/broken-clock.h makes clock_gettime() fail on demand.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/timeout.h>

#include "util/broken-clock.h"
#include "util/case.h"
#include "util/nop.h"

static void run_list(struct event *list)
{
	list->reason = REASON_EVENT_OCCURED;
	timeout_event(list, EPOLLIN);
}

static void test_clock_unreadable(void **state)
{
	struct event *list = new_timeout_event(CLOCK_MONOTONIC);
	struct event a = {0}, b = {0};
	struct timespec ten_ms = {0, 10000000}, minute = {60, 0};

	(void)state;
	assert_non_null(list);
	a.fd = b.fd = -1;
	a.callback = b.callback = counting_cb;
	a.tmo = minute;
	assert_int_equal(timeout_add(list, &a), 0);
	const struct timespec a_tmo = a.tmo;

	break_clock(1);
	/* Relative values need the clock: its error, nothing changed. */
	assert_int_equal(timeout_modify(list, &a, &ten_ms), -EINVAL);
	assert_int_equal(a.tmo.tv_sec, a_tmo.tv_sec);
	assert_int_equal(a.tmo.tv_nsec, a_tmo.tv_nsec);
	b.tmo = ten_ms;
	assert_int_equal(timeout_add(list, &b), -EINVAL);
	assert_int_equal(b.tmo.tv_nsec, ten_ms.tv_nsec);
	assert_int_equal(timeout_modify(list, &b, &ten_ms), -EINVAL);
	/* An absolute deadline needs no clock read. */
	b.flags = TMO_ABS;
	b.tmo = (struct timespec){1, 0};
	assert_int_equal(timeout_add(list, &b), 0);
	/* Nothing runs while the time is unknown, not even b (expired). */
	run_list(list);
	assert_int_equal(counted_calls, 0);
	break_clock(0);
	assert_true(__atomic_load_n(&clock_refused, __ATOMIC_SEQ_CST) >= 4);

	/* b runs once the clock works; a keeps its minute. */
	run_list(list);
	assert_int_equal(counted_calls, 1);
	assert_int_equal(timeout_cancel(list, &b), -ENOENT);
	assert_int_equal(timeout_cancel(list, &a), 0);
	free_timeout_event(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_clock_unreadable),
	};

	return cmocka_run_group_tests_name("timeout-clock", tests, NULL, NULL);
}
