/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * timeout.h - minivent's standalone timeout list (source and binary
 * compatible with minivent's timeout.h).
 *
 * A timeout list is a struct event of its own, made by new_timeout_event():
 * its fd is a timerfd and its callback is timeout_event(). Add it to a
 * dispatcher with event_add(); then every event put on the list with
 * timeout_add() or timeout_modify() gets its callback, with &event.reason
 * REASON_TIMEOUT, when its @tmo expires. The events on the list need not be
 * added to any dispatcher: the list only uses their @tmo, @flags (TMO_ABS),
 * @reason and @callback.
 *
 * Guarantees: a timeout never runs before its deadline on the list's clock;
 * expired timeouts run in deadline order, ties in the order they were armed
 * (timeout_modify() counts as arming anew); add, modify and cancel cost
 * O(log n) (an indexed heap, not a sorted array); every function may be
 * called from a callback of the list, on any event of it. A timeout has no
 * memory of its own: the list's tables grow geometrically, so once a list
 * has held n timeouts, timeout_add() and timeout_modify() allocate nothing
 * (and cannot fail with -ENOMEM) while it holds at most n.
 *
 * Threads: a list and its events belong to one thread at a time, like a
 * dispatcher. Fork: in a forked child every call on an inherited list
 * returns -ECHILD (timeout_event() does nothing), except
 * free_timeout_event(), which releases the child's copy without touching
 * the parent's timer.
 *
 * An event may be on one timeout list at a time, and should not have a
 * dispatcher timeout (event_add() with a non-zero @tmo, event_mod_timeout())
 * while it is on a list: all of them keep the expiry in &event.tmo.
 */
#ifndef _TIMEOUT_H
#define _TIMEOUT_H

#include "defs.h"

#include <stdint.h>
#include <time.h>

#include "event.h"

VENT_BEGIN_DECLS

/**
 * free_timeout_event() - release a timeout list
 * @tmo_event: a list returned by new_timeout_event(); NULL is a no-op
 *
 * Removes @tmo_event from its dispatcher if it is still added
 * (event_remove()), drops every timeout without calling a callback, closes
 * the timerfd and frees the list. The events that were on the list are not
 * touched (they may already be gone); their @tmo keeps its last value.
 * From a callback of the list: the rest of the expired timeouts do not run,
 * and the memory is released when timeout_event() returns. In a forked
 * child: only the child's fd and memory are released (no kernel call);
 * release an inherited dispatcher that still holds @tmo_event first
 * (free_dispatcher()), since event_remove() fails there.
 */
void free_timeout_event(struct event *tmo_event) VENT_NOEXCEPT
	VENT_SYMBOL(vent_free_timeout_event);

/**
 * new_timeout_event() - create a timeout list
 * @source: its clock: any clock timerfd_create(2) accepts (CLOCK_REALTIME,
 *          CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...)
 *
 * The returned event has the timerfd (close-on-exec, non-blocking) in
 * @fd, EPOLLIN in @ep.events, timeout_event() as @callback, no cleanup and
 * no timeout: pass it to event_add() and change none of its fields.
 *
 * Return: the list's event, or NULL with errno set: EINVAL for an
 * unsupported clock, EPERM for an alarm clock without CAP_WAKE_ALARM,
 * EMFILE or ENFILE when out of fds, ENOMEM when out of memory. Nothing is
 * leaked on failure.
 */
struct event *new_timeout_event(int source) VENT_NOEXCEPT VENT_SYMBOL(vent_new_timeout_event);

/**
 * timeout_add() - put an event on the timeout list
 * @tmo_event: a list returned by new_timeout_event()
 * @event: the event: @event->callback set, @event->tmo the timeout (relative
 *         to now on the list's clock, or absolute if TMO_ABS is in
 *         @event->flags)
 *
 * If @event->tmo is {0, 0}, nothing is done. Otherwise the timeout is armed:
 * values are normalised, an absolute deadline in the past expires at once,
 * a value too large to represent means "never". On success @event->tmo
 * holds the absolute expiry on the list's clock, normalised. When it
 * expires, timeout_event() takes @event off the list, sets @event->tmo to
 * {0, 0} and calls @event->callback(@event, 0) with @event->reason set to
 * REASON_TIMEOUT. O(log n).
 *
 * Return: 0; -EINVAL if @tmo_event or @event is NULL, @event is @tmo_event,
 * @event->callback is NULL or the relative timeout is negative; -EEXIST if
 * @event is already on the list (also while its expired timeout waits for
 * its callback); -ENOMEM when out of memory; clock_gettime(2)'s -errno if
 * the list's clock cannot be read (relative timeouts only); -ECHILD in a
 * forked child. On failure the list and @event are unchanged.
 */
