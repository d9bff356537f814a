// SPDX-License-Identifier: LGPL-2.1-or-later
// add_check.hpp - a veto that Dispatcher::add() consults before registering
// an fd. Kept apart from the dispatcher so that the core does not depend on
// the modules that use it (lib/sources/sources.cpp refuses a second signal source
// for a signal the dispatcher already watches).
#pragma once

struct event;

namespace vent {

class Dispatcher;

namespace detail {

// Returns 0 to let the add proceed, or a negative errno that event_add()
// returns (nothing is registered then). Runs on the dispatcher's thread,
// before any allocation or kernel call of the add.
using AddCheck = int (*)(const Dispatcher &d, const struct event *evt) noexcept;

// Installs the process-wide check (one user today; a second one would turn
// this into a short list). Idempotent, thread-safe.
void set_add_check(AddCheck fn) noexcept;

// Called by Dispatcher::add() for events with an fd: one atomic load when
// no check is installed.
int run_add_check(const Dispatcher &d, const struct event *evt) noexcept;

} // namespace detail
} // namespace vent
