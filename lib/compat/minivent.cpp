// SPDX-License-Identifier: LGPL-2.1-or-later
// compat/minivent.cpp - the one object libminivent.so adds to vent's.
//
// libminivent.so exports minivent's un-prefixed names for binaries built
// against minivent. The functions are linker aliases of the vent_ ones
// (--defsym, lib/meson.build); data cannot be: an alias made by the linker
// has no size, and a binary's copy relocation of a sizeless reason_str
// copies nothing. So reason_str is an object of its own here, with the same
// strings as vent_reason_str (it is const: two copies cannot diverge).
// Never part of libvent.so or libvent.a.
#include <vent/event.h>

#include "core/reason_str.hpp"

extern "C" {

// event.h declares the C name reason_str as vent_reason_str: this object
// takes minivent's assembler name explicitly.
extern const char *const minivent_reason_str[__MAX_CALLBACK_REASON] __asm__("reason_str");

#pragma GCC visibility push(default)
const char *const minivent_reason_str[__MAX_CALLBACK_REASON] = {
	vent::detail::reason_names[REASON_EVENT_OCCURED],
	vent::detail::reason_names[REASON_TIMEOUT],
};
#pragma GCC visibility pop

} // extern "C"
