// SPDX-License-Identifier: LGPL-2.1-or-later
// timer_fd.hpp - the timerfd that the dispatcher and the timeout list arm
// for their earliest deadline.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <system_error>

#include <sys/timerfd.h>

#include "base/time.hpp"
#include "base/unique_fd.hpp"

namespace vent::detail {

// A non-blocking, close-on-exec timerfd on @clock; throws std::system_error
// (EINVAL for a clock timerfd_create(2) does not support, EPERM, EMFILE ...).
inline UniqueFd timer_open(clockid_t clock)
{
	UniqueFd fd(timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC));
	if (!fd)
		throw std::system_error(errno, std::generic_category());
	return fd;
}

/*
 * Arms timerfd @fd to expire at @deadline (nanoseconds on its clock,
 * absolute), or disarms it for kNever: 0 or -errno. A deadline at or before
 * the clock's epoch is "already expired" (a zero it_value would disarm).
 */
inline int timer_set(int fd, int64_t deadline) noexcept
{
	struct itimerspec its = {};
	int flags = 0;
	if (deadline != kNever) {
		its.it_value = deadline_to_timespec(std::max<int64_t>(deadline, 1));
		flags = TFD_TIMER_ABSTIME;
	}
	return timerfd_settime(fd, flags, &its, nullptr) == 0 ? 0 : -errno;
}

} // namespace vent::detail
