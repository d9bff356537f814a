// SPDX-License-Identifier: LGPL-2.1-or-later
// wakeup.hpp - the eventfd wakeup: counting helpers and one coalescing type.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>

#include <sys/eventfd.h>
#include <unistd.h>

#include "base/capi.hpp"
#include "base/unique_fd.hpp"

namespace vent::detail {

/*
 * Adds @n (clamped to the largest value an eventfd counter holds; writing
 * UINT64_MAX is EINVAL) to the counter of eventfd @fd. Retries EINTR; EAGAIN
 * (the counter would overflow) means it is already far above zero and the
 * reader is awake, so it counts as success. Keeps errno; async-signal-safe.
 * Returns 0 or -errno.
 */
inline int eventfd_add(int fd, uint64_t n) noexcept
{
	constexpr uint64_t kMax = UINT64_MAX - 1;
	if (n == 0)
		return 0;
	if (n > kMax)
		n = kMax;
	const int saved = errno;
	int rc = 0;
	for (;;) {
		if (write(fd, &n, sizeof(n)) == static_cast<ssize_t>(sizeof(n)))
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			rc = -errno;
		break;
	}
	errno = saved;
	return rc;
}

// Reads and resets the counter of eventfd @fd (non-blocking). Returns the
// count, or 0 if it was 0 (or the read failed). Keeps errno.
inline uint64_t eventfd_drain(int fd) noexcept
{
	uint64_t count;
	const int saved = errno;
	ssize_t r;
	do
		r = read(fd, &count, sizeof(count));
	while (r < 0 && errno == EINTR);
	errno = saved;
	return r == static_cast<ssize_t>(sizeof(count)) ? count : 0;
}

/*
 * A coalescing wakeup: any number of signal() calls, from any thread or a
 * signal handler, cost one write(2) until the consumer drains; the consumer
 * watches fd() (for readability) and calls drain() when it reports, then
 * looks at the work the signals announced.
 *
 * The order in drain() is what keeps a wakeup from being lost for good:
 * read the eventfd first, clear the pending flag second. The other order
 * (clear, then read) loses one: a signal() in the gap sets the flag and
 * writes, the read swallows that write, and the flag stays set with an
 * empty eventfd, so every later signal() is taken as already pending and
 * nothing ever wakes the consumer again. Read-then-clear leaves two cases:
 *  - a signal() before the read: its write is consumed, and the consumer is
 *    awake and about to look at the work anyway;
 *  - a signal() between the read and the clear: it sees the flag still set
 *    and does not write; that is fine, because the clear comes after it in
 *    the flag's modification order, and the clear is an exchange (a
 *    read-modify-write, acquire) that synchronises with every signal()
 *    before it (each an exchange, release): the work those signals
 *    published is visible to the consumer once drain() returns.
 * Any signal() after the clear writes again. So at most one write is
 * outstanding, and the eventfd is readable whenever a signal() has not yet
 * been answered by a drain().
 *
 * signal() is async-signal-safe: a lock-free atomic exchange and write(2),
 * errno preserved. A signal handler that interrupts drain() between the read
 * and the clear is the second case above: the consumer is running already.
 */
class Wakeup {
	static_assert(std::atomic<bool>::is_always_lock_free,
		      "signal() must be async-signal-safe");

public:
	// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); throws std::system_error.
	Wakeup() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
	{
		if (!fd_)
			throw_errno();
	}

	int fd() const noexcept { return fd_.get(); }

	void signal() noexcept
	{
		if (!pending_.exchange(true, std::memory_order_acq_rel))
			eventfd_add(fd_.get(), 1);
	}

	// Consumer side, before looking at the announced work.
	void drain() noexcept
	{
		eventfd_drain(fd_.get());
		pending_.exchange(false, std::memory_order_acq_rel);
	}

	// Closes the eventfd early (the object stays; signal() then writes to
	// a closed fd number, which the owner must rule out).
	void close() noexcept { fd_.reset(); }

private:
	UniqueFd fd_;
	std::atomic<bool> pending_{false};
};

} // namespace vent::detail
