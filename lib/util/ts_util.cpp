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

template <class Tr> void add(typename Tr::T *a, const typename Tr::T *b) noexcept
{
	if (!a || !b)
		return;
	typename Tr::T c = *b;
	normalize<Tr>(a);
	normalize<Tr>(&c);
	a->tv_sec += c.tv_sec;
	Tr::frac(*a) += Tr::frac(c);
	normalize<Tr>(a);
}

template <class Tr> void subtract(typename Tr::T *a, const typename Tr::T *b) noexcept
{
	if (!a || !b)
		return;
	typename Tr::T c = *b;
	normalize<Tr>(a);
	normalize<Tr>(&c);
	a->tv_sec -= c.tv_sec;
	Tr::frac(*a) -= Tr::frac(c);
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

extern "C" {

VENT_PUBLIC void ts_normalize(struct timespec *ts) noexcept { normalize<TsTraits>(ts); }
VENT_PUBLIC void ts_add(struct timespec *t1, const struct timespec *t2) noexcept
{
	add<TsTraits>(t1, t2);
}
VENT_PUBLIC void ts_subtract(struct timespec *t1, const struct timespec *t2) noexcept
{
	subtract<TsTraits>(t1, t2);
}
VENT_PUBLIC int ts_compare(const struct timespec *ts1, const struct timespec *ts2) noexcept
{
	return compare<TsTraits>(ts1, ts2);
}
VENT_PUBLIC void ts_sort(struct timespec **tss, size_t len) noexcept
{
	if (tss && len > 1)
		qsort(tss, len, sizeof(*tss), compare_ptrs<TsTraits>);
}
VENT_PUBLIC long ts_search(struct timespec *const *tss, size_t len, struct timespec *ts) noexcept
{
	return search<TsTraits>(tss, len, ts);
}
VENT_PUBLIC long ts_insert(struct timespec **tss, size_t *len, size_t size,
			   struct timespec *ts) noexcept
{
	return insert<TsTraits>(tss, len, size, ts);
}

VENT_PUBLIC void tv_normalize(struct timeval *tv) noexcept { normalize<TvTraits>(tv); }
VENT_PUBLIC void tv_add(struct timeval *t1, const struct timeval *t2) noexcept
{
	add<TvTraits>(t1, t2);
}
VENT_PUBLIC void tv_subtract(struct timeval *t1, const struct timeval *t2) noexcept
{
	subtract<TvTraits>(t1, t2);
}
VENT_PUBLIC int tv_compare(const struct timeval *tv1, const struct timeval *tv2) noexcept
{
	return compare<TvTraits>(tv1, tv2);
}
VENT_PUBLIC void tv_sort(struct timeval **tvs, size_t len) noexcept
{
	if (tvs && len > 1)
		qsort(tvs, len, sizeof(*tvs), compare_ptrs<TvTraits>);
}
VENT_PUBLIC long tv_search(struct timeval *const *tvs, size_t len, struct timeval *tv) noexcept
{
	return search<TvTraits>(tvs, len, tv);
}
VENT_PUBLIC long tv_insert(struct timeval **tvs, size_t *len, size_t size,
			   struct timeval *tv) noexcept
{
	return insert<TvTraits>(tvs, len, size, tv);
}

} // extern "C"
