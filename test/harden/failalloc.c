/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * failalloc.c - test-only LD_PRELOAD interposer that fails the Nth heap
 * allocation.
 *
 * It wraps malloc, calloc, realloc, reallocarray, aligned_alloc,
 * posix_memalign, memalign, valloc, pvalloc and free, forwarding to the next
 * definition (glibc's, or the sanitizer runtime's). libstdc++'s operator new
 * calls malloc, so it is covered too (fault-scenario checks that). The
 * AddressSanitizer runtime replaces operator new with its own, which does
 * not call malloc: ASan builds add failalloc-new.cpp, which wraps the
 * operator new family as well.
 *
 * Nothing fails until the program arms the counter through the exported
 * functions below (looked up with dlsym(), so the scenario also runs, with
 * nothing injected, without the interposer):
 *
 *   failalloc_arm(n)     count the calling thread's allocations from now on
 *                        (other threads are never failed); the nth fails
 *                        (ENOMEM, NULL), every other one succeeds
 *   failalloc_disarm()   stop counting; returns how many failures fired
 *   failalloc_fired()    failures injected since the last arm
 *   failalloc_count()    allocations counted since the last arm
 *   failalloc_live()     allocations minus frees over the process' life
 *                        (every successful allocation, armed or not), so a
 *                        program can check its heap returns to a baseline
 *                        when no leak detector is available
 *   failalloc_set_trace(fd)
 *                        while armed, write a line to @fd for each
 *                        allocation (its index) and, for the failing one, a
 *                        backtrace (backtrace_symbols_fd, no allocation)
 *
 * The counters are atomics.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static atomic_bool armed;
/* Only the thread that armed counts: other threads' allocations (a
 * sanitizer runtime setting up a new thread, say) are not the library's
 * API calls, and the index of the failing one stays deterministic. */
static _Atomic(pthread_t) armed_by;
static atomic_long target;
static atomic_long counted;
static atomic_long fired;
static atomic_long live;
static atomic_int trace_fd = -1;

/*
 * dlsym() may itself call calloc() before the real one is known: serve
 * those few requests from a static arena that is never freed.
 */
static _Alignas(max_align_t) unsigned char boot_arena[8192];
static size_t boot_used;
static bool resolving;

static bool in_boot(const void *p)
{
	return (const unsigned char *)p >= boot_arena &&
	       (const unsigned char *)p < boot_arena + sizeof(boot_arena);
}

static void *boot_alloc(size_t n)
{
	size_t a = _Alignof(max_align_t);
	size_t off = (boot_used + a - 1) / a * a;
	if (off + n > sizeof(boot_arena))
		return NULL;
	boot_used = off + n;
	return memset(boot_arena + off, 0, n);
}

static void resolve(void)
{
	if (real_malloc || resolving)
		return;
	resolving = true;
	real_calloc = __extension__(void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = __extension__(void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_free = __extension__(void (*)(void *))dlsym(RTLD_NEXT, "free");
	real_aligned_alloc = __extension__(void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	real_posix_memalign = __extension__(int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	real_memalign = __extension__(void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	real_malloc = __extension__(void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	resolving = false;
}

static void put_str(int fd, const char *s)
{
	ssize_t r = write(fd, s, strlen(s));
	(void)r;
}

static void put_num(int fd, long v)
{
	char buf[32];
	int i = sizeof(buf);
	buf[--i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	put_str(fd, buf + i);
}

/* True if this allocation must fail. Also used by failalloc-new.cpp. */
bool failalloc__should_fail(const char *what);
bool failalloc__should_fail(const char *what)
{
	if (!atomic_load(&armed) || !pthread_equal(pthread_self(), atomic_load(&armed_by)))
		return false;
	long n = atomic_fetch_add(&counted, 1) + 1;
	bool fail = n == atomic_load(&target);
	int fd = atomic_load(&trace_fd);
	if (fd >= 0) {
		put_str(fd, fail ? "failalloc: FAIL #" : "failalloc: #");
		put_num(fd, n);
		put_str(fd, " ");
		put_str(fd, what);
		put_str(fd, "\n");
		if (fail) {
			void *bt[32];
			int k = backtrace(bt, 32);
			backtrace_symbols_fd(bt, k, fd);
		}
	}
	if (fail) {
		atomic_fetch_add(&fired, 1);
		errno = ENOMEM;
	}
	return fail;
}

static void *track(void *p)
{
	if (p)
		atomic_fetch_add(&live, 1);
	return p;
}

EXPORT void *malloc(size_t n)
{
	resolve();
	if (!real_malloc)
		return boot_alloc(n);
	if (failalloc__should_fail("malloc"))
		return NULL;
	return track(real_malloc(n));
}

EXPORT void *calloc(size_t n, size_t m)
{
	resolve();
	if (!real_calloc) {
		if (m && n > SIZE_MAX / m)
			return NULL;
		return boot_alloc(n * m);
	}
	if (failalloc__should_fail("calloc"))
		return NULL;
	return track(real_calloc(n, m));
}

EXPORT void *realloc(void *p, size_t n)
{
	resolve();
	if (in_boot(p)) {
		void *q = malloc(n);
		if (q)
			memcpy(q, p, n < 256 ? n : 256);
		return q;
	}
	if (!p)
		return malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	if (failalloc__should_fail("realloc"))
		return NULL;
	/* A moved block is one free plus one allocation: live stays. */
	return real_realloc(p, n);
}

EXPORT void *reallocarray(void *p, size_t n, size_t m)
{
	if (m && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n * m);
}

EXPORT void free(void *p)
{
	if (!p || in_boot(p))
		return;
	resolve();
	atomic_fetch_sub(&live, 1);
	real_free(p);
}

EXPORT void *aligned_alloc(size_t a, size_t n)
{
	resolve();
	if (failalloc__should_fail("aligned_alloc"))
		return NULL;
	return track(real_aligned_alloc(a, n));
}

EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
	resolve();
	if (failalloc__should_fail("posix_memalign"))
		return ENOMEM;
	int rc = real_posix_memalign(out, a, n);
	if (rc == 0)
		track(*out);
	return rc;
}

EXPORT void *memalign(size_t a, size_t n)
{
	resolve();
	if (failalloc__should_fail("memalign"))
		return NULL;
	return track(real_memalign(a, n));
}

EXPORT void *valloc(size_t n)
{
	return memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

EXPORT void *pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return memalign(pg, (n + pg - 1) / pg * pg);
}

EXPORT void failalloc_arm(long n)
{
	atomic_store(&counted, 0);
	atomic_store(&fired, 0);
	atomic_store(&target, n);
	atomic_store(&armed_by, pthread_self());
	atomic_store(&armed, true);
}

EXPORT long failalloc_disarm(void)
{
	atomic_store(&armed, false);
	return atomic_load(&fired);
}

EXPORT long failalloc_fired(void)
{
	return atomic_load(&fired);
}

EXPORT long failalloc_count(void)
{
	return atomic_load(&counted);
}

EXPORT long failalloc_live(void)
{
	return atomic_load(&live);
}

EXPORT void failalloc_set_trace(int fd)
{
	atomic_store(&trace_fd, fd);
}
