/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tv-util.h - helpers for struct timeval (minivent compatible).
 */
#ifndef _TV_UTIL_H
#define _TV_UTIL_H

#include "defs.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

VENT_BEGIN_DECLS

/**
 * tv_to_us() - a timeval in microseconds
 * @tv: a normalised, non-negative timeval
 *
 * Return: @tv in µs.
 */
static inline uint64_t tv_to_us(const struct timeval *tv) VENT_NOEXCEPT
{
	return VENT_CAST(uint64_t, tv->tv_sec) * 1000000ULL + VENT_CAST(uint64_t, tv->tv_usec);
}

/**
 * us_to_tv() - microseconds to a timeval
 * @us: microseconds
 * @tv: result
 */
static inline void us_to_tv(uint64_t us, struct timeval *tv) VENT_NOEXCEPT
{
	tv->tv_sec = VENT_CAST(time_t, us / 1000000U);
	tv->tv_usec = VENT_CAST(suseconds_t, us % 1000000U);
}

/**
 * tv_normalize() - bring tv_usec into [0, 1e6), carrying into tv_sec
 * @tv: the timeval
 */
void tv_normalize(struct timeval *tv) VENT_NOEXCEPT VENT_SYMBOL(vent_tv_normalize);

/**
 * tv_add() - @t1 += @t2, normalised
 * @t1: augend and result
 * @t2: addend
 */
void tv_add(struct timeval *t1, const struct timeval *t2) VENT_NOEXCEPT VENT_SYMBOL(vent_tv_add);

/**
 * tv_subtract() - @t1 -= @t2, normalised
 * @t1: minuend and result
 * @t2: subtrahend
 */
void tv_subtract(struct timeval *t1, const struct timeval *t2)
	VENT_NOEXCEPT VENT_SYMBOL(vent_tv_subtract);

/**
 * tv_compare() - compare two timevals (after normalising copies)
 * @tv1: first
 * @tv2: second
 *
 * Return: -1, 0 or 1 as @tv1 is earlier than, equal to or later than @tv2.
 */
int tv_compare(const struct timeval *tv1, const struct timeval *tv2)
	VENT_NOEXCEPT VENT_SYMBOL(vent_tv_compare);

/**
 * tv_sort() - sort an array of timeval pointers, earliest first
 * @tvs: the array
 * @len: its length
 */
void tv_sort(struct timeval **tvs, size_t len) VENT_NOEXCEPT VENT_SYMBOL(vent_tv_sort);

/**
 * tv_search() - find the insertion point in a sorted array of timeval pointers
 * @tvs: the array, sorted by tv_sort()
 * @len: its length
 * @tv: the value to look for; normalised in place on success
 *
 * Bisection, O(log @len). minivent's contract: the index returned is
 * *before* any elements equal to @tv. If it is n, then @tvs[n-1] is
 * earlier than @tv and @tvs[n] is equal to or later than @tv: for
 * {1,0}, {1,0}, {2,0} and @tv = {1,0} the result is 0.
 * On success @tv is normalised in place (tv_usec brought into [0, 1e6):
 * {0, 1500000} becomes {1, 500000}).
 *
 * Return: the index (0 to @len); -EINVAL if @tvs or @tv is NULL or @len
 * exceeds LONG_MAX (@tv is then left as it was).
 */
long tv_search(struct timeval *const *tvs, size_t len, struct timeval *tv)
	VENT_NOEXCEPT VENT_SYMBOL(vent_tv_search);

/**
 * tv_insert() - insert into a sorted array of timeval pointers
 * @tvs: the array, with room for @size elements
 * @len: its length, incremented on success
 * @size: its capacity, in elements
 * @tv: the pointer to insert (not copied); normalised in place on success
 *
 * Inserts @tv at the index tv_search() returns (before the elements equal
 * to it), moving the later ones up. Does not reallocate @tvs.
 *
 * Return: the index where @tv was inserted; -EOVERFLOW if the array is full
 * (*@len >= @size; checked first, as in minivent); -EINVAL if @tvs, @len or
 * @tv is NULL (minivent's code returns -EOVERFLOW for a NULL @len). On
 * failure nothing changes, @tv included.
 */
long tv_insert(struct timeval **tvs, size_t *len, size_t size, struct timeval *tv)
	VENT_NOEXCEPT VENT_SYMBOL(vent_tv_insert);

VENT_END_DECLS

#endif /* _TV_UTIL_H */
