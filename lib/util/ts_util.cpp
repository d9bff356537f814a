// SPDX-License-Identifier: LGPL-2.1-or-later
// util/ts_util.cpp - extern "C" definitions for include/vent/ts-util.h and
// include/vent/tv-util.h (the same algorithms on two time types).
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <vent/ts-util.h>
#include <vent/tv-util.h>

#include "base/capi.hpp"

namespace {

// Field access for the two types, so each algorithm is written once.
struct TsTraits {
	using T = struct timespec;
	static constexpr long kUnit = 1000000000L;
	static long &frac(T &t) { return t.tv_nsec; }
	static long frac(const T &t) { return t.tv_nsec; }
};
struct TvTraits {
	using T = struct timeval;
	static constexpr long kUnit = 1000000L;
	static long &frac(T &t) { return t.tv_usec; }
	static long frac(const T &t) { return t.tv_usec; }
};

template <class Tr> void normalize(typename Tr::T *t) noexcept
{
	if (!t)
		return;
	long q = Tr::frac(*t) / Tr::kUnit;
	long r = Tr::frac(*t) % Tr::kUnit;
	if (r < 0) {
		r += Tr::kUnit;
		q -= 1;
	}
	t->tv_sec += q;
	Tr::frac(*t) = r;
}

// @a = @op(@a, @b) field by field, both normalised first, and the result
// (ts_add()/ts_subtract()).
template <class Tr, class Op>
void combine(typename Tr::T *a, const typename Tr::T *b, Op op) noexcept
{
	if (!a || !b)
		return;
	typename Tr::T c = *b;
	normalize<Tr>(a);
	normalize<Tr>(&c);
	a->tv_sec = op(a->tv_sec, c.tv_sec);
	Tr::frac(*a) = op(Tr::frac(*a), Tr::frac(c));
	normalize<Tr>(a);
}

template <class Tr> int compare(const typename Tr::T *a, const typename Tr::T *b) noexcept
{
	typename Tr::T x = *a, y = *b;
	normalize<Tr>(&x);
	normalize<Tr>(&y);
	if (x.tv_sec != y.tv_sec)
		return x.tv_sec < y.tv_sec ? -1 : 1;
	if (Tr::frac(x) != Tr::frac(y))
		return Tr::frac(x) < Tr::frac(y) ? -1 : 1;
	return 0;
}

template <class Tr> int compare_ptrs(const void *a, const void *b) noexcept
{
	return compare<Tr>(*static_cast<typename Tr::T *const *>(a),
			   *static_cast<typename Tr::T *const *>(b));
}

template <class Tr> void sort(typename Tr::T **arr, size_t len) noexcept
{
	if (arr && len > 1)
		qsort(arr, len, sizeof(*arr), compare_ptrs<Tr>);
}

/*
 * minivent's contract (its ts-util.h): the insertion point *before* the
 * elements equal to @t (lower bound), -EINVAL for a NULL array or value,
 * and @t normalised in place once the arguments are known to be good.
 */
template <class Tr>
long search(typename Tr::T *const *arr, size_t len, typename Tr::T *t) noexcept
{
	if (!arr || !t || len > static_cast<size_t>(LONG_MAX))
		return -EINVAL;
	normalize<Tr>(t);
	size_t lo = 0, hi = len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (compare<Tr>(arr[mid], t) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return static_cast<long>(lo);
}

/*
 * The full check comes first, as in minivent: a full array reports
 * -EOVERFLOW even when another argument is bad too. A NULL @len is
 * -EINVAL (minivent's code reads it as "full": see the header).
 */
template <class Tr>
long insert(typename Tr::T **arr, size_t *len, size_t size, typename Tr::T *t) noexcept
{
	if (!len)
		return -EINVAL;
	if (*len >= size)
		return -EOVERFLOW;
	long pos = search<Tr>(arr, *len, t);
	if (pos < 0)
		return pos;
	memmove(&arr[pos + 1], &arr[pos], (*len - static_cast<size_t>(pos)) * sizeof(*arr));
	arr[pos] = t;
	(*len)++;
	return pos;
}

} // namespace

/*
 * The exported functions of one time type: ts_*() for struct timespec
 * (ts-util.h), tv_*() for struct timeval (tv-util.h). Each is its
 * algorithm above on that type's traits; the header's declaration gives
 * it its symbol (VENT_SYMBOL()).
 */
#define VENT_TIME_UTIL(P, T, Tr)                                                            \
	VENT_PUBLIC void P##_normalize(T *t) noexcept { normalize<Tr>(t); }                  \
	VENT_PUBLIC void P##_add(T *t1, const T *t2) noexcept                                \
	{                                                                                    \
		combine<Tr>(t1, t2, [](auto x, auto y) { return x + y; });                   \
	}                                                                                    \
	VENT_PUBLIC void P##_subtract(T *t1, const T *t2) noexcept                           \
	{                                                                                    \
		combine<Tr>(t1, t2, [](auto x, auto y) { return x - y; });                   \
	}                                                                                    \
	VENT_PUBLIC int P##_compare(const T *t1, const T *t2) noexcept                       \
	{                                                                                    \
		return compare<Tr>(t1, t2);                                                  \
	}                                                                                    \
	VENT_PUBLIC void P##_sort(T **arr, size_t len) noexcept { sort<Tr>(arr, len); }      \
	VENT_PUBLIC long P##_search(T *const *arr, size_t len, T *t) noexcept                \
	{                                                                                    \
		return search<Tr>(arr, len, t);                                              \
	}                                                                                    \
	VENT_PUBLIC long P##_insert(T **arr, size_t *len, size_t size, T *t) noexcept        \
	{                                                                                    \
		return insert<Tr>(arr, len, size, t);                                        \
	}

extern "C" {

VENT_TIME_UTIL(ts, struct timespec, TsTraits)
VENT_TIME_UTIL(tv, struct timeval, TvTraits)

} // extern "C"
