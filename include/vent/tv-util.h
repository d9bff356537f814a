/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tv-util.h - helpers for struct timeval (minivent compatible).
 */
#ifndef _TV_UTIL_H
#define _TV_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "defs.h"

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
void tv_normalize(struct timeval *tv) VENT_NOEXCEPT;

/**
 * tv_add() - @t1 += @t2, normalised
 * @t1: augend and result
 * @t2: addend
 */
void tv_add(struct timeval *t1, const struct timeval *t2) VENT_NOEXCEPT;

/**
 * tv_subtract() - @t1 -= @t2, normalised
 * @t1: minuend and result
 * @t2: subtrahend
 */
void tv_subtract(struct timeval *t1, const struct timeval *t2) VENT_NOEXCEPT;

/**
 * tv_compare() - compare two timevals (after normalising copies)
 * @tv1: first
 * @tv2: second
 *
 * Return: -1, 0 or 1 as @tv1 is earlier than, equal to or later than @tv2.
 */
int tv_compare(const struct timeval *tv1, const struct timeval *tv2) VENT_NOEXCEPT;

/**
 * tv_sort() - sort an array of timeval pointers, earliest first
 * @tvs: the array
 * @len: its length
 */
void tv_sort(struct timeval **tvs, size_t len) VENT_NOEXCEPT;

/**
 * tv_search() - bisect a sorted array of timeval pointers
 * @tvs: the array, sorted by tv_sort()
 * @len: its length
 * @tv: the value to look for
 *
 * Return: the index at which @tv would be inserted to keep the array sorted
 * (after all elements equal to it); -1 if @tvs or @tv is NULL.
 */
long tv_search(struct timeval *const *tvs, size_t len, struct timeval *tv) VENT_NOEXCEPT;

/**
 * tv_insert() - insert into a sorted array of timeval pointers
 * @tvs: the array, with room for @size elements
 * @len: its length, incremented on success
 * @size: its capacity
 * @tv: the pointer to insert
 *
 * Return: the index where @tv was inserted; -1 if an argument is NULL or the
 * array is full.
 */
long tv_insert(struct timeval **tvs, size_t *len, size_t size, struct timeval *tv) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* _TV_UTIL_H */
