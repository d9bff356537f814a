// SPDX-License-Identifier: LGPL-2.1-or-later
// ffi/capi.cpp - extern "C" definitions for include/vent/ffi.h.
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include <vent/event.h>
#include <vent/ffi.h>

#include "base/capi.hpp"
#include "base/time.hpp"

namespace {

/*
 * The heap object behind vent_event_new(). The event sits at offset 0, so a
 * struct event pointer converts back to the wrapper, and a binding that only
 * knows "struct event *" never sees the extra word.
 */
struct FfiEvent {
	struct event evt;
	void *userdata;
};
static_assert(offsetof(FfiEvent, evt) == 0, "the event must be at offset 0");

inline FfiEvent *to_wrapper(struct event *evt) noexcept
{
	return reinterpret_cast<FfiEvent *>(evt);
}

inline const FfiEvent *to_wrapper(const struct event *evt) noexcept
{
	return reinterpret_cast<const FfiEvent *>(evt);
}

// The default cleanup: unlike cleanup_event_on_heap() it leaves the fd
// alone, because in a binding the fd usually belongs to a language-level
// file object that closes it itself.
void free_wrapper(struct event *evt) noexcept
{
	if (evt)
		std::free(to_wrapper(evt));
}

} // namespace

extern "C" {

VENT_PUBLIC struct event *vent_event_new(int fd, uint32_t events, cb_fn cb,
					 void *userdata) noexcept
{
	if (!cb || fd < -1) {
		errno = EINVAL;
		return nullptr;
	}
	// calloc, not new: the wrapper is plain data, and the cleanup frees it
	// with free() like minivent's heap events. All fields start at zero
	// (dsp NULL, no timeout, reason 0).
	auto *w = static_cast<FfiEvent *>(std::calloc(1, sizeof(FfiEvent)));
	if (!w) {
		errno = ENOMEM;
		return nullptr;
	}
	w->evt.fd = fd;
	w->evt.ep.events = events;
	w->evt.callback = cb;
	w->evt.cleanup = free_wrapper;
	w->userdata = userdata;
	return &w->evt;
}

VENT_PUBLIC int vent_event_free(struct event *evt) noexcept
{
	if (!evt)
		return 0;
	if (evt->dsp) {
		// In a forked child the inherited dispatcher still lists the
		// event and its free_dispatcher() will run the cleanup: freeing
		// here would make that a double free.
		int rc = event_remove(evt);
		if (rc < 0 && rc != -EINVAL)
			return rc;
	}
	std::free(to_wrapper(evt));
	return 0;
}

VENT_PUBLIC void *vent_event_userdata(const struct event *evt) noexcept
{
	return evt ? to_wrapper(evt)->userdata : nullptr;
}

VENT_PUBLIC int vent_event_fd(const struct event *evt) noexcept
{
	return evt ? evt->fd : -EINVAL;
}

VENT_PUBLIC int vent_event_reason(const struct event *evt) noexcept
{
	return evt ? evt->reason : -EINVAL;
}

VENT_PUBLIC int vent_event_set_events(struct event *evt, uint32_t events) noexcept
{
	if (!evt)
		return -EINVAL;
	uint32_t old = evt->ep.events;
	evt->ep.events = events;
	if (!evt->dsp)
		return 0;
	int rc = event_modify(evt);
	// event_modify() keeps the previous registration on failure; keep the
	// struct saying the same thing.
	if (rc < 0)
		evt->ep.events = old;
	return rc;
}

VENT_PUBLIC int vent_event_set_timeout_ms(struct event *evt, int64_t ms) noexcept
{
	if (!evt || ms < 0)
		return -EINVAL;
	struct timespec ts = vent::detail::ms_to_timespec(ms);
	if (!evt->dsp) {
		// Not added: event_add() reads tmo (relative, TMO_ABS cleared).
		evt->tmo = ts;
		evt->flags = static_cast<unsigned short>(evt->flags & ~TMO_ABS);
		return 0;
	}
	// event_mod_timeout() reads TMO_ABS from the flags and remembers it;
	// restore it if the call fails so the event is unchanged.
	unsigned short old_flags = evt->flags;
	evt->flags = static_cast<unsigned short>(evt->flags & ~TMO_ABS);
	int rc = event_mod_timeout(evt, &ts);
	if (rc < 0)
		evt->flags = old_flags;
	return rc;
}

VENT_PUBLIC size_t vent_event_sizeof(void) noexcept
{
	return sizeof(struct event);
}

VENT_PUBLIC const char *vent_strerror(int err) noexcept
{
	if (err == 0)
		return "Success";
	if (err == INT_MIN)
		return "Unknown error";
	// strerrordesc_np() returns the untranslated text from a static
	// table: unlike strerror() it touches no locale and no buffer.
	const char *s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "Unknown error";
}

} // extern "C"
