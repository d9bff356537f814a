/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * core-util.h - helpers shared by the core tests (dispatcher, timeout,
 * ts-util): cmocka includes, a per-case alarm, run-time scaling under
 * valgrind and the sanitizers, fd counting, clocks.
 */
#ifndef VENT_CORE_UTIL_H
#define VENT_CORE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <vent/event.h>

#include "fd-util.h"

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* The valgrind test setup exports VENT_UNDER_VALGRIND=1. */
static inline int under_valgrind(void)
{
	return getenv("VENT_UNDER_VALGRIND") != NULL;
}

/* How much slower than a plain build this run may be. */
static inline unsigned slowdown(void)
{
	if (under_valgrind())
		return 10;
	if (getenv("ASAN_OPTIONS") || getenv("TSAN_OPTIONS"))
		return 3;
	return 1;
}

/* Loop sizes: full in plain and sanitizer builds, reduced under valgrind. */
static inline unsigned scaled(unsigned n, unsigned valgrind_n)
{
	return under_valgrind() ? valgrind_n : n;
}

static void case_alarm(int sig)
{
	static const char msg[] = "core test: case timed out\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do */
	}
	_exit(124);
}

/* cmocka setup: every case gets a hard alarm of 60 s (times slowdown). */
static inline int case_setup(void **state)
{
	(void)state;
	signal(SIGALRM, case_alarm);
	alarm(60 * slowdown());
	return 0;
}

static inline int case_teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, case_setup, case_teardown)

static inline int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static inline int64_t mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * NS_PER_S + ts->tv_nsec;
}

static inline int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/*
 * The epoll set that holds @d's registrations, for tests that read it
 * through /proc/self/fdinfo: dispatcher_get_efd() returns a set that holds
 * only that one (it stays when the inner one is replaced), listed in its
 * fdinfo as its single target.
 */
static inline int dispatcher_inner_epfd(struct dispatcher *d)
{
	char path[64], line[256], link[64];
	int efd = dispatcher_get_efd(d), inner = -1, n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", efd);
	FILE *f = fopen(path, "re");
	if (!f)
		return efd;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "tfd: %d", &inner) == 1)
			n++;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", inner);
	ssize_t len = n == 1 ? readlink(path, link, sizeof(link) - 1) : -1;
	if (len < 0)
		return efd;
	link[len] = '\0';
	return strcmp(link, "anon_inode:[eventpoll]") == 0 ? inner : efd;
}

#endif /* VENT_CORE_UTIL_H */
