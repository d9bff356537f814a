/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ts-util.h - helpers for struct timespec (minivent compatible).
 */
#ifndef _TS_UTIL_H
#define _TS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "defs.h"

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
void ts_normalize(struct timespec *ts) VENT_NOEXCEPT;

/**
 * ts_add() - @t1 += @t2, normalised
 * @t1: augend and result
 * @t2: addend
 */
void ts_add(struct timespec *t1, const struct timespec *t2) VENT_NOEXCEPT;

/**
 * ts_subtract() - @t1 -= @t2, normalised
 * @t1: minuend and result
 * @t2: subtrahend
 */
void ts_subtract(struct timespec *t1, const struct timespec *t2) VENT_NOEXCEPT;

/**
 * ts_compare() - compare two timespecs (after normalising copies)
 * @ts1: first
 * @ts2: second
 *
 * Return: -1, 0 or 1 as @ts1 is earlier than, equal to or later than @ts2.
 */
int ts_compare(const struct timespec *ts1, const struct timespec *ts2) VENT_NOEXCEPT;

/**
 * ts_sort() - sort an array of timespec pointers, earliest first
 * @tss: the array
 * @len: its length
 */
void ts_sort(struct timespec **tss, size_t len) VENT_NOEXCEPT;

/**
 * ts_search() - bisect a sorted array of timespec pointers
 * @tss: the array, sorted by ts_sort()
 * @len: its length
 * @ts: the value to look for
 *
 * Return: the index at which @ts would be inserted to keep the array sorted
 * (after all elements equal to it); -1 if @tss or @ts is NULL.
 */
long ts_search(struct timespec *const *tss, size_t len, struct timespec *ts) VENT_NOEXCEPT;

/**
 * ts_insert() - insert into a sorted array of timespec pointers
 * @tss: the array, with room for @size elements
 * @len: its length, incremented on success
 * @size: its capacity
 * @ts: the pointer to insert
 *
 * Return: the index where @ts was inserted; -1 if an argument is NULL or the
 * array is full.
 */
long ts_insert(struct timespec **tss, size_t *len, size_t size, struct timespec *ts) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* _TS_UTIL_H */
