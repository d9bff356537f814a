// SPDX-License-Identifier: GPL-2.0-or-later
// failalloc-new.cpp - the operator new family for failalloc.so, for builds
// whose sanitizer runtime replaces operator new with an allocator that does
// not go through malloc (AddressSanitizer). Each wrapper counts the call
// like failalloc.c's malloc does, throws std::bad_alloc (or returns NULL for
// the nothrow forms) when it is the one to fail, and otherwise forwards to
// the next definition (the runtime's), so the sanitizer keeps tracking
// new/delete pairs. operator delete is not wrapped.
#include <cstddef>
#include <new>

#include <dlfcn.h>

extern "C" bool failalloc__should_fail(const char *what);

#define EXPORT __attribute__((visibility("default")))

namespace {

template <class F> F next(const char *name)
{
	return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

using New = void *(*)(std::size_t);
using NewNothrow = void *(*)(std::size_t, const std::nothrow_t &);
using NewAligned = void *(*)(std::size_t, std::align_val_t);
using NewAlignedNothrow = void *(*)(std::size_t, std::align_val_t, const std::nothrow_t &);

} // namespace

EXPORT void *operator new(std::size_t n)
{
	static New f = next<New>("_Znwm");
	if (failalloc__should_fail("operator new"))
		throw std::bad_alloc();
	return f(n);
}

EXPORT void *operator new[](std::size_t n)
{
	static New f = next<New>("_Znam");
	if (failalloc__should_fail("operator new[]"))
		throw std::bad_alloc();
	return f(n);
}

EXPORT void *operator new(std::size_t n, const std::nothrow_t &t) noexcept
{
	static NewNothrow f = next<NewNothrow>("_ZnwmRKSt9nothrow_t");
	if (failalloc__should_fail("operator new(nothrow)"))
		return nullptr;
	return f(n, t);
}

EXPORT void *operator new[](std::size_t n, const std::nothrow_t &t) noexcept
{
	static NewNothrow f = next<NewNothrow>("_ZnamRKSt9nothrow_t");
	if (failalloc__should_fail("operator new[](nothrow)"))
		return nullptr;
	return f(n, t);
}

EXPORT void *operator new(std::size_t n, std::align_val_t a)
{
	static NewAligned f = next<NewAligned>("_ZnwmSt11align_val_t");
	if (failalloc__should_fail("operator new(align)"))
		throw std::bad_alloc();
	return f(n, a);
}

EXPORT void *operator new[](std::size_t n, std::align_val_t a)
{
	static NewAligned f = next<NewAligned>("_ZnamSt11align_val_t");
	if (failalloc__should_fail("operator new[](align)"))
		throw std::bad_alloc();
	return f(n, a);
}

EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &t) noexcept
{
	static NewAlignedNothrow f = next<NewAlignedNothrow>("_ZnwmSt11align_val_tRKSt9nothrow_t");
	if (failalloc__should_fail("operator new(align, nothrow)"))
		return nullptr;
	return f(n, a, t);
}

EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &t) noexcept
{
	static NewAlignedNothrow f = next<NewAlignedNothrow>("_ZnamSt11align_val_tRKSt9nothrow_t");
	if (failalloc__should_fail("operator new[](align, nothrow)"))
		return nullptr;
	return f(n, a, t);
}
