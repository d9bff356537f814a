// SPDX-License-Identifier: LGPL-2.1-or-later
// core/capi.cpp - extern "C" definitions for include/vent/event.h.
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <system_error>

#include <unistd.h>

#include <vent/event.h>

#include "base/capi.hpp"
#include "core/dispatcher.hpp"
#include "core/reason_str.hpp"

using vent::detail::guard;

// The C tag holds the C++ object by value.
struct dispatcher {
	explicit dispatcher(int clock) : impl(clock) {}
	vent::Dispatcher impl;
};

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

inline vent::Dispatcher *to_impl(const struct dispatcher *d) noexcept
{
	return const_cast<vent::Dispatcher *>(&d->impl);
}

void delete_dispatcher(vent::Dispatcher *impl) noexcept
{
	delete impl->tag();
}

// The checks every call on an event starts with: the event must be added
// (evt->dsp set by event_add) and the process must own the dispatcher.
template <class F> int with_event(struct event *evt, F &&body) noexcept
{
	if (!evt || !evt->dsp)
		return -EINVAL;
	vent::Dispatcher *d = to_impl(evt->dsp);
	if (d->forked())
		return -ECHILD;
	return guard([&] { return body(d); });
}

template <class F> int with_dispatcher(const struct dispatcher *dsp, F &&body) noexcept
{
	if (!dsp)
		return -EINVAL;
	vent::Dispatcher *d = to_impl(dsp);
	if (d->forked())
		return -ECHILD;
	return guard([&] { return body(d); });
}

} // namespace

extern "C" {

// A data export (vent_reason_str, see event.h): the attribute syntax does not
// reach an array of pointers reliably, the pragma does.
#pragma GCC visibility push(default)
const char *const reason_str[__MAX_CALLBACK_REASON] = {
	vent::reason_names[REASON_EVENT_OCCURED],
	vent::reason_names[REASON_TIMEOUT],
};
#pragma GCC visibility pop

VENT_PUBLIC struct dispatcher *new_dispatcher(int clocksrc) noexcept
{
	try {
		auto *d = new struct dispatcher(clocksrc);
		d->impl.set_tag(d, delete_dispatcher);
		return d;
	} catch (const std::system_error &e) {
		errno = e.code().value();
	} catch (const std::bad_alloc &) {
		errno = ENOMEM;
	} catch (...) {
		errno = EIO;
	}
	return nullptr;
}

VENT_PUBLIC void free_dispatcher(struct dispatcher *dsp) noexcept
{
	if (dsp)
		dsp->impl.destroy();
}

VENT_PUBLIC int cleanup_dispatcher(struct dispatcher *dsp) noexcept
{
	return with_dispatcher(dsp, [](vent::Dispatcher *d) { return d->cleanup(); });
}

VENT_PUBLIC int dispatcher_get_efd(const struct dispatcher *dsp) noexcept
{
	return with_dispatcher(dsp, [](vent::Dispatcher *d) { return d->efd(); });
}

VENT_PUBLIC int dispatcher_get_clocksource(const struct dispatcher *dsp) noexcept
{
	return with_dispatcher(dsp, [](vent::Dispatcher *d) { return d->clock(); });
}

VENT_PUBLIC int event_add(struct dispatcher *dsp, struct event *evt) noexcept
{
	if (!evt || !evt->callback)
		return -EINVAL;
	return with_dispatcher(dsp, [&](vent::Dispatcher *d) {
		// dsp is NULL for an event never added (the initialiser macros
		// zero it) and cleared on removal. Anything else means the event
		// is registered here or with another dispatcher.
		if (evt->dsp && (evt->dsp != dsp || d->owns(evt)))
			return -EEXIST;
		int rc = d->add(evt);
		if (rc == 0)
			evt->dsp = dsp;
		return rc;
	});
}

VENT_PUBLIC int event_remove(struct event *evt) noexcept
{
	return with_event(evt, [&](vent::Dispatcher *d) { return d->remove(evt); });
}

VENT_PUBLIC int event_modify(struct event *evt) noexcept
{
	return with_event(evt, [&](vent::Dispatcher *d) { return d->modify(evt); });
}

VENT_PUBLIC int event_mod_timeout(struct event *evt, const struct timespec *tmo) noexcept
{
	if (!tmo)
		return -EINVAL;
	return with_event(evt, [&](vent::Dispatcher *d) { return d->mod_timeout(evt, *tmo); });
}

VENT_PUBLIC int event_wait(const struct dispatcher *dsp, const sigset_t *sigmask) noexcept
{
	return with_dispatcher(dsp, [&](vent::Dispatcher *d) {
		int rc = d->wait(-1, sigmask);
		return rc < 0 ? rc : 0;
	});
}

VENT_PUBLIC int event_loop(const struct dispatcher *dsp, const sigset_t *sigmask,
			   int (*err_handler)(int err)) noexcept
{
	return with_dispatcher(dsp, [&](vent::Dispatcher *d) { return d->loop(sigmask, err_handler); });
}

VENT_PUBLIC int vent_wait(struct dispatcher *dsp, int timeout_ms, const sigset_t *sigmask) noexcept
{
	if (timeout_ms < -1)
		return -EINVAL;
	return with_dispatcher(dsp, [&](vent::Dispatcher *d) { return d->wait(timeout_ms, sigmask); });
}

// Not through guard(): these two must stay async-signal-safe, and neither
// can throw.
VENT_PUBLIC int vent_loop_stop(struct dispatcher *dsp) noexcept
{
	if (!dsp)
		return -EINVAL;
	if (dsp->impl.forked())
		return -ECHILD;
	return dsp->impl.stop();
}

VENT_PUBLIC int vent_dispatcher_wake(struct dispatcher *dsp) noexcept
{
	if (!dsp)
		return -EINVAL;
	if (dsp->impl.forked())
		return -ECHILD;
	return dsp->impl.wake();
}

} // extern "C"

// Internal (core/loop_task.hpp): not exported, so not VENT_PUBLIC.
int vent::post_loop_task(struct dispatcher *dsp, LoopTask *task) noexcept
{
	if (!dsp || !task || !task->run)
		return -EINVAL;
	if (dsp->impl.forked())
		return -ECHILD;
	return dsp->impl.post(task);
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
