// SPDX-License-Identifier: LGPL-2.1-or-later
// fork_guard.hpp - cheap detection of "this object was inherited across fork()".
#pragma once

#include <atomic>
#include <cstdint>

namespace vent::detail {

// Incremented in every forked child by a pthread_atfork() handler, so a
// check costs one relaxed load instead of a getpid() syscall.
extern std::atomic<uint32_t> fork_generation;

class ForkGuard {
public:
	ForkGuard() noexcept;
	// True in a process forked after this object was created.
	bool forked() const noexcept
	{
		return fork_generation.load(std::memory_order_relaxed) != gen_;
	}

private:
	uint32_t gen_;
};

} // namespace vent::detail
