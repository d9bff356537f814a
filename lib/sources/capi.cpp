// SPDX-License-Identifier: LGPL-2.1-or-later
// sources/capi.cpp - extern "C" definitions for include/vent/sources.h.
#include <cerrno>

#include <vent/sources.h>

#include "base/capi.hpp"
#include "sources/sources.hpp"

using vent::detail::guard;

namespace {

// What every init does on success: a fresh event, as the initialiser macros
// of event.h would make it, around the fd the helper created.
void fill_event(struct event *evt, int fd, cb_fn cb, cleanup_fn cln) noexcept
{
	*evt = {};
	evt->fd = fd;
	evt->ep.events = EPOLLIN;
	evt->callback = cb;
	evt->cleanup = cln;
}

} // namespace

extern "C" {

VENT_PUBLIC int vent_signal_init(struct event *evt, const sigset_t *signals, cb_fn cb) noexcept
{
	if (!evt || !signals || !cb)
		return -EINVAL;
	return guard([&] {
		int fd = vent::signal_open(*signals);
		if (fd < 0)
			return fd;
		fill_event(evt, fd, cb, vent_signal_release);
		return 0;
	});
}

VENT_PUBLIC int vent_signal_read(struct event *evt, struct signalfd_siginfo *si, size_t n) noexcept
{
	if (!evt || !si)
		return -EINVAL;
	if (n == 0)
		return 0;
	return vent::signal_read(evt->fd, si, n);
}

VENT_PUBLIC void vent_signal_release(struct event *evt) noexcept
{
	if (!evt || evt->fd < 0 || !vent::signal_is_source(evt->fd))
		return;
	// Released while still added: take it out first, so the dispatcher
	// never holds a closed fd. (In a forked child this returns -ECHILD
	// and touches nothing, which is right there.)
	if (evt->dsp)
		event_remove(evt);
	if (vent::signal_close(evt->fd))
		evt->fd = -1;
}

VENT_PUBLIC int vent_signal_saved_mask(const struct event *evt, sigset_t *mask) noexcept
{
	if (!evt || !mask)
		return -EINVAL;
	return vent::signal_saved_mask(evt->fd, *mask);
}

VENT_PUBLIC int vent_pid_init(struct event *evt, pid_t pid, cb_fn cb) noexcept
{
	if (!evt || !cb || pid <= 0)
		return -EINVAL;
	int fd = vent::pid_open(pid);
	if (fd < 0)
		return fd;
	fill_event(evt, fd, cb, cleanup_event_on_stack);
	return 0;
}

VENT_PUBLIC int vent_pid_init_fd(struct event *evt, int pidfd, cb_fn cb) noexcept
{
	if (!evt || !cb)
		return -EINVAL;
	if (pidfd < 0)
		return -EBADF;
	if (int rc = vent::pid_check_fd(pidfd); rc < 0)
		return rc;
	fill_event(evt, pidfd, cb, cleanup_event_on_stack);
	return 0;
}

VENT_PUBLIC int vent_pid_wait(struct event *evt, siginfo_t *info) noexcept
{
	if (!evt)
		return -EINVAL;
	if (evt->fd < 0)
		return -EBADF;
	return vent::pid_wait(evt->fd, info);
}

VENT_PUBLIC int vent_wakeup_init(struct event *evt, cb_fn cb) noexcept
{
	if (!evt || !cb)
		return -EINVAL;
	int fd = vent::wakeup_open();
	if (fd < 0)
		return fd;
	fill_event(evt, fd, cb, cleanup_event_on_stack);
	return 0;
}

// Not through guard(): async-signal-safe, and nothing here can throw.
VENT_PUBLIC int vent_wakeup_signal(const struct event *evt, uint64_t n) noexcept
{
	if (!evt)
		return -EINVAL;
	if (evt->fd < 0)
		return -EBADF;
	return vent::wakeup_signal(evt->fd, n);
}

VENT_PUBLIC uint64_t vent_wakeup_drain(struct event *evt) noexcept
{
	if (!evt || evt->fd < 0)
		return 0;
	return vent::wakeup_drain(evt->fd);
}

} // extern "C"
