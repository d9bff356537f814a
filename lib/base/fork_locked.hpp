// SPDX-License-Identifier: LGPL-2.1-or-later
// fork_locked.hpp - a process-wide registry whose mutex is held across fork().
#pragma once

#include <mutex>
#include <new>

#include <pthread.h>

namespace vent::detail {

/*
 * The base of a process-wide registry (CRTP: class R : public
 * ForkLocked<R>): one instance of @Derived, created on first use and never
 * destroyed, and the mutex mu_ that guards it. A thread still running at
 * exit, or a static destructor, may use it after main() returned.
 *
 * Fork: pthread_atfork() handlers take mu_ before fork() and release it
 * after, in the parent and in the child, so a child never inherits mu_
 * held by a thread that does not exist there, nor the registry half
 * changed; it can use the registry at once.
 *
 * The instance lives in static storage, not on the heap: instance() is
 * noexcept and allocates nothing, so it may be reached from noexcept paths
 * before anything else of the module exists. @Derived's default
 * constructor must not throw (or the process terminates); it needs to be
 * reachable from ForkLocked<Derived> (public, or a friend).
 */
template <class Derived> class ForkLocked {
public:
	static Derived &instance() noexcept
	{
		alignas(Derived) static unsigned char storage[sizeof(Derived)];
		static Derived *reg = ::new (storage) Derived;
		return *reg;
	}

	ForkLocked(const ForkLocked &) = delete;
	ForkLocked &operator=(const ForkLocked &) = delete;

	std::mutex mu_;

protected:
	ForkLocked() noexcept
	{
		pthread_atfork([] { instance().mu_.lock(); }, [] { instance().mu_.unlock(); },
			       [] { instance().mu_.unlock(); });
	}
	~ForkLocked() = default;
};

} // namespace vent::detail
