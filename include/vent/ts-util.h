/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ts-util.h - helpers for struct timespec (minivent compatible).
 */
#ifndef _TS_UTIL_H
#define _TS_UTIL_H

#include "defs.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

VENT_BEGIN_DECLS

/**
 * ts_to_us() - a timespec in microseconds
 * @ts: a normalised, non-negative timespec
 *
 * Return: @ts in µs (nanoseconds truncated).
 */
static inline uint64_t ts_to_us(const struct timespec *ts) VENT_NOEXCEPT
{
	return VENT_CAST(uint64_t, ts->tv_sec) * 1000000ULL + VENT_CAST(uint64_t, ts->tv_nsec / 1000);
}

/**
 * us_to_ts() - microseconds to a timespec
 * @us: microseconds
 * @ts: result
 */
static inline void us_to_ts(uint64_t us, struct timespec *ts) VENT_NOEXCEPT
{
	ts->tv_sec = VENT_CAST(time_t, us / 1000000U);
	ts->tv_nsec = VENT_CAST(long, (us % 1000000U) * 1000U);
}

/**
 * ts_normalize() - bring tv_nsec into [0, 1e9), carrying into tv_sec
 * @ts: the timespec
 */
void ts_normalize(struct timespec *ts) VENT_NOEXCEPT VENT_SYMBOL(vent_ts_normalize);

/**
 * ts_add() - @t1 += @t2, normalised
 * @t1: augend and result
 * @t2: addend
 */
void ts_add(struct timespec *t1, const struct timespec *t2) VENT_NOEXCEPT VENT_SYMBOL(vent_ts_add);

/**
 * ts_subtract() - @t1 -= @t2, normalised
 * @t1: minuend and result
 * @t2: subtrahend
 */
void ts_subtract(struct timespec *t1, const struct timespec *t2)
	VENT_NOEXCEPT VENT_SYMBOL(vent_ts_subtract);

/**
 * ts_compare() - compare two timespecs (after normalising copies)
 * @ts1: first
 * @ts2: second
 *
 * Return: -1, 0 or 1 as @ts1 is earlier than, equal to or later than @ts2.
 */
int ts_compare(const struct timespec *ts1, const struct timespec *ts2)
	VENT_NOEXCEPT VENT_SYMBOL(vent_ts_compare);

/**
 * ts_sort() - sort an array of timespec pointers, earliest first
 * @tss: the array
 * @len: its length
 */
void ts_sort(struct timespec **tss, size_t len) VENT_NOEXCEPT VENT_SYMBOL(vent_ts_sort);

/**
 * ts_search() - find the insertion point in a sorted array of timespec pointers
 * @tss: the array, sorted by ts_sort()
 * @len: its length
 * @ts: the value to look for; normalised in place on success
 *
 * Bisection, O(log @len). minivent's contract: the index returned is
 * *before* any elements equal to @ts. If it is n, then @tss[n-1] is
 * earlier than @ts and @tss[n] is equal to or later than @ts: for
 * {1,0}, {1,0}, {2,0} and @ts = {1,0} the result is 0.
 * On success @ts is normalised in place (tv_nsec brought into [0, 1e9):
 * {0, 1500000000} becomes {1, 500000000}).
 *
 * Return: the index (0 to @len); -EINVAL if @tss or @ts is NULL or @len
 * exceeds LONG_MAX (@ts is then left as it was).
 */
long ts_search(struct timespec *const *tss, size_t len, struct timespec *ts)
	VENT_NOEXCEPT VENT_SYMBOL(vent_ts_search);

/**
 * ts_insert() - insert into a sorted array of timespec pointers
 * @tss: the array, with room for @size elements
 * @len: its length, incremented on success
 * @size: its capacity, in elements
 * @ts: the pointer to insert (not copied); normalised in place on success
 *
 * Inserts @ts at the index ts_search() returns (before the elements equal
 * to it), moving the later ones up. Does not reallocate @tss.
 *
 * Return: the index where @ts was inserted; -EOVERFLOW if the array is full
 * (*@len >= @size; checked first, as in minivent); -EINVAL if @tss, @len or
 * @ts is NULL (minivent's code returns -EOVERFLOW for a NULL @len). On
 * failure nothing changes, @ts included.
 */
long ts_insert(struct timespec **tss, size_t *len, size_t size, struct timespec *ts)
	VENT_NOEXCEPT VENT_SYMBOL(vent_ts_insert);

VENT_END_DECLS

#endif /* _TS_UTIL_H */
