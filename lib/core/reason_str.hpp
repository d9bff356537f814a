// SPDX-License-Identifier: LGPL-2.1-or-later
// core/reason_str.hpp - the strings of reason_str (event.h), shared by
// libvent's vent_reason_str and libminivent's reason_str (compat/).
#pragma once

namespace vent::detail {

// minivent's spelling ("occured") is part of the compatible API.
inline constexpr const char *reason_names[] = {
	"event occured",
	"timeout",
};

} // namespace vent::detail
