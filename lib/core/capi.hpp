// SPDX-License-Identifier: LGPL-2.1-or-later
// core/capi.hpp - the C tag of a dispatcher, shared by core's two facade files.
#pragma once

#include <vent/event.h>

#include "core/dispatcher.hpp"

// The C tag holds the C++ object by value (lib/README.md: tags).
struct dispatcher {
	explicit dispatcher(int clock) : impl(clock) {}
	vent::Dispatcher impl;
};

namespace vent::detail {

inline Dispatcher *to_impl(const struct dispatcher *d) noexcept
{
	return d ? const_cast<Dispatcher *>(&d->impl) : nullptr;
}

} // namespace vent::detail
