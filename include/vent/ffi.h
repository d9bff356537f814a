/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ffi.h - heap events and accessors for foreign function interfaces.
 *
 * For languages that dlopen() libvent (Python ctypes/cffi, Perl
 * FFI::Platypus, LuaJIT, Rust) and cannot embed a C struct comfortably. A
 * binding needs no knowledge of the layout of struct event: it creates the
 * event with vent_event_new(), reads it through the accessors below and
 * registers it with the ordinary event_add()/event_remove() of event.h.
 * Every function here is a real exported symbol (no macro, no static
 * inline), so dlsym() finds it.
 *
 * Threads: callbacks run only inside event_wait(), event_loop(), vent_wait()
 * (or vent_aio_poll()) and only on the thread that called it. An event
 * belongs to the thread that runs its dispatcher, like the dispatcher
 * itself; vent_strerror() is the only function here that any thread may
 * call at any time.
 *
 * Lifetime: an event from vent_event_new() lives until vent_event_free(),
 * or until its cleanup callback runs (the default cleanup frees it: after
 * the callback returned EVENTCB_CLEANUP, or when cleanup_dispatcher() or
 * free_dispatcher() ran with the event added). The library never closes
 * the event's fd.
 */
#ifndef VENT_FFI_H
#define VENT_FFI_H

#include <stddef.h>
#include <stdint.h>

#include "defs.h"
#include "event.h"

VENT_BEGIN_DECLS

/**
 * vent_event_new() - allocate an event on the heap
 * @fd: the fd to watch, or -1 for a pure timer. The caller keeps owning
 *      it: the library never closes it.
 * @events: the epoll mask (EPOLLIN, EPOLLOUT, ...; 0: fd disabled)
 * @cb: the callback; required
 * @userdata: any pointer, returned by vent_event_userdata(); never
 *            dereferenced by the library
 *
 * The event is zero-initialised, has no timeout (see
 * vent_event_set_timeout_ms()) and is not added: register it with
 * event_add(). Its cleanup callback frees it without closing @fd (a binding
 * that wants the fd closed closes it itself). The pointer stays valid until
 * vent_event_free() or until that cleanup ran (EVENTCB_CLEANUP,
 * cleanup_dispatcher(), free_dispatcher()); using it afterwards is
 * undefined. Any thread may create an event.
 *
 * Return: the event, or NULL with errno set: EINVAL if @cb is NULL or @fd
 * is below -1; ENOMEM when out of memory.
 */
struct event *vent_event_new(int fd, uint32_t events, cb_fn cb, void *userdata) VENT_NOEXCEPT;

/**
 * vent_event_free() - remove (if added) and free an event
 * @evt: an event from vent_event_new(); NULL is a no-op
 *
 * If @evt is added, event_remove() runs first. The cleanup callback is not
 * called; the fd is not closed. Safe from any callback, including @evt's
 * own (its return value is then ignored). Don't call it after the event's
 * cleanup ran, and never on an event that vent_event_new() did not create.
 *
 * Return: 0 (@evt is freed); -ECHILD if @evt is added to a dispatcher
 * inherited across fork() (nothing is freed: free_dispatcher() in the
 * child runs the cleanup, which frees it).
 */
int vent_event_free(struct event *evt) VENT_NOEXCEPT;

/**
 * vent_event_userdata() - the userdata given to vent_event_new()
 * @evt: an event from vent_event_new() (not any struct event: the pointer
 *       is stored next to it)
 *
 * Return: the userdata; NULL if @evt is NULL (or the userdata was NULL).
 */
void *vent_event_userdata(const struct event *evt) VENT_NOEXCEPT;

/**
 * vent_event_fd() - the fd an event watches
 * @evt: any event
 *
 * Return: the fd (>= 0); -1 for a pure timer; -EINVAL if @evt is NULL.
 */
int vent_event_fd(const struct event *evt) VENT_NOEXCEPT;

/**
 * vent_event_reason() - why the callback runs
 * @evt: any event
 *
 * Meaningful inside the callback; outside it holds the last reason.
 *
 * Return: REASON_EVENT_OCCURED (0) or REASON_TIMEOUT (1); -EINVAL if @evt
 * is NULL.
 */
int vent_event_reason(const struct event *evt) VENT_NOEXCEPT;

/**
 * vent_event_set_events() - change the epoll mask
 * @evt: any event
 * @events: the new mask; 0 disables the fd (no callback, not even on
 *          hang-up or error) while the timeout stays active
 *
 * Sets @evt->ep.events and, if the event is added, applies it with
 * event_modify(). Safe from a callback.
 *
 * Return: 0; -EINVAL if @evt is NULL or epoll rejects the mask; -EBADF if
 * the fd was closed; -EEXIST when re-enabling an fd that another event took
 * meanwhile; -ENOMEM, -ENOSPC from epoll; -EBUSY while the dispatcher is
 * being torn down; -ECHILD in a forked child. On failure the mask and the
 * registration stay as they were.
 */
int vent_event_set_events(struct event *evt, uint32_t events) VENT_NOEXCEPT;

/**
 * vent_event_set_timeout_ms() - set or cancel a relative timeout
 * @evt: any event
 * @ms: milliseconds from now; 0 cancels the timeout
 *
 * Clears TMO_ABS. If the event is added, this is event_mod_timeout() with
 * a relative timeout: it sets, moves or cancels the oneshot timeout.
 * Otherwise it stores the timeout for the next event_add(), which counts it
 * from the time of the add. Values too large to represent mean "never".
 * Safe from a callback (re-arming from a REASON_TIMEOUT callback makes a
 * periodic timer).
 *
 * Return: 0; -EINVAL if @evt is NULL or @ms is negative; -EBUSY while the
 * dispatcher is being torn down; -ECHILD in a forked child. On failure the
 * event is unchanged.
 */
int vent_event_set_timeout_ms(struct event *evt, int64_t ms) VENT_NOEXCEPT;

/**
 * vent_event_sizeof() - sizeof(struct event)
 *
 * For bindings that allocate struct event themselves (64 on x86-64).
 *
 * Return: the size in bytes.
 */
size_t vent_event_sizeof(void) VENT_NOEXCEPT;

/**
 * vent_strerror() - describe an error code
 * @err: a code returned by vent: a negative errno (-EINVAL); a positive
 *       errno is accepted too
 *
 * Thread-safe and async-signal-safe: no locale, no buffer.
 *
 * Return: a static string (never freed, never NULL), e.g. "Invalid
 * argument"; "Success" for 0; "Unknown error" for a code that is no errno.
 */
const char *vent_strerror(int err) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* VENT_FFI_H */
