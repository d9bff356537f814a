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
template <class F> int with_adapter(struct dispatcher *dsp, bool create, F &&body) noexcept
{
	if (!dsp)
		return -EINVAL;
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
	return rc;
}

} // namespace

extern "C" {

VENT_PUBLIC int vent_add_handle(struct dispatcher *dsp, int fd, int events, vent_handle_cb cb,
				void *opaque, vent_free_cb ff) noexcept
{
	if (!cb || fd < 0 || (events & ~kAllEvents))
		return -EINVAL;
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
	return with_adapter(dsp, true, [&](WatchAdapter &ad) {
		return ad.add_timeout(interval_ms, cb, opaque, ff);
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
