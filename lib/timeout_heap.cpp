// SPDX-License-Identifier: LGPL-2.1-or-later
#include "timeout_heap.hpp"

namespace vent::detail {

__extension__ typedef __int128 int128;

bool timespec_to_deadline(const struct timespec &ts, bool absolute, int64_t now_ns,
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

struct timespec deadline_to_timespec(int64_t ns) noexcept
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

} // namespace vent::detail
