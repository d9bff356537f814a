// SPDX-License-Identifier: LGPL-2.1-or-later
// watch/capi.cpp - extern "C" definitions for include/vent/watch.h.
#include <cerrno>
#include <memory>

#include <vent/watch.h>

#include "base/capi.hpp"
#include "watch/watch.hpp"

using vent::WatchAdapter;
using vent::detail::guard;

namespace {

constexpr int kAllEvents =
	VENT_HANDLE_READABLE | VENT_HANDLE_WRITABLE | VENT_HANDLE_ERROR | VENT_HANDLE_HANGUP;

// Adds attach the adapter on first use; updates and removes on a dispatcher
// without one can only be for unknown ids.
//
// An add checks its arguments before it calls this (add_checks()), so
// that only an allocation failure or id exhaustion fails an add that
// created the adapter. Such an add abandons the adapter again; a
// concurrent add that found it in the registry meanwhile and was refused
// (-EBUSY) by it takes a fresh one: a valid add never fails because
// another thread's add failed.
template <class F> int with_adapter(struct dispatcher *dsp, bool create, F &&body) noexcept
{
	if (!dsp)
		return -EINVAL;
	for (;;) {
		bool created = false;
		std::shared_ptr<WatchAdapter> ad;
		// get() throws -ECHILD for a dispatcher inherited across fork().
		int rc = guard([&] {
			ad = WatchAdapter::get(dsp, create, &created);
			return ad ? 0 : -ENOENT;
		});
		if (rc < 0)
			return rc;
		rc = guard([&] { return body(*ad); });
		// An add that attached the adapter and then failed detaches it
		// again: a failed call leaves no fd and no event behind.
		if (rc < 0 && created)
			ad->abandon();
		// Terminates: the adapter found was abandoned by another add,
		// and one this call creates is abandoned by no one else.
		if (rc == -EBUSY && create && !created && ad->abandoned())
			continue;
		return rc;
	}
}

// The checks of an add that need the dispatcher but not the adapter, in
// the order get() would have made them: NULL, inherited across fork()
// (-ECHILD), then @body's. Returns 0 or -errno.
template <class F> int add_checks(struct dispatcher *dsp, F &&body) noexcept
{
	if (!dsp)
		return -EINVAL;
	int clock = dispatcher_get_clocksource(dsp);
	if (clock < 0)
		return clock;
	return body(clock);
}

} // namespace

extern "C" {

VENT_PUBLIC int vent_add_handle(struct dispatcher *dsp, int fd, int events, vent_handle_cb cb,
				void *opaque, vent_free_cb ff) noexcept
{
	if (!cb || fd < 0 || (events & ~kAllEvents))
		return -EINVAL;
	if (int rc = add_checks(dsp, [&](int) { return WatchAdapter::check_fd(fd); }); rc < 0)
		return rc;
	return with_adapter(dsp, true, [&](WatchAdapter &ad) {
		return ad.add_handle(fd, events, cb, opaque, ff);
	});
}

VENT_PUBLIC int vent_update_handle(struct dispatcher *dsp, int watch, int events) noexcept
{
	if (events & ~kAllEvents)
		return -EINVAL;
	return with_adapter(dsp, false,
			    [&](WatchAdapter &ad) { return ad.update_handle(watch, events); });
}

VENT_PUBLIC int vent_remove_handle(struct dispatcher *dsp, int watch) noexcept
{
	return with_adapter(dsp, false, [&](WatchAdapter &ad) { return ad.remove_handle(watch); });
}

VENT_PUBLIC int vent_add_timeout(struct dispatcher *dsp, int interval_ms, vent_timeout_cb cb,
				 void *opaque, vent_free_cb ff) noexcept
{
	if (!cb || interval_ms < -1)
		return -EINVAL;
	int64_t due = 0;
	if (int rc = add_checks(dsp, [&](int clock) {
		    return WatchAdapter::due_in(clock, interval_ms, due);
	    });
	    rc < 0)
		return rc;
	return with_adapter(dsp, true, [&](WatchAdapter &ad) {
		return ad.add_timeout(interval_ms, due, cb, opaque, ff);
	});
}

VENT_PUBLIC int vent_update_timeout(struct dispatcher *dsp, int timer, int interval_ms) noexcept
{
	if (interval_ms < -1)
		return -EINVAL;
	return with_adapter(dsp, false,
			    [&](WatchAdapter &ad) { return ad.update_timeout(timer, interval_ms); });
}

VENT_PUBLIC int vent_remove_timeout(struct dispatcher *dsp, int timer) noexcept
{
	return with_adapter(dsp, false, [&](WatchAdapter &ad) { return ad.remove_timeout(timer); });
}

} // extern "C"
