// SPDX-License-Identifier: LGPL-2.1-or-later
// time.hpp - the library's one home for time: units, clock reads, deadlines
// in nanoseconds and their timespec form.
#pragma once

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <limits>

namespace vent::detail {

constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kMsPerSec = 1'000;
// A deadline that never comes: values too large to represent clamp to it.
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

__extension__ typedef __int128 int128;

/*
 * Reads @clock into @ts: 0 or -errno. clock_gettime() can fail for a clock
 * that timerfd_create() accepted (an alarm clock on a host without an RTC),
 * so the result is reported, never replaced by an uninitialised timespec.
 */
inline int clock_now(clockid_t clock, struct timespec &ts) noexcept
{
	if (clock_gettime(clock, &ts) < 0) {
		ts = {0, 0};
		return -errno;
	}
	return 0;
}

// A normalised timespec whose value fits int64 nanoseconds (any clock read
// until the year 2262), in nanoseconds.
inline int64_t timespec_ns(const struct timespec &ts) noexcept
{
	return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

// Reads @clock into @ns, in nanoseconds: 0 or -errno.
inline int now_ns(clockid_t clock, int64_t &ns) noexcept
{
	struct timespec ts;
	int rc = clock_now(clock, ts);
	ns = timespec_ns(ts);
	return rc;
}

/*
 * Converts a user timespec into nanoseconds on the dispatcher's clock.
 * Normalises tv_nsec, clamps values beyond int64 to kNever (or, for absolute
 * times far in the past, to the earliest representable time). @now_ns is
 * only read for relative values. Returns false for a negative relative
 * value.
 */
inline bool timespec_to_deadline(const struct timespec &ts, bool absolute, int64_t now_ns,
				 int64_t &deadline) noexcept
{
	// 128-bit arithmetic: tv_sec * 1e9 overflows int64 for any tv_sec
	// beyond ~292 years, and users do pass "forever" as huge values.
	int128 t = static_cast<int128>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
	if (!absolute) {
		if (t < 0)
			return false;
		t += now_ns;
	}
	constexpr int128 lo = std::numeric_limits<int64_t>::min();
	if (t >= kNever)
		deadline = kNever;
	else if (t < lo)
		deadline = std::numeric_limits<int64_t>::min();
	else
		deadline = static_cast<int64_t>(t);
	return true;
}

// The inverse, with floor division so negative values stay normalised.
inline struct timespec deadline_to_timespec(int64_t ns) noexcept
{
	int64_t s = ns / kNsPerSec;
	int64_t r = ns % kNsPerSec;
	if (r < 0) {
		r += kNsPerSec;
		s -= 1;
	}
	struct timespec ts;
	ts.tv_sec = static_cast<time_t>(s);
	ts.tv_nsec = static_cast<long>(r);
	return ts;
}

/*
 * The deadline @tmo after @base (a clock read), in nanoseconds (@deadline)
 * and as a timespec (@abs). Common values (whole seconds below 2^31,
 * tv_nsec normalised) take a path without 128-bit arithmetic or division:
 * a timer re-arm is short enough for those to show. Returns false for a
 * negative @tmo.
 */
[[gnu::always_inline]] inline bool relative_deadline(const struct timespec &base,
						     const struct timespec &tmo, int64_t &deadline,
						     struct timespec &abs) noexcept
{
	if (tmo.tv_sec >= 0 && tmo.tv_sec < INT32_MAX &&
	    static_cast<unsigned long>(tmo.tv_nsec) < static_cast<unsigned long>(kNsPerSec)) {
		abs.tv_sec = base.tv_sec + tmo.tv_sec;
		abs.tv_nsec = base.tv_nsec + tmo.tv_nsec;
		if (abs.tv_nsec >= kNsPerSec) {
			abs.tv_nsec -= kNsPerSec;
			abs.tv_sec++;
		}
		// Beyond int64 nanoseconds (the year 2262 on CLOCK_REALTIME):
		// the general path clamps.
		if (abs.tv_sec < kNever / kNsPerSec) {
			deadline = timespec_ns(abs);
			return true;
		}
	}
	if (!timespec_to_deadline(tmo, false, timespec_ns(base), deadline))
		return false;
	abs = deadline_to_timespec(deadline);
	return true;
}

// An absolute user timespec as a deadline, clamped (see
// timespec_to_deadline()), and its normalised timespec form.
inline void absolute_deadline(const struct timespec &tmo, int64_t &deadline,
			      struct timespec &abs) noexcept
{
	timespec_to_deadline(tmo, true, 0, deadline);
	abs = deadline_to_timespec(deadline);
}

/*
 * The deadline of a timeout given as @tmo on @clock, in nanoseconds and as
 * the normalised timespec (@abs) that is written back to the user's
 * struct event: absolute if @absolute (clamped, see timespec_to_deadline()),
 * otherwise @tmo after a fresh clock read, so that no timeout ends early.
 * Returns 0, -EINVAL for a negative relative value, or the clock read's
 * -errno. Inline: it is on the path of every arm and re-arm.
 */
[[gnu::always_inline]] inline int deadline_for(clockid_t clock, const struct timespec &tmo,
					       bool absolute, int64_t &deadline,
					       struct timespec &abs) noexcept
{
	if (absolute) {
		absolute_deadline(tmo, deadline, abs);
		return 0;
	}
	struct timespec t;
	if (int rc = clock_now(clock, t); rc < 0)
		return rc;
	return relative_deadline(t, tmo, deadline, abs) ? 0 : -EINVAL;
}

// A non-negative millisecond count as a relative timespec.
inline struct timespec ms_to_timespec(int64_t ms) noexcept
{
	struct timespec ts;
	ts.tv_sec = static_cast<time_t>(ms / kMsPerSec);
	ts.tv_nsec = static_cast<long>(ms % kMsPerSec * kNsPerMs);
	return ts;
}

// The absolute time @ns (>= 0) from now on @clock into @ts (what
// pthread_cond_timedwait() and friends take): 0 or -errno.
inline int deadline_after(clockid_t clock, int64_t ns, struct timespec &ts) noexcept
{
	if (int rc = clock_now(clock, ts); rc < 0)
		return rc;
	ns += ts.tv_nsec;
	ts.tv_sec += static_cast<time_t>(ns / kNsPerSec);
	ts.tv_nsec = static_cast<long>(ns % kNsPerSec);
	return 0;
}

} // namespace vent::detail
