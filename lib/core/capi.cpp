// SPDX-License-Identifier: LGPL-2.1-or-later
// core/capi.cpp - extern "C" definitions for include/vent/event.h.
#include <cerrno>
#include <cstddef>

#include <vent/event.h>

#include "base/capi.hpp"
#include "core/capi.hpp"

using vent::Dispatcher;
using vent::detail::create;
using vent::detail::to_impl;
using vent::detail::with_object;
using vent::detail::with_object_signal_safe;

// minivent's layout, byte for byte: binary compatibility depends on it.
static_assert(sizeof(struct epoll_event) == 12, "packed epoll_event expected on x86-64");
static_assert(offsetof(struct event, ep) == 0);
static_assert(offsetof(struct event, fd) == 12);
static_assert(offsetof(struct event, reason) == 16);
static_assert(offsetof(struct event, flags) == 18);
static_assert(offsetof(struct event, dsp) == 24);
static_assert(offsetof(struct event, tmo) == 32);
static_assert(offsetof(struct event, callback) == 48);
static_assert(offsetof(struct event, cleanup) == 56);
static_assert(sizeof(struct event) == 64);

namespace {

void delete_dispatcher(Dispatcher *impl) noexcept
{
	delete impl->tag();
}

// A call on an event: it must be added (evt->dsp set by event_add), then
// the checks of with_object() on its dispatcher.
template <class F> int with_event(struct event *evt, F &&body) noexcept
{
	if (!evt || !evt->dsp)
		return -EINVAL;
	return with_object(to_impl(evt->dsp), body);
}

} // namespace

extern "C" {

VENT_PUBLIC struct dispatcher *new_dispatcher(int clocksrc) noexcept
{
	return create([&] {
		auto *d = new struct dispatcher(clocksrc);
		d->impl.set_tag(d, delete_dispatcher);
		return d;
	});
}

VENT_PUBLIC void free_dispatcher(struct dispatcher *dsp) noexcept
{
	if (dsp)
		dsp->impl.destroy();
}

VENT_PUBLIC int cleanup_dispatcher(struct dispatcher *dsp) noexcept
{
	return with_object(to_impl(dsp), [](Dispatcher &d) { return d.cleanup(); });
}

VENT_PUBLIC int dispatcher_get_efd(const struct dispatcher *dsp) noexcept
{
	return with_object(to_impl(dsp), [](Dispatcher &d) { return d.efd(); });
}

VENT_PUBLIC int dispatcher_get_clocksource(const struct dispatcher *dsp) noexcept
{
	return with_object(to_impl(dsp), [](Dispatcher &d) { return d.clock(); });
}

VENT_PUBLIC int event_add(struct dispatcher *dsp, struct event *evt) noexcept
{
	if (!evt || !evt->callback)
		return -EINVAL;
	return with_object(to_impl(dsp), [&](Dispatcher &d) {
		// dsp is NULL for an event never added (the initialiser macros
		// zero it) and cleared on removal. Anything else means the event
		// is registered here or with another dispatcher.
		if (evt->dsp && (evt->dsp != dsp || d.owns(evt)))
			return -EEXIST;
		int rc = d.add(evt);
		if (rc == 0)
			evt->dsp = dsp;
		return rc;
	});
}

VENT_PUBLIC int event_remove(struct event *evt) noexcept
{
	return with_event(evt, [&](Dispatcher &d) { return d.remove(evt); });
}

VENT_PUBLIC int event_modify(struct event *evt) noexcept
{
	return with_event(evt, [&](Dispatcher &d) { return d.modify(evt); });
}

VENT_PUBLIC int event_mod_timeout(struct event *evt, const struct timespec *tmo) noexcept
{
	if (!tmo)
		return -EINVAL;
	return with_event(evt, [&](Dispatcher &d) { return d.mod_timeout(evt, *tmo); });
}

VENT_PUBLIC int event_wait(const struct dispatcher *dsp, const sigset_t *sigmask) noexcept
{
	return with_object(to_impl(dsp), [&](Dispatcher &d) {
		int rc = d.wait(-1, sigmask);
		return rc < 0 ? rc : 0;
	});
}

VENT_PUBLIC int event_loop(const struct dispatcher *dsp, const sigset_t *sigmask,
			   int (*err_handler)(int err)) noexcept
{
	return with_object(to_impl(dsp),
			   [&](Dispatcher &d) { return d.loop(sigmask, err_handler); });
}

VENT_PUBLIC int vent_wait(struct dispatcher *dsp, int timeout_ms, const sigset_t *sigmask) noexcept
{
	if (timeout_ms < -1)
		return -EINVAL;
	return with_object(to_impl(dsp),
			   [&](Dispatcher &d) { return d.wait(timeout_ms, sigmask); });
}

// These two must stay async-signal-safe.
VENT_PUBLIC int vent_loop_stop(struct dispatcher *dsp) noexcept
{
	return with_object_signal_safe(to_impl(dsp), [](Dispatcher &d) noexcept { return d.stop(); });
}

VENT_PUBLIC int vent_dispatcher_wake(struct dispatcher *dsp) noexcept
{
	return with_object_signal_safe(to_impl(dsp), [](Dispatcher &d) noexcept { return d.wake(); });
}

} // extern "C"

// Internal (core/loop_task.hpp): not exported, so not VENT_PUBLIC.
int vent::post_loop_task(struct dispatcher *dsp, LoopTask *task) noexcept
{
	if (!task || !task->run)
		return -EINVAL;
	return with_object(to_impl(dsp), [&](Dispatcher &d) { return d.post(task); });
}

bool vent::loop_closing(const struct dispatcher *dsp) noexcept
{
	return dsp->impl.closing();
}

extern "C" {

VENT_PUBLIC const char *vent_version(void) noexcept
{
	return VENT_VERSION_STRING;
}

} // extern "C"
