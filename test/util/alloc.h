/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/alloc.h - bytes the process has allocated right now, under plain
 * glibc, ASan/TSan and valgrind alike, for tests that bound a library's
 * memory per object.
 */
#ifndef VENT_TEST_ALLOC_UTIL_H
#define VENT_TEST_ALLOC_UTIL_H

#include <malloc.h>
#include <stddef.h>

#include "env.h"

#if defined(UNDER_ASAN) || defined(UNDER_TSAN)
#define HAVE_SANITIZER_ALLOC 1
#endif
#ifdef HAVE_SANITIZER_ALLOC
/* From <sanitizer/allocator_interface.h>, which gcc does not install. */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

static inline size_t allocated_bytes(void)
{
#ifdef HAVE_VALGRIND_H
	/* memcheck's malloc does not keep mallinfo: count what a leak check
	 * finds still allocated (reachable or not). */
	if (RUNNING_ON_VALGRIND) {
		unsigned long leaked = 0, dubious = 0, reachable = 0, suppressed = 0;

		VALGRIND_DO_QUICK_LEAK_CHECK;
		VALGRIND_COUNT_LEAKS(leaked, dubious, reachable, suppressed);
		return leaked + dubious + reachable + suppressed;
	}
#endif
#ifdef HAVE_SANITIZER_ALLOC
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();

	/* small chunks plus mmap()ed ones (big tables) */
	return mi.uordblks + mi.hblkhd;
#endif
}

#endif
