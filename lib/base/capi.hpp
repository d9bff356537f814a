// SPDX-License-Identifier: LGPL-2.1-or-later
// capi.hpp - the helpers every extern "C" facade (lib/*/capi.cpp) is written with.
#pragma once

#include <cerrno>
#include <new>
#include <system_error>

#define VENT_PUBLIC __attribute__((visibility("default")))

namespace vent::detail {

/*
 * The single translation point from C++ failure to C error code: every
 * facade function runs its body through guard() (or one of the helpers
 * below, which do), so no exception ever reaches a C frame. Internals throw
 * only std::bad_alloc and std::system_error.
 */
template <class F> inline int guard(F &&body) noexcept
{
	try {
		return body();
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	} catch (const std::system_error &e) {
		return e.code().value() > 0 ? -e.code().value() : -EIO;
	} catch (...) {
		return -EIO;
	}
}

/*
 * The start of every call on a library object @obj (anything with
 * forked()): NULL is -EINVAL, an object inherited across fork() is -ECHILD
 * and is not touched, then @body(*obj) runs through guard().
 */
template <class T, class F> inline int with_object(T *obj, F &&body) noexcept
{
	if (!obj)
		return -EINVAL;
	if (obj->forked())
		return -ECHILD;
	return guard([&] { return body(*obj); });
}

/*
 * with_object() for the calls that must stay async-signal-safe (a wake or
 * a stop from a signal handler): the same checks, and @body is noexcept, so
 * there is nothing for guard() to catch.
 */
template <class T, class F> inline int with_object_signal_safe(T *obj, F &&body) noexcept
{
	static_assert(noexcept(body(*obj)), "a signal-safe body cannot throw");
	if (!obj)
		return -EINVAL;
	if (obj->forked())
		return -ECHILD;
	return body(*obj);
}

/*
 * The constructors of the C API (new_dispatcher(), vent_aio_new(), ...):
 * returns what @make returns, or nullptr with errno set to the error
 * guard() would have returned.
 */
template <class F> inline auto create(F &&make) noexcept -> decltype(make())
{
	decltype(make()) made = nullptr;
	int rc = guard([&] {
		made = make();
		return 0;
	});
	if (rc < 0) {
		errno = -rc;
		return nullptr;
	}
	return made;
}

// Throws std::system_error carrying the current errno.
[[noreturn]] inline void throw_errno()
{
	throw std::system_error(errno, std::generic_category());
}

} // namespace vent::detail
