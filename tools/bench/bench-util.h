/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-util.h - small helpers shared by the benchmark tools: clocks, a
 * log-bucket latency histogram, strict number parsing and the command-line
 * checks every tool makes, the open-file limit, peak RSS and heap bytes.
 *
 * Header-only (static functions) so each tool stays one translation unit
 * plus its drivers.
 */
#ifndef VENT_BENCH_UTIL_H
#define VENT_BENCH_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

static inline int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline double bench_cpu_s(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/*
 * Raises the soft open-file limit to the hard one (the benchmarks that hold
 * one fd per client or per ring element need it). Returns the soft limit
 * in force afterwards, or -1 if it cannot be read.
 */
static inline long bench_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? LONG_MAX : (long)rl.rlim_cur;
}

/*
 * Bytes the allocator has handed out (mallinfo2), so that a delta across a
 * phase is the memory the library took in it.
 */
static inline size_t bench_heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Peak resident set size of this process, in KiB. */
static inline long bench_peak_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/*
 * Log-bucket histogram of nanosecond values: 16 linear sub-buckets per power
 * of two (HDR style), so every reported value is within 1/16 (6 %) of the
 * true one. Values below 16 ns get a bucket each.
 */
#define BENCH_HIST_SUB 16
#define BENCH_HIST_BUCKETS (64 * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t max;
	uint32_t bucket[BENCH_HIST_BUCKETS];
};

static inline unsigned bench_hist_index(uint64_t v)
{
	if (v < BENCH_HIST_SUB)
		return (unsigned)v;
	unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 4 */
	unsigned sub = (unsigned)(v >> (e - 4)) & (BENCH_HIST_SUB - 1);
	return (e - 3) * BENCH_HIST_SUB + sub;
}

/* The middle of bucket @i. */
static inline double bench_hist_value(unsigned i)
{
	if (i < BENCH_HIST_SUB)
		return i;
	unsigned e = i / BENCH_HIST_SUB + 3;
	unsigned sub = i % BENCH_HIST_SUB;
	double lo = (double)(1ULL << e) + (double)sub * (double)(1ULL << (e - 4));
	return lo + (double)(1ULL << (e - 4)) / 2;
}

static inline void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	h->bucket[bench_hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static inline void bench_hist_merge(struct bench_hist *into, const struct bench_hist *h)
{
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		into->bucket[i] += h->bucket[i];
	into->count += h->count;
	if (h->max > into->max)
		into->max = h->max;
}

/* The value at quantile @q (0..1); the exact maximum for q >= 1. */
static inline double bench_hist_quantile(const struct bench_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q >= 1)
		return (double)h->max;
	uint64_t want = (uint64_t)(q * (double)h->count);
	uint64_t seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen > want) {
			double v = bench_hist_value(i);
			return v > (double)h->max ? (double)h->max : v;
		}
	}
	return (double)h->max;
}

/*
 * Strict integer parsing for command-line flags: the whole string must be a
 * decimal number in [min, max] (a trailing k/m multiplies by 1e3/1e6, as in
 * "-T 100k"). Prints "<prog>: <flag>: ..." and returns -1 otherwise.
 */
static inline int bench_parse_long(const char *prog, const char *flag, const char *arg,
				   long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (end != arg && (*end == 'k' || *end == 'K') && v <= LONG_MAX / 1000) {
		v *= 1000;
		end++;
	} else if (end != arg && (*end == 'm' || *end == 'M') && v <= LONG_MAX / 1000000) {
		v *= 1000000;
		end++;
	}
	if (errno || end == arg || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: %s: invalid value '%s' (expected an integer in %ld..%ld)\n",
			prog, flag, arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/*
 * After getopt_long(): the benchmarks take no operands. Prints
 * "<prog>: unexpected argument '...'" and returns -1 if there is one.
 */
static inline int bench_no_operands(const char *prog, int argc, char *argv[])
{
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		return -1;
	}
	return 0;
}

/*
 * Touches every page of a fresh allocation, so that page faults of the
 * user's own structs are not billed to the library calls that first write
 * them (calloc()ed memory is mapped lazily).
 */
static inline void bench_prefault(void *p, size_t n)
{
	volatile char *c = p;

	for (size_t i = 0; i < n; i += 4096)
		c[i] = 0;
}

/* calloc() with the pages already faulted in. */
static inline void *bench_calloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p)
		bench_prefault(p, n * size);
	return p;
}

/* Median of @n doubles (sorts @v in place). */
static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64*: fast, deterministic, good enough to scatter deadlines. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif /* VENT_BENCH_UTIL_H */
