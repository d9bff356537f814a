/* SPDX-License-Identifier: GPL-2.0-or-later */
/* util/clock.h - clocks and sleeps of the tests, in ns and ms. */
#ifndef VENT_TEST_UTIL_CLOCK_H
#define VENT_TEST_UTIL_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

static inline int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

static inline int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts_ns(&ts);
}

/* CLOCK_MONOTONIC, in ns and in ms. */
static inline int64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t now_ms(void)
{
	return now_ns() / NS_PER_MS;
}

/* Sleeps @ms in full, across signals. */
static inline void sleep_ms(int ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms % 1000) * NS_PER_MS) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

#endif
