// SPDX-License-Identifier: LGPL-2.1-or-later
// core/event_helpers.cpp - the helpers of include/vent/event.h that are not
// dispatcher calls: the reason strings, the cleanup helpers, and the
// callbacks minivent's initialiser macros expand to.
#include <cstdlib>

#include <unistd.h>

#include <vent/event.h>

#include "base/capi.hpp"
#include "core/capi.hpp"
#include "core/reason_str.hpp"

extern "C" {

// A data export (vent_reason_str, see event.h): the attribute syntax does not
// reach an array of pointers reliably, the pragma does.
#pragma GCC visibility push(default)
const char *const reason_str[__MAX_CALLBACK_REASON] = {
	vent::detail::reason_names[REASON_EVENT_OCCURED],
	vent::detail::reason_names[REASON_TIMEOUT],
};
#pragma GCC visibility pop

VENT_PUBLIC void cleanup_event_on_stack(struct event *evt) noexcept
{
	if (evt && evt->fd != -1)
		close(evt->fd);
}

VENT_PUBLIC void cleanup_event_on_heap(struct event *evt) noexcept
{
	if (!evt)
		return;
	cleanup_event_on_stack(evt);
	free(evt);
}

VENT_PUBLIC int _call_timer_cb(struct event *evt, uint32_t events) noexcept
{
	(void)events;
	if (!evt)
		return -EINVAL;
	// The event is the first member of struct timer_event.
	auto *tim = reinterpret_cast<struct timer_event *>(evt);
	if (tim->timer_fn)
		tim->timer_fn(tim->timer_arg);
	return EVENTCB_CLEANUP;
}

VENT_PUBLIC void _event_invoke_callback(struct event *evt, unsigned short reason,
					unsigned int events, bool reset_reason) noexcept
{
	if (!evt || !evt->callback)
		return;
	// Never re-entrant: the callback of @evt is running further up.
	if (evt->flags & vent::Dispatcher::kRunningFlag)
		return;
	bool alive;
	if (evt->dsp && !evt->dsp->impl.forked())
		alive = evt->dsp->impl.invoke_compat(evt, reason, events);
	else
		alive = vent::Dispatcher::invoke_unregistered(evt, reason, events);
	if (alive && reset_reason)
		evt->reason = REASON_EVENT_OCCURED;
}

} // extern "C"
