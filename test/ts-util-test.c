/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ts-util-test.c - the timespec and timeval helpers of vent/ts-util.h and
 * vent/tv-util.h: conversions, normalisation with carries and borrows,
 * arithmetic and comparison on negative and unnormalised values, and the
 * sorted pointer arrays (sort, search, insert).
 */
#include <limits.h>

#include <vent/ts-util.h>
#include <vent/tv-util.h>

#include "util/case.h"

/* Pseudo-random numbers without libc state (reproducible). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ------------------------------------------------------------------------
 * Conversions (static inline in the headers)
 */

static void test_us_conversions(void **state)
{
	struct timespec ts;
	struct timeval tv;
	static const uint64_t vals[] = { 0, 1, 999, 999999, 1000000, 1000001, 1234567890123ULL,
					 (uint64_t)INT32_MAX * 1000000 + 999999 };

	(void)state;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		us_to_ts(vals[i], &ts);
		assert_int_equal(ts.tv_sec, vals[i] / 1000000);
		assert_int_equal(ts.tv_nsec, vals[i] % 1000000 * 1000);
		assert_int_equal(ts_to_us(&ts), vals[i]);
		us_to_tv(vals[i], &tv);
		assert_int_equal(tv.tv_sec, vals[i] / 1000000);
		assert_int_equal(tv.tv_usec, vals[i] % 1000000);
		assert_int_equal(tv_to_us(&tv), vals[i]);
	}
	/* Nanoseconds are truncated. */
	ts.tv_sec = 1;
	ts.tv_nsec = 1999;
	assert_int_equal(ts_to_us(&ts), 1000001);
	ts.tv_nsec = 999999999;
	assert_int_equal(ts_to_us(&ts), 1999999);
}

/* ------------------------------------------------------------------------
 * The same tests for both types: TS(...) builds a value, FRAC names the
 * fractional field, UNIT is its range.
 */

