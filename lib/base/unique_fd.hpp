// SPDX-License-Identifier: LGPL-2.1-or-later
// unique_fd.hpp - the one owner of every fd the library creates.
#pragma once

#include <cerrno>
#include <unistd.h>
#include <utility>

namespace vent::detail {

/*
 * Move-only fd holder; -1 means empty. This is the only place in the library
 * that calls close(): the library never closes a user's fd.
 */
class UniqueFd {
public:
	UniqueFd() noexcept = default;
	explicit UniqueFd(int fd) noexcept : fd_(fd) {}
	UniqueFd(UniqueFd &&o) noexcept : fd_(o.release()) {}
	UniqueFd &operator=(UniqueFd &&o) noexcept
	{
		if (this != &o)
			reset(o.release());
		return *this;
	}
	UniqueFd(const UniqueFd &) = delete;
	UniqueFd &operator=(const UniqueFd &) = delete;
	~UniqueFd() { reset(); }

	int get() const noexcept { return fd_; }
	explicit operator bool() const noexcept { return fd_ >= 0; }
	int release() noexcept { return std::exchange(fd_, -1); }

	// Closes the held fd, keeping errno intact so that error paths can
	// release resources and still report the original failure.
	void reset(int fd = -1) noexcept
	{
		if (fd_ >= 0) {
			int saved = errno;
			::close(fd_);
			errno = saved;
		}
		fd_ = fd;
	}

private:
	int fd_ = -1;
};

} // namespace vent::detail
