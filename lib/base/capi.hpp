// SPDX-License-Identifier: LGPL-2.1-or-later
// capi.hpp - helpers shared by the extern "C" facades (lib/*/capi.cpp).
#pragma once

#include <cerrno>
#include <new>
#include <system_error>

#define VENT_PUBLIC __attribute__((visibility("default")))

namespace vent::detail {

/*
 * The single translation point from C++ failure to C error code: every
 * facade function runs its body through guard(), so no exception ever
 * reaches a C frame. Internals throw only std::bad_alloc and
 * std::system_error.
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

// Throws std::system_error carrying the current errno.
[[noreturn]] inline void throw_errno()
{
	throw std::system_error(errno, std::generic_category());
}

} // namespace vent::detail
