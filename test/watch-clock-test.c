/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * watch-clock-test.c - vent/watch.h and vent/event.h when the dispatcher's
 * clock cannot be read: vent_add_timeout(), vent_update_timeout(),
 * event_add() and event_mod_timeout() with a relative timeout report the
 * error instead of computing a deadline from an uninitialised timespec.
 * The clock fails on demand (util/broken-clock.h).
 */

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/watch.h>

#include "util/broken-clock.h"
#include "util/case.h"
#include "util/nop.h"

static int fired;

static void count_timeout(int timer, void *opaque)
{
	(void)timer;
	(void)opaque;
	fired++;
}

static void test_watch_clock_unreadable(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);

	(void)state;
	assert_non_null(d);
	/* Attached while the clock works; a 0 and a disabled timeout need no clock. */
	int t = vent_add_timeout(d, 60000, count_timeout, NULL, NULL);
	assert_true(t > 0);

	break_clock(1);
	assert_int_equal(vent_add_timeout(d, 10, count_timeout, NULL, NULL), -EINVAL);
	assert_int_equal(vent_update_timeout(d, t, 10), -EINVAL);
	int off = vent_add_timeout(d, -1, count_timeout, NULL, NULL);
	assert_true(off > 0);
	assert_int_equal(vent_update_timeout(d, off, -1), 0);
	break_clock(0);
	assert_true(__atomic_load_n(&clock_refused, __ATOMIC_SEQ_CST) >= 2);

	/* The failed update left the 60 s period alone: nothing fires soon. */
	for (int i = 0; i < 5; i++)
		assert_true(vent_wait(d, 10, NULL) >= 0);
	assert_int_equal(fired, 0);
	/* And the clock is read again once it works. */
	assert_int_equal(vent_update_timeout(d, t, 1), 0);
	for (int i = 0; i < 500 && !fired; i++)
		assert_true(vent_wait(d, 10, NULL) >= 0);
	assert_true(fired >= 1);
	assert_int_equal(vent_remove_timeout(d, t), 0);
	assert_int_equal(vent_remove_timeout(d, off), 0);
	free_dispatcher(d);
}

static void test_core_clock_unreadable(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	struct event a = {0}, b = {0};
	const struct timespec ten_ms = {0, 10000000}, minute = {60, 0};

	(void)state;
	assert_non_null(d);
	counted_calls = 0;
	a.fd = b.fd = -1;
	a.callback = b.callback = counting_cb;
	a.tmo = minute;
	assert_int_equal(event_add(d, &a), 0);

	break_clock(1);
	__atomic_store_n(&clock_refused, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(event_mod_timeout(&a, &ten_ms), -EINVAL);
	b.tmo = ten_ms;
	assert_int_equal(event_add(d, &b), -EINVAL);
	assert_null(b.dsp);
	/* An absolute deadline needs no clock read. */
	b.flags = TMO_ABS;
	b.tmo.tv_sec = 1;
	b.tmo.tv_nsec = 0;
	assert_int_equal(event_add(d, &b), 0);
	assert_int_equal(event_remove(&b), 0);
	break_clock(0);
	assert_true(__atomic_load_n(&clock_refused, __ATOMIC_SEQ_CST) >= 2);

	/* The failed re-arm left the 60 s deadline alone: nothing fires soon. */
	for (int i = 0; i < 5; i++)
		assert_true(vent_wait(d, 10, NULL) >= 0);
	assert_int_equal(counted_calls, 0);
	assert_int_equal(event_mod_timeout(&a, &ten_ms), 0);
	for (int i = 0; i < 500 && !counted_calls; i++)
		assert_true(vent_wait(d, 10, NULL) >= 0);
	assert_int_equal(counted_calls, 1);
	free_dispatcher(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_watch_clock_unreadable),
		CASE(test_core_clock_unreadable),
	};

	return cmocka_run_group_tests_name("watch-clock", tests, NULL, NULL);
}
