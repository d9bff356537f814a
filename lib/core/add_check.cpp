// SPDX-License-Identifier: LGPL-2.1-or-later
#include "core/add_check.hpp"

#include <atomic>

namespace vent::detail {

namespace {
std::atomic<AddCheck> g_check{nullptr};
} // namespace

void set_add_check(AddCheck fn) noexcept
{
	g_check.store(fn, std::memory_order_release);
}

int run_add_check(const Dispatcher &d, const struct event *evt) noexcept
{
	AddCheck fn = g_check.load(std::memory_order_acquire);
	return fn ? fn(d, evt) : 0;
}

} // namespace vent::detail
