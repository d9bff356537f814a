// SPDX-License-Identifier: LGPL-2.1-or-later
// timeout/capi.cpp - extern "C" definitions for include/vent/timeout.h.
#include <cerrno>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include <vent/event.h>
#include <vent/timeout.h>

#include "base/capi.hpp"
#include "timeout/timeout.hpp"

namespace {

// The C handle is the list's struct event, at offset 0 of this tag.
struct TimeoutTag {
	struct event ev;
	vent::TimeoutList *impl;
};
static_assert(std::is_standard_layout_v<TimeoutTag> && offsetof(TimeoutTag, ev) == 0);

inline TimeoutTag *tag_of(const struct event *ev) noexcept
{
	return reinterpret_cast<TimeoutTag *>(const_cast<struct event *>(ev));
}

void delete_tag(TimeoutTag *t) noexcept
{
	delete t->impl;
	delete t;
}

// Cleanup of a list freed in a forked child while an inherited dispatcher
// still holds its event: released when that dispatcher is.
void release_with_dispatcher(struct event *ev) noexcept
{
	delete_tag(tag_of(ev));
}

// The checks every call on a list starts with (with_object() on its impl).
template <class F> int with_list(const struct event *tmo_event, F &&body) noexcept
{
	if (!tmo_event)
		return -EINVAL;
	return vent::detail::with_object(tag_of(tmo_event)->impl, std::forward<F>(body));
}

// An event the list can call: not the list itself, with a callback.
bool valid_entry(const struct event *tmo_event, const struct event *evt) noexcept
{
	return evt && evt != tmo_event && evt->callback;
}

} // namespace

extern "C" {

VENT_PUBLIC struct event *new_timeout_event(int source) noexcept
{
	TimeoutTag *t = vent::detail::create([&] {
		auto impl = std::make_unique<vent::TimeoutList>(source);
		auto *tag = new TimeoutTag{};
		tag->impl = impl.release();
		return tag;
	});
	if (!t)
		return nullptr;
	t->ev.fd = t->impl->fd();
	t->ev.ep.events = EPOLLIN;
	t->ev.callback = timeout_event;
	return &t->ev;
}

VENT_PUBLIC void free_timeout_event(struct event *tmo_event) noexcept
{
	if (!tmo_event)
		return;
	TimeoutTag *t = tag_of(tmo_event);
	if (tmo_event->dsp && event_remove(tmo_event) == -ECHILD) {
		// A forked child cannot remove it from the inherited
		// dispatcher, which would then clean up freed memory: the
		// dispatcher's teardown (free_dispatcher()) releases it.
		tmo_event->cleanup = release_with_dispatcher;
		return;
	}
	if (t->impl->release())
		delete_tag(t);
}

VENT_PUBLIC int timeout_add(struct event *tmo_event, struct event *event) noexcept
{
	return with_list(tmo_event, [&](vent::TimeoutList &l) {
		if (!valid_entry(tmo_event, event))
			return -EINVAL;
		return l.add(event);
	});
}

VENT_PUBLIC int timeout_modify(struct event *tmo_event, struct event *event,
			       struct timespec *tmo) noexcept
{
	return with_list(tmo_event, [&](vent::TimeoutList &l) {
		if (!valid_entry(tmo_event, event) || !tmo)
			return -EINVAL;
		return l.modify(event, *tmo);
	});
}

VENT_PUBLIC int timeout_cancel(struct event *tmo_event, struct event *event) noexcept
{
	return with_list(tmo_event, [&](vent::TimeoutList &l) {
		if (!event)
			return -EINVAL;
		return l.cancel(event);
	});
}

VENT_PUBLIC int timeout_reset(struct event *tmo_event) noexcept
{
	return with_list(tmo_event, [&](vent::TimeoutList &l) {
		l.reset();
		return 0;
	});
}

VENT_PUBLIC int timeout_event(struct event *tmo_event, uint32_t events) noexcept
{
	if (!tmo_event)
		return EVENTCB_CONTINUE;
	TimeoutTag *t = tag_of(tmo_event);
	if (t->impl->forked())
		return EVENTCB_CONTINUE;
	if (t->impl->run(tmo_event, events))
		delete_tag(t);
	return EVENTCB_CONTINUE;
}

VENT_PUBLIC int timeout_get_clocksource(const struct event *tmo_event) noexcept
{
	return with_list(tmo_event, [](vent::TimeoutList &l) { return l.clock(); });
}

} // extern "C"