#define DEFINE_TESTS(P, T, FRAC, UNIT)                                                         \
	static T P##_mk(long long s, long long f)                                               \
	{                                                                                       \
		T t;                                                                            \
		t.tv_sec = (time_t)s;                                                           \
		t.FRAC = f;                                                                     \
		return t;                                                                       \
	}                                                                                       \
                                                                                                \
	static void P##_expect(const T *t, long long s, long long f)                            \
	{                                                                                       \
		assert_int_equal((long long)t->tv_sec, s);                                      \
		assert_int_equal((long long)t->FRAC, f);                                        \
	}                                                                                       \
                                                                                                \
	static void test_##P##_normalize(void **state)                                          \
	{                                                                                       \
		static const long long c[][4] = {                                               \
			/* in sec, in frac, out sec, out frac */                                \
			{ 0, 0, 0, 0 },                                                         \
			{ 3, UNIT - 1, 3, UNIT - 1 },                                           \
			{ 0, UNIT, 1, 0 },                                                      \
			{ 1, UNIT + 1, 2, 1 },                                                  \
			{ 0, 5 * UNIT / 2, 2, UNIT / 2 },                                       \
			{ 0, -1, -1, UNIT - 1 },                                                \
			{ 0, -UNIT, -1, 0 },                                                    \
			{ 0, -UNIT - 1, -2, UNIT - 1 },                                         \
			{ 5, -3 * UNIT + 1, 2, 1 },                                             \
			{ -1, -1, -2, UNIT - 1 },                                               \
			{ -3, 2 * UNIT, -1, 0 },                                                \
			{ -3, UNIT / 2, -3, UNIT / 2 },                                         \
		};                                                                              \
		(void)state;                                                                    \
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {                        \
			T t = P##_mk(c[i][0], c[i][1]);                                         \
			P##_normalize(&t);                                                      \
			P##_expect(&t, c[i][2], c[i][3]);                                       \
			/* Idempotent. */                                                       \
			P##_normalize(&t);                                                      \
			P##_expect(&t, c[i][2], c[i][3]);                                       \
		}                                                                               \
		/* The largest fraction: carries without overflow. */                           \
		T t = P##_mk(0, LONG_MAX);                                                      \
		P##_normalize(&t);                                                              \
		P##_expect(&t, LONG_MAX / (UNIT), LONG_MAX % (UNIT));                           \
		t = P##_mk(0, LONG_MIN);                                                        \
		P##_normalize(&t);                                                              \
		assert_true(t.FRAC >= 0 && t.FRAC < (UNIT));                                    \
		/* Floor division of LONG_MIN (its remainder is never 0 here). */               \
		P##_expect(&t, LONG_MIN / (UNIT) - 1, LONG_MIN % (UNIT) + (UNIT));              \
		P##_normalize(NULL); /* no-op */                                                \
	}                                                                                       \
                                                                                                \
	static void test_##P##_add_subtract(void **state)                                       \
	{                                                                                       \
		static const long long c[][6] = {                                               \
			/* a sec, a frac, b sec, b frac, sum sec, sum frac */                   \
			{ 0, 0, 0, 0, 0, 0 },                                                   \
			{ 1, 6 * UNIT / 10, 2, 5 * UNIT / 10, 4, UNIT / 10 },                   \
			{ 1, UNIT - 1, 0, 1, 2, 0 },                                            \
			{ 1, 0, -2, UNIT / 2, -1, UNIT / 2 },                                   \
			{ 0, 3 * UNIT / 2, 0, 3 * UNIT / 2, 3, 0 },                             \
			{ -1, UNIT - 1, -1, UNIT - 1, -1, UNIT - 2 },                           \
			{ 0, -1, 0, -1, -1, UNIT - 2 },                                         \
			{ 100, 0, -100, 0, 0, 0 },                                              \
			{ 7, 1, 0, -2, 6, UNIT - 1 },                                           \
		};                                                                              \
		(void)state;                                                                    \
		for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {                        \
			T a = P##_mk(c[i][0], c[i][1]);                                         \
			T b = P##_mk(c[i][2], c[i][3]);                                         \
			T b0 = b;                                                               \
			P##_add(&a, &b);                                                        \
			P##_expect(&a, c[i][4], c[i][5]);                                       \
			/* The addend is untouched. */                                          \
			assert_memory_equal(&b, &b0, sizeof(b));                                \
			/* And back: sum - b = a (normalised). */                               \
			P##_subtract(&a, &b);                                                   \
			T want = P##_mk(c[i][0], c[i][1]);                                      \
			P##_normalize(&want);                                                   \
			P##_expect(&a, (long long)want.tv_sec, (long long)want.FRAC);           \
			assert_memory_equal(&b, &b0, sizeof(b));                                \
		}                                                                               \
		/* Borrows. */                                                                  \
		T a = P##_mk(1, 0);                                                             \
		T b = P##_mk(0, 1);                                                             \
		P##_subtract(&a, &b);                                                           \
		P##_expect(&a, 0, UNIT - 1);                                                    \
		a = P##_mk(0, 0);                                                               \
		P##_subtract(&a, &b);                                                           \
		P##_expect(&a, -1, UNIT - 1);                                                   \
		a = P##_mk(5, 2 * UNIT / 10);                                                   \
		b = P##_mk(2, 5 * UNIT / 10);                                                   \
		P##_subtract(&a, &b);                                                           \
		P##_expect(&a, 2, 7 * UNIT / 10);                                               \
		a = P##_mk(2, 0);                                                               \
		b = P##_mk(-3, UNIT / 2);                                                       \
		P##_subtract(&a, &b);                                                           \
		P##_expect(&a, 4, UNIT / 2);                                                    \
		/* x - x = 0, also for the same object. */                                      \
		a = P##_mk(-7, 3);                                                              \
		P##_subtract(&a, &a);                                                           \
		P##_expect(&a, 0, 0);                                                           \
		a = P##_mk(3, UNIT / 2);                                                        \
		P##_add(&a, &a);                                                                \
		P##_expect(&a, 7, 0);                                                           \
		/* Random: agrees with plain integer arithmetic. */                             \
		for (int i = 0; i < 10000; i++) {                                               \
			long long as = (long long)(rnd() % 2000001) - 1000000;                  \
			long long af = (long long)(rnd() % (4 * UNIT)) - 2 * UNIT;              \
			long long bs = (long long)(rnd() % 2000001) - 1000000;                  \
			long long bf = (long long)(rnd() % (4 * UNIT)) - 2 * UNIT;              \
			long long av = as * UNIT + af, bv = bs * UNIT + bf;                     \
			T x = P##_mk(as, af), y = P##_mk(bs, bf);                               \
			P##_add(&x, &y);                                                        \
			assert_true(x.FRAC >= 0 && x.FRAC < (UNIT));                            \
			assert_true((long long)x.tv_sec * UNIT + x.FRAC == av + bv);            \
			x = P##_mk(as, af);                                                     \
			P##_subtract(&x, &y);                                                   \
			assert_true(x.FRAC >= 0 && x.FRAC < (UNIT));                            \
			assert_true((long long)x.tv_sec * UNIT + x.FRAC == av - bv);            \
			x = P##_mk(as, af);                                                     \
			int cmp = P##_compare(&x, &y);                                          \
			assert_int_equal(cmp, av < bv ? -1 : av > bv ? 1 : 0);                  \
		}                                                                               \
		P##_add(NULL, &b);                                                              \
		P##_add(&a, NULL);                                                              \
		P##_subtract(NULL, &b);                                                         \
		P##_subtract(&a, NULL);                                                         \
		P##_expect(&a, 7, 0);                                                           \
	}                                                                                       \
                                                                                                \
	static void test_##P##_compare(void **state)                                            \
	{                                                                                       \
		T a = P##_mk(1, 0), b = P##_mk(0, UNIT);                                        \
		(void)state;                                                                    \
		assert_int_equal(P##_compare(&a, &b), 0);                                       \
		assert_int_equal(P##_compare(&b, &a), 0);                                       \
		/* Inputs are compared after normalising copies: unchanged. */                  \
		P##_expect(&b, 0, UNIT);                                                        \
		b = P##_mk(1, 1);                                                               \
		assert_int_equal(P##_compare(&a, &b), -1);                                      \
		assert_int_equal(P##_compare(&b, &a), 1);                                       \
		a = P##_mk(-1, UNIT - 1);                                                       \
		b = P##_mk(0, -1);                                                              \
		assert_int_equal(P##_compare(&a, &b), 0);                                       \
		b = P##_mk(0, 0);                                                               \
		assert_int_equal(P##_compare(&a, &b), -1);                                      \
		a = P##_mk(-2, 0);                                                              \
		b = P##_mk(-1, -UNIT + 1);                                                      \
		assert_int_equal(P##_compare(&a, &b), -1);                                      \
		/* Seconds decide before fractions. */                                          \
		a = P##_mk(2, 0);                                                               \
		b = P##_mk(1, UNIT - 1);                                                        \
		assert_int_equal(P##_compare(&a, &b), 1);                                       \
		assert_int_equal(P##_compare(&a, &a), 0);                                       \
	}                                                                                       \
                                                                                                \
	static int P##_sorted(T *const *arr, size_t len)                                        \
	{                                                                                       \
		for (size_t i = 1; i < len; i++)                                                \
			if (P##_compare(arr[i - 1], arr[i]) > 0)                                \
				return 0;                                                       \
		return 1;                                                                       \
	}                                                                                       \
                                                                                                \
	static void test_##P##_sort_search_insert(void **state)                                 \
	{                                                                                       \
		enum { N = 300 };                                                               \
		static T vals[N];                                                               \
		static T *arr[N], *ins[N];                                                      \
		int seen[N];                                                                    \
		(void)state;                                                                    \
		/* Few distinct values: many duplicates; some unnormalised. */                  \
		for (int i = 0; i < N; i++) {                                                   \
			vals[i] = P##_mk((long long)(rnd() % 11) - 5,                           \
					 (long long)(rnd() % 3) * (UNIT / 2));                  \
			arr[i] = &vals[i];                                                      \
		}                                                                               \
		P##_sort(arr, N);                                                               \
		assert_true(P##_sorted(arr, N));                                                \
		/* A permutation of the same pointers. */                                       \
		memset(seen, 0, sizeof(seen));                                                  \
		for (int i = 0; i < N; i++)                                                     \
			seen[arr[i] - vals]++;                                                  \
		for (int i = 0; i < N; i++)                                                     \
			assert_int_equal(seen[i], 1);                                           \
		P##_sort(arr, 0);                                                               \
		P##_sort(arr, 1);                                                               \
		P##_sort(NULL, 5);                                                              \
		assert_true(P##_sorted(arr, N));                                                \
                                                                                                \
		/* search: the insertion point before all equal elements. */                    \
		for (int k = -7; k <= 7; k++) {                                                 \
			for (int h = 0; h < 4; h++) {                                           \
				T key = P##_mk(k, h * (UNIT / 4));                              \
				long pos = P##_search(arr, N, &key);                            \
				assert_true(pos >= 0 && pos <= N);                              \
				for (long i = 0; i < pos; i++)                                  \
					assert_true(P##_compare(arr[i], &key) < 0);             \
				for (long i = pos; i < N; i++)                                  \
					assert_true(P##_compare(arr[i], &key) >= 0);            \
			}                                                                       \
		}                                                                               \
		T key = P##_mk(0, 0);                                                           \
		assert_int_equal(P##_search(arr, 0, &key), 0);                                  \
		assert_int_equal(P##_search(NULL, N, &key), -EINVAL);                           \
		assert_int_equal(P##_search(NULL, 0, &key), -EINVAL);                           \
		assert_int_equal(P##_search(arr, N, NULL), -EINVAL);                            \
		assert_int_equal(P##_search(arr, (size_t)LONG_MAX + 1, &key), -EINVAL);         \
		/* The value is normalised in place on success only. */                         \
		T un = P##_mk(0, UNIT + UNIT / 2);                                              \
		assert_int_equal(P##_search(NULL, N, &un), -EINVAL);                            \
		P##_expect(&un, 0, UNIT + UNIT / 2);                                            \
		assert_true(P##_search(arr, N, &un) >= 0);                                      \
		P##_expect(&un, 1, UNIT / 2);                                                   \
		un = P##_mk(0, -1);                                                             \
		assert_true(P##_search(arr, 0, &un) == 0);                                      \
		P##_expect(&un, -1, UNIT - 1);                                                  \
                                                                                                \
		/* insert: keeps the array sorted, each before the equal old ones. */           \
		size_t len = 0;                                                                 \
		for (int i = 0; i < N; i++) {                                                   \
			T copy = vals[i];                                                       \
			long want = P##_search(ins, len, &copy);                                \
			long pos = P##_insert(ins, &len, N, &vals[i]);                          \
			assert_int_equal(pos, want);                                            \
			assert_int_equal(len, (size_t)i + 1);                                   \
			assert_ptr_equal(ins[pos], &vals[i]);                                   \
			assert_true(P##_sorted(ins, len));                                      \
		}                                                                               \
		/* Equal values end up in reverse insertion (index) order. */                   \
		for (int i = 1; i < N; i++)                                                     \
			if (P##_compare(ins[i - 1], ins[i]) == 0)                               \
				assert_true(ins[i - 1] > ins[i]);                               \
		/* Full: -EOVERFLOW, nothing changed (also with a NULL value). */               \
		T big = P##_mk(0, 3 * UNIT);                                                    \
		assert_int_equal(P##_insert(ins, &len, N, &big), -EOVERFLOW);                   \
		assert_int_equal(P##_insert(ins, &len, N, NULL), -EOVERFLOW);                   \
		assert_int_equal(len, N);                                                       \
		P##_expect(&big, 0, 3 * UNIT);                                                  \
		len = 0;                                                                        \
		assert_int_equal(P##_insert(NULL, &len, N, &key), -EINVAL);                     \
		assert_int_equal(P##_insert(ins, NULL, N, &key), -EINVAL);                      \
		assert_int_equal(P##_insert(ins, &len, N, NULL), -EINVAL);                      \
		assert_int_equal(P##_insert(ins, &len, 0, &key), -EOVERFLOW);                   \
		assert_int_equal(len, 0);                                                       \
		/* Normalised in place on success. */                                           \
		assert_int_equal(P##_insert(ins, &len, 1, &big), 0);                            \
		P##_expect(&big, 3, 0);                                                         \
		len = 0;                                                                        \
		/* minivent's example: {1,0},{1,0},{2,0}, searching {1,0}, gives 0. */         \
		{                                                                               \
			T one1 = P##_mk(1, 0), one2 = P##_mk(1, 0), two = P##_mk(2, 0);         \
			T *ex[3] = {&one1, &one2, &two};                                        \
			T q = P##_mk(1, 0);                                                     \
			assert_int_equal(P##_search(ex, 3, &q), 0);                             \
			q = P##_mk(2, 0);                                                       \
			assert_int_equal(P##_search(ex, 3, &q), 2);                             \
			q = P##_mk(3, 0);                                                       \
			assert_int_equal(P##_search(ex, 3, &q), 3);                             \
		}                                                                               \
		/* Front, back, middle. */                                                      \
		T lo = P##_mk(-1, 0), mid = P##_mk(0, 0), hi = P##_mk(1, 0);                    \
		assert_int_equal(P##_insert(ins, &len, 3, &mid), 0);                            \
		assert_int_equal(P##_insert(ins, &len, 3, &hi), 1);                             \
		assert_int_equal(P##_insert(ins, &len, 3, &lo), 0);                             \
		assert_ptr_equal(ins[0], &lo);                                                  \
		assert_ptr_equal(ins[1], &mid);                                                 \
		assert_ptr_equal(ins[2], &hi);                                                  \
	}

DEFINE_TESTS(ts, struct timespec, tv_nsec, 1000000000LL)
DEFINE_TESTS(tv, struct timeval, tv_usec, 1000000LL)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_us_conversions),
		CASE(test_ts_normalize),
		CASE(test_ts_add_subtract),
		CASE(test_ts_compare),
		CASE(test_ts_sort_search_insert),
		CASE(test_tv_normalize),
		CASE(test_tv_add_subtract),
		CASE(test_tv_compare),
		CASE(test_tv_sort_search_insert),
	};

	return cmocka_run_group_tests_name("ts-util", tests, NULL, NULL);
}
