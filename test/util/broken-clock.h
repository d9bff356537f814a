/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/broken-clock.h - a clock that cannot be read, on demand.
 *
 * A clock that timerfd_create() accepts but clock_gettime() refuses exists
 * (an alarm clock as root on a host without an RTC), but not on every
 * machine. A test that includes this header defines clock_gettime() itself,
 * which the library's calls resolve to (the executable comes first in the
 * symbol lookup): while break_clock(1) holds, every call fails with EINVAL
 * and is counted in clock_refused.
 */
#ifndef VENT_TEST_UTIL_BROKEN_CLOCK_H
#define VENT_TEST_UTIL_BROKEN_CLOCK_H

#include <dlfcn.h>
#include <errno.h>
#include <time.h>

static int clock_broken; /* clock_gettime() fails with EINVAL while set */
static int clock_refused; /* ...and counts its refusals */

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);

	if (__atomic_load_n(&clock_broken, __ATOMIC_SEQ_CST)) {
		__atomic_add_fetch(&clock_refused, 1, __ATOMIC_SEQ_CST);
		errno = EINVAL;
		return -1;
	}
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "clock_gettime"); /* POSIX's idiom */
	return real(clk, ts);
}

static inline void break_clock(int on)
{
	__atomic_store_n(&clock_broken, on, __ATOMIC_SEQ_CST);
}

#endif
