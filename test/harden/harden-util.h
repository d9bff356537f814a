/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * harden-util.h - small helpers shared by the hardening programs: checks
 * that exit (not abort: an abort is what the library must never do), the
 * resident set size; the clock and the fd count (which does not allocate)
 * come from the tests' util/.
 */
#ifndef HARDEN_UTIL_H
#define HARDEN_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../util/clock.h"
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

#if defined(__SANITIZE_ADDRESS__)
#define HU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HU_ASAN 1
#endif
#endif
#ifndef HU_ASAN
#define HU_ASAN 0
#endif

#endif