int timeout_add(struct event *tmo_event, struct event *event) VENT_NOEXCEPT
	VENT_SYMBOL(vent_timeout_add);

/**
 * timeout_modify() - move, add or cancel an event's timeout
 * @tmo_event: a list returned by new_timeout_event()
 * @event: the event
 * @tmo: the new timeout, relative unless TMO_ABS is in @event->flags; need
 *       not be normalised; not modified
 *
 * {0, 0} cancels: the result is timeout_cancel()'s. Otherwise, if @event
 * is on the list, its timeout moves to @tmo (and counts as armed now for
 * the order of equal deadlines); if it is not, it is added as by
 * timeout_add() with @tmo. On success @event->tmo holds the absolute expiry,
 * normalised. The list finds @event by its address, not by @event->tmo, so
 * it does not matter what @event->tmo holds before the call. O(log n).
 *
 * Return: 0; -EINVAL if an argument is NULL, @event is @tmo_event,
 * @event->callback is NULL or the relative timeout is negative; -ENOMEM
 * when out of memory; clock_gettime(2)'s -errno if the list's clock cannot
 * be read (relative timeouts only); -ENOENT from timeout_cancel(); -ECHILD
 * in a forked child. On failure the list and @event are unchanged.
 */
int timeout_modify(struct event *tmo_event, struct event *event, struct timespec *tmo)
	VENT_NOEXCEPT VENT_SYMBOL(vent_timeout_modify);

/**
 * timeout_cancel() - take an event off the timeout list
 * @tmo_event: a list returned by new_timeout_event()
 * @event: the event
 *
 * After a successful cancel the event's callback does not run for this
 * timeout, even if it had already expired and was waiting for its turn in
 * the current timeout_event() call. @event->tmo is set to {0, 0} in every
 * case but -EINVAL and -ECHILD.
 *
 * Return: 0; -ENOENT if @event is not on the list: its timeout already ran
 * (or is running), it was cancelled before, or it was never added. A second
 * cancel therefore returns -ENOENT (minivent's code returns 0 there,
 * because its first cancel cleared @event->tmo); -EINVAL if an argument is
 * NULL; -ECHILD in a forked child.
 */
int timeout_cancel(struct event *tmo_event, struct event *event) VENT_NOEXCEPT
	VENT_SYMBOL(vent_timeout_cancel);

/**
 * timeout_reset() - drop every timeout of the list
 * @tmo_event: a list returned by new_timeout_event()
 *
 * Takes every event off the list without calling a callback, and disarms
 * the timer. The events are not touched (their @tmo keeps its last value).
 * From a callback of the list, the rest of the expired timeouts do not run.
 *
 * Return: 0; -EINVAL if @tmo_event is NULL; -ECHILD in a forked child.
 */
int timeout_reset(struct event *tmo_event) VENT_NOEXCEPT VENT_SYMBOL(vent_timeout_reset);

/**
 * timeout_event() - run the expired timeouts (the list's callback)
 * @tmo_event: a list returned by new_timeout_event()
 * @events: the epoll mask; expected to be EPOLLIN
 *
 * The dispatcher calls it when the timerfd is readable. It reads the
 * clock once, then runs every timeout whose deadline is not after that
 * time, earliest first, ties in arming order, each as described at
 * timeout_add(), through _event_invoke_callback(): if @event is also added
 * to a dispatcher, EVENTCB_REMOVE and EVENTCB_CLEANUP remove it there (and
 * run its cleanup); otherwise the callback's return value is ignored.
 * Callbacks may add, modify and cancel any timeout of the list, reset or
 * free the list: a timeout cancelled or moved by an earlier callback does
 * not run; one armed to now or the past from a callback runs in the next
 * call, not this one. Finally the timerfd is armed for the earliest
 * remaining deadline. If the clock cannot be read, nothing runs (the timer
 * fires again at once and the next call retries).
 *
 * Does nothing if @tmo_event->reason is not REASON_EVENT_OCCURED or @events
 * has a bit other than EPOLLIN (as minivent), when called again from one of
 * the list's own callbacks, for NULL, and in a forked child.
 *
 * Return: EVENTCB_CONTINUE.
 */
int timeout_event(struct event *tmo_event, uint32_t events) VENT_NOEXCEPT
	VENT_SYMBOL(vent_timeout_event);

/**
 * timeout_get_clocksource() - the clock of a timeout list
 * @tmo_event: a list returned by new_timeout_event()
 *
 * Return: the clock given to new_timeout_event(); -EINVAL if @tmo_event is
 * NULL; -ECHILD in a forked child.
 */
int timeout_get_clocksource(const struct event *tmo_event) VENT_NOEXCEPT
	VENT_SYMBOL(vent_timeout_get_clocksource);

VENT_END_DECLS

#endif /* _TIMEOUT_H */
