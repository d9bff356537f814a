/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * watch.h - id-based handles and periodic timeouts on a vent dispatcher.
 *
 * The registration protocol that libvirt (virEventRegisterImpl) and similar
 * libraries expect from a host event loop: the library registers an fd or a
 * timeout and gets back an integer id, which it later updates or removes.
 * vent/libvirt.h plugs this into libvirt in one call.
 *
 * Threads. Every function in this header may be called from any thread at
 * any time, including from inside any callback (a watch may update or
 * remove itself or any other watch). A change made from a thread that is
 * not running the loop is queued and the loop is woken, so that it takes
 * effect in the current or the next iteration; a loop sleeping in
 * event_wait()/event_loop()/vent_wait() never misses it.
 *
 * An add racing cleanup_dispatcher() or free_dispatcher() on another
 * thread either lands before it (the watch is then removed by that call,
 * and its free callback runs inside it) or returns -EBUSY: a watch is
 * never lost in between. An add that fails on one thread (bad arguments,
 * no memory) never makes a valid add on another thread fail. As for any
 * object, free_dispatcher() must not race a call that may still be
 * starting on another thread: nothing may use @dsp once it is freed.
 *
 * Callbacks (handle callbacks, timeout callbacks and free callbacks) always
 * run on the thread that runs the dispatcher's loop (event_wait(),
 * event_loop() or vent_wait()), never inside one of the functions below,
 * and never while vent's internal lock is held: they may call anything in
 * this header.
 *
 * Free callbacks. The @ff given at registration runs exactly once per
 * watch: after the watch was removed, later on the loop thread, once the
 * watch's callback can no longer run (never from inside the remove call,
 * never while that watch's callback is still running). Watches still
 * registered when the dispatcher is freed (free_dispatcher()) or cleaned
 * (cleanup_dispatcher()) are removed then, and their free callbacks run
 * inside that call, with one exception that keeps the rule above: if the
 * call is made from a watch's own callback, that watch's free callback
 * runs when its callback returns (so the callback may go on using its
 * opaque after the call). A watch removed while no loop runs gets its free
 * callback on the next wait, or in free_dispatcher().
 *
 * Attaching. The first call on a dispatcher (and the first after
 * cleanup_dispatcher(), which detaches it) attaches vent's watch machinery
 * to it without touching the dispatcher from the calling thread: it hands
 * the work to the loop thread through the dispatcher's own wakeup (the one
 * vent_dispatcher_wake() uses), and the loop adds one internal event (no
 * fd, no timeout) in its next wait. So that call too may come from any
 * thread, while the loop runs or not; it opens no fd. Watch callbacks and
 * free callbacks count in vent_wait()'s result like any other callbacks.
 *
 * Fork: in a forked child every function returns -ECHILD for an inherited
 * dispatcher, without blocking, whatever other threads of the parent were
 * doing in this header at fork(). free_dispatcher() (or
 * cleanup_dispatcher()'s -ECHILD) on an inherited dispatcher runs none of
 * its watches' free callbacks in the child: those watches are the
 * parent's. Dispatchers the child creates itself work as usual.
 *
 * Callbacks run inside noexcept frames: a C++ callback that throws
 * terminates the process.
 */
#ifndef VENT_WATCH_H
#define VENT_WATCH_H

#include "defs.h"

VENT_BEGIN_DECLS

struct dispatcher;

/**
 * enum - event bits of a handle watch (libvirt's virEventHandleType values)
 * @VENT_HANDLE_READABLE: the fd is readable (EPOLLIN)
 * @VENT_HANDLE_WRITABLE: the fd is writable (EPOLLOUT)
 * @VENT_HANDLE_ERROR: an error is pending on the fd (EPOLLERR)
 * @VENT_HANDLE_HANGUP: the peer hung up (EPOLLHUP)
 *
 * A watch that asks for any event is also told about ERROR and HANGUP, as
 * poll(2) does; a watch with events 0 is told nothing at all.
 */
enum {
	VENT_HANDLE_READABLE = 1,
	VENT_HANDLE_WRITABLE = 2,
	VENT_HANDLE_ERROR = 4,
	VENT_HANDLE_HANGUP = 8,
};

/**
 * typedef vent_handle_cb - called when a handle watch's fd is ready
 * @watch: the watch id returned by vent_add_handle()
 * @fd: the watched fd
 * @events: the VENT_HANDLE_* bits that are ready (never 0)
 * @opaque: the pointer given to vent_add_handle()
 *
 * Runs on the loop thread. Level-triggered: it runs again on the next
 * iteration while the condition lasts.
 */
typedef void (*vent_handle_cb)(int watch, int fd, int events, void *opaque);

/**
 * typedef vent_timeout_cb - called when a timeout fires
 * @timer: the timer id returned by vent_add_timeout()
 * @opaque: the pointer given to vent_add_timeout()
 *
 * Runs on the loop thread.
 */
typedef void (*vent_timeout_cb)(int timer, void *opaque);

/**
 * typedef vent_free_cb - release the opaque pointer of a removed watch
 * @opaque: the pointer given at registration
 *
 * Runs once per watch, on the loop thread, after the watch was removed and
 * its callback can no longer run (see the top of this file).
 */
typedef void (*vent_free_cb)(void *opaque);

/**
 * vent_add_handle() - watch an fd
 * @dsp: the dispatcher
 * @fd: the fd to watch; it stays the caller's: vent never closes it, and
 *      the caller must keep it open until the watch is removed
 * @events: VENT_HANDLE_* bits; 0 registers the watch disabled
 * @cb: called when one of @events (or ERROR/HANGUP) is ready
 * @opaque: passed to @cb and @ff
 * @ff: called with @opaque once the watch is removed, or NULL
 *
 * The same fd may carry several watches, typically with different event
 * sets (one READABLE, one WRITABLE): each is told about its own bits, and
 * all those with non-zero events about ERROR and HANGUP. Any thread, also
 * from a callback (see the top of this file). Level-triggered.
 *
 * The fd reaches epoll later, on the loop thread. If epoll refuses it there
 * (its watch limit; the fd closed in between; another event holding it),
 * the watches of the fd with non-zero events get one callback with
 * VENT_HANDLE_ERROR; vent_update_handle() makes the loop try again.
 *
 * Return: the watch id (> 0, never reused while the dispatcher lives);
 * -EINVAL if @dsp or @cb is NULL, @fd < 0 or @events has bits other than
 * VENT_HANDLE_*; -EBADF if @fd is not an open fd; -EPERM if @fd cannot be
 * watched (a regular file or a directory); -ENOSPC when the ids are
 * exhausted; -ENOMEM when out of memory; -EBUSY while the dispatcher is
 * being cleaned or freed (from a cleanup callback, or from another thread
 * during that call); -ECHILD in a forked child.
 */
int vent_add_handle(struct dispatcher *dsp, int fd, int events, vent_handle_cb cb,
		    void *opaque, vent_free_cb ff) VENT_NOEXCEPT;

/**
 * vent_update_handle() - change the events of a handle watch
 * @dsp: the dispatcher
 * @watch: a watch id from vent_add_handle()
 * @events: the new VENT_HANDLE_* bits; 0 disables the watch (nothing at all
 *          is reported, not even ERROR or HANGUP)
 *
 * Takes effect at once for callbacks: a callback that has not run yet in
 * the current iteration sees the new events. Updating to the same events
 * costs nothing. Any thread, also from a callback.
 *
 * Return: 0; -EINVAL if @dsp is NULL or @events has bits other than
 * VENT_HANDLE_*; -ENOENT if @watch is not a registered handle watch (then
 * nothing changes); -ECHILD in a forked child. Never allocates.
 */
int vent_update_handle(struct dispatcher *dsp, int watch, int events) VENT_NOEXCEPT;

/**
 * vent_remove_handle() - remove a handle watch
 * @dsp: the dispatcher
 * @watch: a watch id from vent_add_handle()
 *
 * Once it returns, the watch's callback is not started again, even if its
 * fd's readiness was already fetched in the current iteration. Only a call
 * already under way on the loop thread when the remove comes from another
 * thread (running, or being started) still completes. Its free callback runs
 * later on the loop thread, after that callback returned: never inside this
 * call, so the caller may hold locks that the free callback takes. The
 * caller may close the fd once this returns. Any thread, also from a
 * callback, including the watch's own.
 *
 * Return: 0; -EINVAL if @dsp is NULL; -ENOENT if @watch is not a registered
 * handle watch (unknown, or already removed); -ECHILD in a forked child.
 * Never allocates.
 */
int vent_remove_handle(struct dispatcher *dsp, int watch) VENT_NOEXCEPT;

/**
 * vent_add_timeout() - add a periodic timeout
 * @dsp: the dispatcher
 * @interval_ms: period in milliseconds: > 0 fires every @interval_ms (the
 *               next period starts when the callback is called, so it
 *               never fires early); 0 fires on every loop iteration, and
 *               the loop does not block while such a timeout is active;
 *               -1 adds it disabled
 * @cb: called when the timeout fires
 * @opaque: passed to @cb and @ff
 * @ff: called with @opaque once the timeout is removed, or NULL
 *
 * Any thread, also from a callback. Timeouts use the dispatcher's clock.
 *
 * Return: the timer id (> 0, never reused while the dispatcher lives);
 * -EINVAL if @dsp or @cb is NULL or @interval_ms < -1, or if @interval_ms
 * > 0 and the dispatcher's clock cannot be read (clock_gettime(2)'s error:
 * nothing is added); -ENOSPC when the
 * ids are exhausted; -ENOMEM when out of memory; -EBUSY while the
 * dispatcher is being cleaned or freed (from a cleanup callback, or from
 * another thread during that call); -ECHILD in a forked child.
 */
int vent_add_timeout(struct dispatcher *dsp, int interval_ms, vent_timeout_cb cb, void *opaque,
		     vent_free_cb ff) VENT_NOEXCEPT;

/**
 * vent_update_timeout() - change or restart a timeout's period
 * @dsp: the dispatcher
 * @timer: a timer id from vent_add_timeout()
 * @interval_ms: the new period as for vent_add_timeout(); -1 disables
 *
 * Any value >= 0, even the current one, restarts the period from now. An
 * update made while the timer's own callback runs (from the callback or
 * from another thread) is the one that stays. A -1 -> 0 change from another
 * thread wakes a sleeping loop, which then runs the callback. Any thread,
 * also from a callback.
 *
 * Return: 0; -EINVAL if @dsp is NULL or @interval_ms < -1, or if
 * @interval_ms > 0 and the dispatcher's clock cannot be read
 * (clock_gettime(2)'s error); -ENOENT if @timer is not a registered timeout;
 * -ECHILD in a forked child. On an error nothing changes. Never allocates.
 */
int vent_update_timeout(struct dispatcher *dsp, int timer, int interval_ms) VENT_NOEXCEPT;

/**
 * vent_remove_timeout() - remove a timeout
 * @dsp: the dispatcher
 * @timer: a timer id from vent_add_timeout()
 *
 * Once it returns, the callback is not started again (a call already under
 * way on the loop thread when the remove comes from another thread still
 * completes). The free callback runs later on the loop thread, after that
 * call returned; never inside this call. Any thread, also from a callback,
 * including the timer's own.
 *
 * Return: 0; -EINVAL if @dsp is NULL; -ENOENT if @timer is not a
 * registered timeout (unknown, or already removed); -ECHILD in a forked
 * child. Never allocates.
 */
int vent_remove_timeout(struct dispatcher *dsp, int timer) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* VENT_WATCH_H */
