/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/case.h - the one per-case policy of the cmocka tests, and the
 * helper layer they include (util/env.h, util/clock.h, util/fd.h).
 *
 * Every case runs under an alarm of CASE_TIMEOUT_S seconds (60 unless the
 * test defines it first) times slowdown(): a hang ends the program with a
 * message and exit code 124 rather than at the meson timeout. Every case
 * ends with as many open fds as it began with. CASE(fn) registers a case
 * with this policy; a test with its own fixture calls case_begin() first
 * in its setup and case_end() last in its teardown.
 *
 * C and C++ tests alike: a C++ test includes the library's headers and
 * the C++ standard headers before this one (cmocka's macros clash with the
 * standard library's).
 */
#ifndef VENT_TEST_UTIL_CASE_H
#define VENT_TEST_UTIL_CASE_H

#include <signal.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
#include <cmocka.h>
#ifdef __cplusplus
}
#endif

#include "clock.h"
#include "env.h"
#include "fd.h"

#ifndef CASE_TIMEOUT_S
#define CASE_TIMEOUT_S 60
#endif

static int case_fds;

static void case_alarm(int sig)
{
	static const char msg[] = "test case timed out (CASE_TIMEOUT_S)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do: exiting is the report */
	}
	_exit(124);
}

static inline void case_begin(void)
{
	signal(SIGALRM, case_alarm);
	alarm(CASE_TIMEOUT_S * slowdown());
	case_fds = fd_count();
	assert_true(case_fds >= 0);
}

static inline void case_end(void)
{
	alarm(0);
	assert_int_equal(fd_count(), case_fds);
}

static inline int case_setup(void **state)
{
	(void)state;
	case_begin();
	return 0;
}

static inline int case_teardown(void **state)
{
	(void)state;
	case_end();
	return 0;
}

#define CASE(fn) cmocka_unit_test_setup_teardown(fn, case_setup, case_teardown)

#endif
