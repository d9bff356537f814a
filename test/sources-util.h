/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sources-util.h - helpers shared by the sources and loop-control tests:
 * a hard per-case timeout (alarm), an fd-leak check, a monotonic clock.
 */
#ifndef VENT_SOURCES_UTIL_H
#define VENT_SOURCES_UTIL_H

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fd-util.h"

/* Seconds every case may take before SIGALRM kills the program. */
#ifndef CASE_TIMEOUT_S
#define CASE_TIMEOUT_S 20
#endif

/* Slower under valgrind and the sanitizers (the test setups say which). */
static inline unsigned slowdown(void)
{
	if (getenv("VENT_UNDER_VALGRIND"))
		return 10;
	if (getenv("TSAN_OPTIONS"))
		return 5;
	if (getenv("ASAN_OPTIONS"))
		return 3;
	return 1;
}

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0)
		;
}

/* Per-case state: the fd count at setup, checked again at teardown. */
static inline int case_setup(void **state)
{
	static int fds;

	fds = fd_count();
	*state = &fds;
	signal(SIGALRM, SIG_DFL);
	alarm(CASE_TIMEOUT_S * slowdown());
	return 0;
}

static inline int case_teardown(void **state)
{
	int before = *(int *)*state;

	alarm(0);
	assert_int_equal(fd_count(), before);
	return 0;
}

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, case_setup, case_teardown)

#endif /* VENT_SOURCES_UTIL_H */
