// SPDX-License-Identifier: LGPL-2.1-or-later
#include "base/fork_guard.hpp"

#include <pthread.h>

namespace vent::detail {

std::atomic<uint32_t> fork_generation{0};

namespace {

void on_fork_child() noexcept
{
	fork_generation.fetch_add(1, std::memory_order_relaxed);
}

// Registered once per process, before any dispatcher can exist. The handler
// only touches an atomic, so it is safe in the child of a multi-threaded
// parent.
struct AtforkRegistration {
	AtforkRegistration() noexcept { pthread_atfork(nullptr, nullptr, on_fork_child); }
};
const AtforkRegistration registration;

} // namespace

ForkGuard::ForkGuard() noexcept : gen_(fork_generation.load(std::memory_order_relaxed)) {}

} // namespace vent::detail
