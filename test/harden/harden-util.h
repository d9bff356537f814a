/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * harden-util.h - small helpers shared by the hardening programs: checks
 * that exit (not abort: an abort is what the library must never do), the
 * resident set size, the controls of a preloaded failalloc.so; the clock and the fd count (which does not allocate)
 * come from the tests' util/.
 */
#ifndef HARDEN_UTIL_H
#define HARDEN_UTIL_H

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../util/clock.h"
#include "../util/env.h"
#include "../util/fd.h"

#define HU_FAIL_EXIT 1

static void hu_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
static void hu_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: CHECK FAILED: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(HU_FAIL_EXIT);
}

#define EXPECT(cond, ...)                                            \
	do {                                                         \
		if (!(cond))                                         \
			hu_fail(__FILE__, __LINE__, __VA_ARGS__);    \
	} while (0)

/*
 * The controls failalloc.so exports (failalloc.c), looked up at run time:
 * fa_load() fills fa and returns 1 when the module is preloaded, 0 (some
 * NULL) when it is not.
 */
static struct {
	void (*arm)(long);
	long (*disarm)(void);
	long (*fired)(void);
	long (*count)(void);
	long (*live)(void);
	void (*set_trace)(int);
} fa __attribute__((unused));

static inline int fa_load(void)
{
	fa.arm = __extension__(void (*)(long))dlsym(RTLD_DEFAULT, "failalloc_arm");
	fa.disarm = __extension__(long (*)(void))dlsym(RTLD_DEFAULT, "failalloc_disarm");
	fa.fired = __extension__(long (*)(void))dlsym(RTLD_DEFAULT, "failalloc_fired");
	fa.count = __extension__(long (*)(void))dlsym(RTLD_DEFAULT, "failalloc_count");
	fa.live = __extension__(long (*)(void))dlsym(RTLD_DEFAULT, "failalloc_live");
	fa.set_trace = __extension__(void (*)(int))dlsym(RTLD_DEFAULT, "failalloc_set_trace");
	return fa.arm && fa.disarm && fa.fired && fa.count && fa.live && fa.set_trace;
}

/* Failures injected since the last arm (0 without the module). */
static inline long fa_fired(void)
{
	return fa.fired ? fa.fired() : 0;
}

/*
 * The start of a fault scenario's main(): an alarm of 60 s times
 * slowdown(), then FAILALLOC_N. Without failalloc.so preloaded it runs
 * @run_scenario(false, 0) as a functional test and exits 0 (1 if
 * FAILALLOC_N asks for failures). Returns FAILALLOC_N (0 when unset), fa
 * loaded.
 */
static inline long fa_start(void (*run_scenario)(bool armed, long n))
{
	alarm(60 * slowdown());
	const char *ns = getenv("FAILALLOC_N");
	long n = ns ? atol(ns) : 0;
	if (!fa_load()) {
		if (n > 0) {
			fprintf(stderr, "FAILALLOC_N set but failalloc.so is not preloaded\n");
			exit(1);
		}
		run_scenario(false, 0);
		printf("scenario passed (no interposer)\n");
		exit(0);
	}
	return n;
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline long hu_rss_bytes(void)
{
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[128];
	ssize_t r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	long size, resident;
	if (sscanf(buf, "%ld %ld", &size, &resident) != 2)
		return -1;
	return resident * sysconf(_SC_PAGESIZE);
}

/* 1 under ASan (util/env.h's UNDER_ASAN), for use in expressions. */
#ifdef UNDER_ASAN
#define HU_ASAN 1
#else
#define HU_ASAN 0
#endif

#endif
