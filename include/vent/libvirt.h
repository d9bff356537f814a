/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt.h - run libvirt on a vent dispatcher (header only).
 *
 * libvirt delivers its events (domain lifecycle, remote driver RPC,
 * keepalive) through a host event loop that implements its six-callback
 * protocol; vent/watch.h is that protocol. This header wires the two
 * together. It is header-only: libvent never links libvirt. Include it
 * where libvirt's own headers are available and link the program with both
 * (pkg-config --cflags --libs vent libvirt).
 *
 * The mapping is one to one: libvirt's VIR_EVENT_HANDLE_* values are vent's
 * VENT_HANDLE_* values and the callback types have the same signatures. The
 * only translation is of errors: libvirt expects -1, vent returns -errno.
 */
#ifndef VENT_LIBVIRT_H
#define VENT_LIBVIRT_H

#include <errno.h>

#include <libvirt/libvirt.h>

#include "watch.h"

VENT_BEGIN_DECLS

/* libvirt's handle bits must be vent's: this fails to compile otherwise. */
typedef char vent__libvirt_bits_match
	[(VENT_CAST(int, VIR_EVENT_HANDLE_READABLE) == VENT_CAST(int, VENT_HANDLE_READABLE) &&
	  VENT_CAST(int, VIR_EVENT_HANDLE_WRITABLE) == VENT_CAST(int, VENT_HANDLE_WRITABLE) &&
	  VENT_CAST(int, VIR_EVENT_HANDLE_ERROR) == VENT_CAST(int, VENT_HANDLE_ERROR) &&
	  VENT_CAST(int, VIR_EVENT_HANDLE_HANGUP) == VENT_CAST(int, VENT_HANDLE_HANGUP)) ? 1 : -1];

/*
 * libvirt's callbacks carry no context pointer: the dispatcher lives in a
 * function-local static (one per program that calls vent_libvirt_register(),
 * as libvirt itself accepts only one event implementation).
 */
static inline struct dispatcher **vent__libvirt_dsp(void) VENT_NOEXCEPT
{
	static struct dispatcher *dsp;
	return &dsp;
}

static inline int vent__libvirt_add_handle(int fd, int events, virEventHandleCallback cb,
					   void *opaque, virFreeCallback ff) VENT_NOEXCEPT
{
	int rc = vent_add_handle(*vent__libvirt_dsp(), fd, events, cb, opaque, ff);
	return rc < 0 ? -1 : rc;
}

static inline void vent__libvirt_update_handle(int watch, int events) VENT_NOEXCEPT
{
	vent_update_handle(*vent__libvirt_dsp(), watch, events);
}

static inline int vent__libvirt_remove_handle(int watch) VENT_NOEXCEPT
{
	return vent_remove_handle(*vent__libvirt_dsp(), watch) < 0 ? -1 : 0;
}

static inline int vent__libvirt_add_timeout(int timeout, virEventTimeoutCallback cb,
					    void *opaque, virFreeCallback ff) VENT_NOEXCEPT
{
	int rc = vent_add_timeout(*vent__libvirt_dsp(), timeout, cb, opaque, ff);
	return rc < 0 ? -1 : rc;
}

static inline void vent__libvirt_update_timeout(int timer, int timeout) VENT_NOEXCEPT
{
	vent_update_timeout(*vent__libvirt_dsp(), timer, timeout);
}

static inline int vent__libvirt_remove_timeout(int timer) VENT_NOEXCEPT
{
	return vent_remove_timeout(*vent__libvirt_dsp(), timer) < 0 ? -1 : 0;
}

static inline void vent__libvirt_noop(int timer, void *opaque) VENT_NOEXCEPT
{
	(void)timer;
	(void)opaque;
}

/**
 * vent_libvirt_register() - make @dsp libvirt's event loop
 * @dsp: the dispatcher that will run libvirt's events
 *
 * Attaches vent's watch machinery to @dsp (from any thread, whether the
 * loop runs or not: see "Attaching" in vent/watch.h), then installs it
 * with virEventRegisterImpl(). Call it once, before opening the
 * first libvirt connection, instead of virEventRegisterDefaultImpl(); then
 * run the loop with event_loop(@dsp, ...) (or event_wait()/vent_wait()) on
 * one thread. libvirt's callbacks (domain events, RPC, keepalive) run on
 * that thread; libvirt API calls may be made from any thread.
 *
 * libvirt cannot unregister an event implementation: keep @dsp alive for as
 * long as libvirt may use it (until the last connection is closed and its
 * callbacks deregistered).
 *
 * Return: 0; -EINVAL if @dsp is NULL; -ENOMEM when out of memory; -EBUSY
 * while @dsp is being cleaned or freed; -ECHILD in a forked child.
 */
static inline int vent_libvirt_register(struct dispatcher *dsp) VENT_NOEXCEPT
{
	int rc;

	if (!dsp)
		return -EINVAL;
	/* A disabled timeout, added and removed: that attaches the adapter here. */
	rc = vent_add_timeout(dsp, -1, vent__libvirt_noop, VENT_NULL, VENT_NULL);
	if (rc < 0)
		return rc;
	vent_remove_timeout(dsp, rc);
	*vent__libvirt_dsp() = dsp;
	virEventRegisterImpl(vent__libvirt_add_handle, vent__libvirt_update_handle,
			     vent__libvirt_remove_handle, vent__libvirt_add_timeout,
			     vent__libvirt_update_timeout, vent__libvirt_remove_timeout);
	return 0;
}

VENT_END_DECLS

#endif /* VENT_LIBVIRT_H */
