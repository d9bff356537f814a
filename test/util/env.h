/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/env.h - how much slower than a plain build this run is: the one
 * factor every test scales its alarms and give-up deadlines by.
 */
#ifndef VENT_TEST_UTIL_ENV_H
#define VENT_TEST_UTIL_ENV_H

#include <stdlib.h>

/* Defined (to 1) when this file is compiled with that sanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* The valgrind test setup exports VENT_UNDER_VALGRIND=1. */
static inline int under_valgrind(void)
{
	return getenv("VENT_UNDER_VALGRIND") != NULL;
}

/* The test setups of meson.build export ASAN_OPTIONS / TSAN_OPTIONS. */
static inline unsigned slowdown(void)
{
	if (under_valgrind())
		return 10;
	if (getenv("TSAN_OPTIONS"))
		return 5;
	if (getenv("ASAN_OPTIONS"))
		return 3;
	return 1;
}

/* Loop sizes: full in plain and sanitizer builds, reduced under valgrind. */
static inline unsigned scaled(unsigned n, unsigned valgrind_n)
{
	return under_valgrind() ? valgrind_n : n;
}

#endif
