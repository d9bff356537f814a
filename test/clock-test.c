/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * clock-test.c - the core dispatcher when its clock cannot be read:
 * new_dispatcher() refuses such a clock (NULL, EINVAL), and every later
 * clock read is checked (no deadline from an uninitialised timespec).
 *
 * A clock that timerfd_create() accepts but clock_gettime() refuses exists
 * (an alarm clock as root on a host without an RTC: CLOCK_REALTIME_ALARM on
 * the machine this was written on), but not everywhere: the alarm clocks
 * are checked as the machine has them, and this program also defines
 * clock_gettime() itself, which the library's calls resolve to (the
 * executable comes first in the symbol lookup), to make it fail on demand.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <vent/event.h>

#include "util/broken-clock.h"
#include "util/case.h"
#include "util/nop.h"

static void test_new_dispatcher_unreadable_clock(void **state)
{
	int base = fd_count();

	(void)state;
	__atomic_store_n(&clock_refused, 0, __ATOMIC_SEQ_CST);
	break_clock(1);
	errno = 0;
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	break_clock(0);
	assert_null(d);
	assert_int_equal(errno, EINVAL);
	assert_true(__atomic_load_n(&clock_refused, __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(fd_count(), base);
}

/* The alarm clocks as this machine has them: a dispatcher only for a clock
 * that timerfd_create() accepts and clock_gettime() reads. */
static void test_alarm_clocks(void **state)
{
	const clockid_t clocks[] = { CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM };
	int base = fd_count();

	(void)state;
	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		struct timespec ts;

		errno = 0;
		int tfd = timerfd_create(clocks[i], TFD_CLOEXEC);
		int terr = errno;
		errno = 0;
		int readable = clock_gettime(clocks[i], &ts) == 0;
		int rerr = errno;
		errno = 0;
		struct dispatcher *d = new_dispatcher(clocks[i]);
		int derr = errno;

		fprintf(stderr, "# clock %d: timerfd %s, clock_gettime %s, new_dispatcher %s\n",
			(int)clocks[i], tfd >= 0 ? "ok" : strerror(terr),
			readable ? "ok" : strerror(rerr), d ? "ok" : strerror(derr));
		if (tfd < 0) {
			assert_null(d);
			assert_int_equal(derr, terr);
		} else if (!readable) {
			assert_null(d);
			assert_int_equal(derr, rerr);
		} else {
			assert_non_null(d);
			/* Usable: a relative timeout lands in the future. */
			struct event e = { .fd = -1, .callback = nop_cb, .tmo = { 100, 0 } };

			assert_int_equal(event_add(d, &e), 0);
			assert_true(ts_ns(&e.tmo) > ts_ns(&ts));
			assert_int_equal(vent_wait(d, 0, NULL), 0);
			free_dispatcher(d);
		}
		if (tfd >= 0)
			close(tfd);
	}
	assert_int_equal(fd_count(), base);
}

/* The clock breaks after new_dispatcher(): relative timeouts are refused,
 * absolute ones need no read, and nothing changes on a refusal. */
static void test_clock_breaks_later(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	struct event a = { .fd = -1, .callback = counting_cb, .tmo = { 100, 0 } };
	struct event b = { .fd = -1, .callback = counting_cb, .tmo = { 1, 0 } };
	struct event c = { .fd = -1, .callback = counting_cb, .tmo = { 1, 1 << 30 } };

	(void)state;
	assert_non_null(d);
	counted_calls = 0;
	assert_int_equal(event_add(d, &a), 0);
	const struct timespec armed = a.tmo;

	break_clock(1);
	/* Relative, both the inline path and the general one (tv_nsec not
	 * normalised): -EINVAL, not added. */
	assert_int_equal(event_add(d, &b), -EINVAL);
	assert_null(b.dsp);
	assert_int_equal(event_add(d, &c), -EINVAL);
	assert_null(c.dsp);
	struct timespec soon = { 0, 1000 };
	assert_int_equal(event_mod_timeout(&a, &soon), -EINVAL);
	assert_int_equal(a.tmo.tv_sec, armed.tv_sec);
	assert_int_equal(a.tmo.tv_nsec, armed.tv_nsec);
	/* Absolute: no clock read needed. */
	struct timespec abs = armed;
	abs.tv_sec += 100;
	a.flags |= TMO_ABS;
	assert_int_equal(event_mod_timeout(&a, &abs), 0);
	a.flags &= (unsigned short)~TMO_ABS;
	/* Cancel: no clock read either. */
	struct timespec zero = { 0, 0 };
	assert_int_equal(event_mod_timeout(&a, &zero), 0);
	break_clock(0);

	/* Nothing fires: the refused changes did not arm anything. */
	assert_int_equal(vent_wait(d, 20, NULL), 0);
	assert_int_equal(counted_calls, 0);
	assert_int_equal(event_remove(&a), 0);
	free_dispatcher(d);
}

/* The clock breaks while a timeout is due: the kernel's timer expiry is
 * trusted (the timeout runs, once), later ones are not run early. */
static void test_clock_breaks_while_due(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	struct event a = { .fd = -1, .callback = counting_cb, .tmo = { 0, 1000000 } };
	struct event z = { .fd = -1, .callback = counting_cb, .tmo = { 100, 0 } };

	(void)state;
	assert_non_null(d);
	counted_calls = 0;
	assert_int_equal(event_add(d, &a), 0);
	assert_int_equal(event_add(d, &z), 0);
	/* Let the 1 ms pass, then read no clock from here on. */
	usleep(20000);
	break_clock(1);
	int calls = 0;
	for (int i = 0; i < 100 && calls == 0; i++) {
		int rc = vent_wait(d, 1000, NULL);
		assert_true(rc >= 0);
		calls += rc;
	}
	break_clock(0);
	assert_int_equal(calls, 1);
	assert_int_equal(counted_calls, 1);
	assert_int_equal(a.tmo.tv_sec, 0);
	assert_int_equal(a.tmo.tv_nsec, 0);
	/* The 100 s one did not fire, and nothing is due now. */
	break_clock(1);
	assert_int_equal(vent_wait(d, 20, NULL), 0);
	break_clock(0);
	assert_int_equal(counted_calls, 1);
	assert_int_equal(event_remove(&z), 0);
	free_dispatcher(d);
}

/* The fd callback of test_clock_breaks_in_batch(): breaks the clock, then
 * re-arms the timer relative, which reads no clock from a callback. */
static struct event *g_timer;

static int break_and_rearm_cb(struct event *evt, uint32_t events)
{
	struct timespec soon = { 0, 1000000 };

	(void)events;
	break_clock(1);
	assert_int_equal(event_mod_timeout(g_timer, &soon), 0);
	event_remove(evt);
	return EVENTCB_CONTINUE;
}

/*
 * A relative re-arm from a callback is stamped when the batch ends. If the
 * clock cannot be read then, it stays pending (it cannot fire early, so it
 * does not fire) and is stamped by the first wait that can read the clock:
 * its deadline is then after that read.
 */
static void test_clock_breaks_in_batch(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	struct event a = { .fd = -1, .callback = counting_cb, .tmo = { 100, 0 } };
	int p[2];

	(void)state;
	assert_non_null(d);
	counted_calls = 0;
	g_timer = &a;
	assert_int_equal(event_add(d, &a), 0);
	const struct timespec armed = a.tmo;
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	struct event io = { .fd = p[1], .ep.events = EPOLLOUT, .callback = break_and_rearm_cb };
	assert_int_equal(event_add(d, &io), 0);

	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	/* Not stamped: the old deadline is gone, no new one yet. */
	assert_int_equal(a.tmo.tv_sec, armed.tv_sec);
	assert_int_equal(a.tmo.tv_nsec, armed.tv_nsec);
	assert_int_equal(vent_wait(d, 20, NULL), 0);
	assert_int_equal(counted_calls, 0);
	break_clock(0);

	struct timespec t0;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
	int calls = 0;
	for (int i = 0; i < 100 && calls == 0; i++) {
		int rc = vent_wait(d, 1000, NULL);
		assert_true(rc >= 0);
		calls += rc;
	}
	struct timespec t1;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
	assert_int_equal(counted_calls, 1);
	/* Stamped after t0 (+1 ms): it counted_calls no earlier than that. */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000000000LL + t1.tv_nsec - t0.tv_nsec >= 1000000);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_new_dispatcher_unreadable_clock),
		CASE(test_alarm_clocks),
		CASE(test_clock_breaks_later),
		CASE(test_clock_breaks_while_due),
		CASE(test_clock_breaks_in_batch),
	};

	return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
