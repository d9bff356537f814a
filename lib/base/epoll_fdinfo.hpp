// SPDX-License-Identifier: LGPL-2.1-or-later
// epoll_fdinfo.hpp - an epoll set's registrations as the kernel lists them
// in /proc/self/fdinfo, read without allocating.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/unique_fd.hpp"

namespace vent::detail {

// One registration: its "tfd:", "events:", "data:" and "ino:" fields (ino
// 0 on a kernel that does not list it).
struct EpollRecord {
	int fd;
	uint32_t events;
	uint64_t data;
	unsigned long ino;
};

/*
 * Reads the "tfd:" lines of /proc/self/fdinfo/<epfd> one at a time with a
 * fixed buffer: no allocation, so no failure mode beyond the open and the
 * reads. Used by the dispatcher's orphan purge (rebuild_epoll()) and by
 * verify().
 */
class EpollFdinfo {
public:
	// Opens the file; false (operator bool) without /proc.
	explicit EpollFdinfo(int epfd) noexcept;
	explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

	// 1: @rec holds the next registration; 0: there is none (or the file
	// has a line longer than the buffer); -1: a read failed (errno).
	int next(EpollRecord &rec) noexcept;

private:
	UniqueFd fd_;
	char buf_[4096];
	size_t have_ = 0; // bytes in buf_
	size_t used_ = 0; // of which the line next() returned last
	bool eof_ = false;
};

} // namespace vent::detail
