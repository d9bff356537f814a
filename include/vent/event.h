/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * event.h - vent's minivent-compatible core: events, dispatchers, the loop.
 *
 * Source and binary compatible with minivent's event.h: same names, same
 * struct layout, same enum values, same macro expansions (in C). A program
 * written for minivent compiles unchanged with "-I include/vent".
 *
 * Threads: a dispatcher and its events belong to one thread at a time.
 * Only vent_loop_stop() and vent_dispatcher_wake() may be called from any
 * thread (and from a signal handler).
 *
 * Fork: a dispatcher remembers the process that created it. In a forked
 * child, every call on an inherited dispatcher (or on an event added to
 * one) returns -ECHILD, except free_dispatcher(), which releases the
 * child's copy without touching the parent's kernel objects.
 *
 * Callbacks run inside noexcept frames: a C++ callback that throws
 * terminates the process.
 */
#ifndef _EVENT_H
#define _EVENT_H

#include "defs.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <time.h>
#include <sys/epoll.h>

VENT_BEGIN_DECLS

struct event;
struct dispatcher;

/**
 * enum - reason codes passed to the event callback in &event.reason
 * @REASON_EVENT_OCCURED: the fd reported readiness (the callback's @events
 *                        holds the epoll mask)
 * @REASON_TIMEOUT: the event's timeout expired (@events is 0)
 * @__MAX_CALLBACK_REASON: number of reasons (size of reason_str)
 */
enum {
	REASON_EVENT_OCCURED = 0,
	REASON_TIMEOUT = 1,
	__MAX_CALLBACK_REASON = 2,
};

/*
 * reason_str - printable names of the REASON_* codes: "event occured" and
 * "timeout". Exported as data for minivent compatibility only.
 */
extern const char *const reason_str[__MAX_CALLBACK_REASON] VENT_SYMBOL(vent_reason_str);

/**
 * enum - return codes of an event callback
 * @EVENTCB_CONTINUE: keep the event registered
 * @EVENTCB_REMOVE: remove the event (its cleanup is not called)
 * @EVENTCB_CLEANUP: remove the event, then call its cleanup (which may free it)
 */
enum {
	EVENTCB_CONTINUE = 0,
	EVENTCB_REMOVE = 1,
	EVENTCB_CLEANUP = 2,
};

/**
 * enum - bits of &event.flags
 * @TMO_ABS: the timeout given to event_add() or event_mod_timeout() is an
 *           absolute time on the dispatcher's clock, not relative to now
 * @__EV_REMOVE: library-private (kept for minivent compatibility)
 * @__EV_CLEANUP: library-private (kept for minivent compatibility)
 *
 * Bits 8 and up are library-private: set or clear only TMO_ABS.
 */
enum {
	TMO_ABS = 1,
	__EV_REMOVE = 1 << 8,
	__EV_CLEANUP = 1 << 9,
};

/**
 * enum - return codes of the err_handler passed to event_loop()
 * @ELOOP_CONTINUE: keep looping
 * @ELOOP_QUIT: make event_loop() return 0
 */
enum {
	ELOOP_CONTINUE = 0,
	ELOOP_QUIT = 1,
};

/**
 * typedef cb_fn - event callback
 * @evt: the event that registered the callback; &event.reason says why it runs
 * @events: the epoll mask that fired (REASON_EVENT_OCCURED), or 0 (REASON_TIMEOUT)
 *
 * Runs on the thread that called event_wait(), event_loop() or vent_wait().
 * It may call event_add(), event_remove() (on any event, including @evt),
 * event_modify() and event_mod_timeout(). It must not free @evt unless it
 * removed @evt first; return EVENTCB_CLEANUP to have the cleanup callback
 * free it instead.
 *
 * Return: EVENTCB_CONTINUE, EVENTCB_REMOVE or EVENTCB_CLEANUP. The value is
 * ignored if the callback removed @evt itself (even if it added it again).
 */
typedef int (*cb_fn)(struct event *evt, uint32_t events);

/**
 * typedef cleanup_fn - release the resources of an event
 * @evt: an event that is no longer registered
 *
 * Called after the event callback returned EVENTCB_CLEANUP, and for every
 * registered event by cleanup_dispatcher() and free_dispatcher(). The event
 * has already been removed; the function may close @evt->fd and free @evt.
 */
typedef void (*cleanup_fn)(struct event *evt);

/**
 * struct event - an fd and/or a timeout with one callback
 * @ep: (rw) @ep.events is the epoll mask wanted (0 disables the fd; the
 *      timeout stays active); apply changes with event_modify().
 *      (private) @ep.data belongs to the library.
 * @fd: (rw until added) the fd to watch, or -1 for a pure timer. Must not
 *      change while the event is added: if it does, event_modify() fails
 *      with -EINVAL, and event_remove() and the teardowns still unregister
 *      the fd that was registered. The library never closes it.
 * @reason: (ro) why the callback runs: REASON_EVENT_OCCURED or REASON_TIMEOUT.
 * @flags: (rw) TMO_ABS; bits 8 and up are (private).
 * @dsp: (ro) the dispatcher, set by event_add(), NULL when not added. Must be
 *       NULL (or a stale value left by vent) before event_add(); the
 *       initialiser macros set it to NULL.
 * @tmo: (rw until added) the timeout for event_add(); {0, 0} means none.
 *       (ro) after add: the absolute expiry on the dispatcher's clock, or
 *       {0, 0} once expired or cancelled. Change it with event_mod_timeout();
 *       a relative one made from a callback is written when the batch ends
 *       (see there).
 * @callback: (rw) required.
 * @cleanup: (rw) optional; may free the object that embeds the event.
 *
 * Embed it in your own object. The layout is minivent's, byte for byte
 * (64 bytes on x86-64). The library never frees a struct event.
 */
struct event {
	struct epoll_event ep;
	int fd;
	unsigned short reason;
	unsigned short flags;
	struct dispatcher *dsp;
	struct timespec tmo;
	cb_fn callback;
	cleanup_fn cleanup;
};

/**
 * cleanup_event_on_stack() - cleanup callback that closes the fd
 * @evt: the event; NULL is a no-op
 *
 * Closes @evt->fd unless it is -1.
 */
void cleanup_event_on_stack(struct event *evt)
	VENT_NOEXCEPT VENT_SYMBOL(vent_cleanup_event_on_stack);

/**
 * cleanup_event_on_heap() - cleanup callback that closes the fd and frees
 * @evt: the event; NULL is a no-op
 *
 * Closes @evt->fd unless it is -1, then calls free(@evt): the event must sit
 * at offset 0 of a malloc()ed object.
 */
void cleanup_event_on_heap(struct event *evt) VENT_NOEXCEPT VENT_SYMBOL(vent_cleanup_event_on_heap);

/**
 * new_dispatcher() - create a dispatcher
 * @clocksrc: the clock for timeouts: any clock timerfd_create(2) accepts
 *            (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...)
 *
 * Opens an epoll fd, one timerfd and one eventfd (for wakeups), all
 * close-on-exec. The dispatcher belongs to the calling process (see fork
 * note at the top of this file).
 *
 * Return: the dispatcher, or NULL with errno set: EINVAL for an unsupported
 * clock or one that clock_gettime(2) cannot read (an alarm clock on a host
 * without an RTC: timerfd_create(2) accepts it), EPERM for an alarm clock
 * without CAP_WAKE_ALARM, EMFILE or ENFILE
 * when out of fds, ENOMEM when out of memory.
 */
struct dispatcher *new_dispatcher(int clocksrc) VENT_NOEXCEPT VENT_SYMBOL(vent_new_dispatcher);

/**
 * free_dispatcher() - release a dispatcher
 * @dsp: the dispatcher; NULL is a no-op
 *
 * Calls the cleanup callback of every registered event (each exactly once),
 * closes the dispatcher's own fds and frees it. Makes no epoll_ctl() and no
 * timerfd_settime() call, so it is safe in a forked child: the parent's
 * kernel objects are untouched. In a forked child it is the only call that
 * works on an inherited dispatcher.
 *
 * From a callback: the cleanups run and the fds close at once; the memory is
 * released when the callback returns to the library. event_add() from a
 * cleanup callback fails with -EBUSY.
 */
void free_dispatcher(struct dispatcher *dsp) VENT_NOEXCEPT VENT_SYMBOL(vent_free_dispatcher);

/**
 * cleanup_dispatcher() - remove every event and run every cleanup
 * @dsp: the dispatcher
 *
 * Removes every event from epoll, cancels all timeouts and calls each
 * event's cleanup callback (each exactly once). The dispatcher stays usable.
 * Unlike free_dispatcher(), this changes kernel state, so don't call it in
 * a forked child (it returns -ECHILD there). Safe from a callback: the rest
 * of the current batch is dropped.
 *
 * Return: 0; -EINVAL if @dsp is NULL; -EBUSY if called from a cleanup
 * callback while the dispatcher is being torn down; -ECHILD in a forked child.
 */
int cleanup_dispatcher(struct dispatcher *dsp) VENT_NOEXCEPT VENT_SYMBOL(vent_cleanup_dispatcher);

/**
 * dispatcher_get_efd() - the dispatcher's epoll fd
 * @dsp: the dispatcher
 *
 * For embedding in a foreign loop: the fd is readable when vent_wait(@dsp,
 * 0, NULL) has work. The number and the file stay the same for the
 * dispatcher's life (an outer epoll keeps seeing the dispatcher whatever it
 * does inside, including the purge of orphaned registrations described at
 * event_remove()). The fd stays owned by the dispatcher: don't close it.
 * The first call opens it: an epoll set holding the dispatcher's own.
 *
 * Return: the fd; -EINVAL if @dsp is NULL; -ECHILD in a forked child;
 * -EMFILE, -ENFILE, -ENOMEM from the first call when out of fds or memory.
 */
int dispatcher_get_efd(const struct dispatcher *dsp)
	VENT_NOEXCEPT VENT_SYMBOL(vent_dispatcher_get_efd);

/**
 * dispatcher_get_clocksource() - the clock given to new_dispatcher()
 * @dsp: the dispatcher
 *
 * Return: the clock id; -EINVAL if @dsp is NULL; -ECHILD in a forked child.
 */
int dispatcher_get_clocksource(const struct dispatcher *dsp)
	VENT_NOEXCEPT VENT_SYMBOL(vent_dispatcher_get_clocksource);

/**
 * event_add() - register an event
 * @dsp: the dispatcher
 * @evt: the event: @evt->callback set, @evt->fd an fd or -1, @evt->ep.events
 *       the mask (0: fd disabled), @evt->tmo the timeout ({0, 0}: none;
 *       relative unless TMO_ABS is in @evt->flags)
 *
 * Registers the fd (unless -1) and arms the timeout. Timeout values are
 * normalised (tv_nsec outside [0, 1e9) carries into tv_sec); an absolute
 * deadline in the past fires on the next wait; a value too large to
 * represent is clamped to "never". O(1) plus O(log n) for a timeout. Safe
 * from a callback. The library never closes @evt->fd or frees @evt.
 *
 * Return: 0; -EINVAL if @dsp, @evt or @evt->callback is NULL, or if the
 * relative timeout is negative, or (from epoll) the fd is the dispatcher's
 * own epoll fd; -EEXIST if @evt is already added, or another event already
 * watches @evt->fd; -EBADF if @evt->fd is not an open fd; -EPERM if the fd
 * does not support epoll (a regular file or directory); -ELOOP for an
 * epoll fd that watches this dispatcher; -ENOMEM, -ENOSPC when out of
 * memory or epoll watches; -EBUSY while the dispatcher is being torn down;
 * -ECHILD in a forked child; for a relative timeout, clock_gettime()'s
 * error (-EINVAL) if the dispatcher's clock cannot be read. On failure
 * nothing stays registered and @evt may be added again.
 */
int event_add(struct dispatcher *dsp, struct event *evt) VENT_NOEXCEPT VENT_SYMBOL(vent_event_add);

/**
 * event_remove() - unregister an event
 * @evt: an added event
 *
 * Removes the fd from epoll and cancels the timeout; does not call cleanup.
 * Safe from any callback, on any event, including the one being dispatched.
 * Once it returns, the library never touches @evt again: the caller may free
 * it at once, and readiness already fetched for it is dropped. If the fd was
 * closed before this call while a duplicate keeps the file open, the orphaned
 * kernel registration is purged internally when it first reports (no
 * callback, no busy loop; the purge reads /proc/self/fdinfo, so without a
 * mounted /proc such an orphan keeps waking the loop).
 * Clears @evt->dsp. O(1) plus O(log n) for a timeout.
 *
 * Return: 0; -EINVAL if @evt is NULL or not added; -ECHILD in a forked child.
 */
int event_remove(struct event *evt) VENT_NOEXCEPT VENT_SYMBOL(vent_event_remove);

/**
 * event_modify() - apply a new epoll mask
 * @evt: an added event whose @evt->ep.events holds the new mask
 *
 * 0 disables the fd completely (no callback even on hang-up or error, no
 * CPU use); the timeout stays active. An unchanged mask costs no syscall,
 * unless it holds EPOLLONESHOT or EPOLLET: then, as in minivent, the mask is
 * applied again (EPOLL_CTL_MOD), which re-arms a oneshot event that fired
 * and makes an edge-triggered one report readiness that is still there.
 * Safe from a callback; readiness already fetched under the old mask is
 * still delivered unless the new mask is 0.
 *
 * Return: 0; -EINVAL if @evt is NULL or not added, epoll rejects the mask,
 * or @evt->fd was changed since event_add(); -EBADF if the fd was closed; -EEXIST when re-enabling an fd that
 * another event took while this one was disabled; -ENOMEM, -ENOSPC from
 * epoll; -EBUSY while the dispatcher is being torn down; -ECHILD in a forked
 * child. On failure the previous registration stays in force.
 */
int event_modify(struct event *evt) VENT_NOEXCEPT VENT_SYMBOL(vent_event_modify);

/**
 * event_mod_timeout() - set, move or cancel an event's timeout
 * @evt: an added event
 * @tmo: the new timeout; {0, 0} cancels; relative to now unless TMO_ABS is
 *       set in @evt->flags (the flag is remembered)
 *
 * Timeouts are oneshot: after a REASON_TIMEOUT callback the event has no
 * timeout until this function re-arms it. Values are normalised as in
 * event_add(). Moving a deadline later costs no syscall. O(log n). Safe
 * from a callback; a timeout re-armed to now or the past from its own
 * callback fires on the next wait, not in the current one.
 *
 * Outside a callback a relative value is added to a clock read made by the
 * call, and @evt->tmo holds the deadline when it returns. From a callback
 * (the batch of callbacks one wait runs) the call reads no clock: the
 * previous timeout ends at once (it no longer fires), and the deadline is
 * @tmo after one clock read made when the batch ends, after its last
 * callback, which also writes @evt->tmo (until then it keeps its previous
 * value). Such a timeout is never early; it is late by at most the rest of
 * the batch: the callbacks that run after the call in the same wait (fd
 * callbacks, then due timeouts: at most 256 and 1024 per wait) and the
 * library's work between them. With nothing after the call, that is the
 * library's own end of the batch: 20 ns median, 31 ns at the 99th
 * percentile on the x86-64 VM this was measured on (a preempted thread is
 * late by the preemption, as every timer is). Equal deadlines fire in the
 * order of the calls that armed them, stamped or not. If the clock cannot
 * be read when the batch ends, the timeout stays armed without a deadline
 * (it does not fire) until a later wait reads the clock and stamps it.
 *
 * Return: 0; -EINVAL if @evt or @tmo is NULL, @evt is not added, or the
 * relative value is negative; outside a callback, for a relative value,
 * clock_gettime()'s error (-EINVAL) if the dispatcher's clock cannot be
 * read; -EBUSY while the dispatcher is being torn down; -ECHILD in a forked
 * child. On failure the previous timeout stays in force.
 */
int event_mod_timeout(struct event *evt, const struct timespec *tmo)
	VENT_NOEXCEPT VENT_SYMBOL(vent_event_mod_timeout);

/**
 * event_wait() - wait once, then run the callbacks
 * @dsp: the dispatcher
 * @sigmask: signal mask to install while waiting (epoll_pwait(2)), or NULL
 *
 * Blocks until at least one fd is ready, a timeout expires or the
 * dispatcher is woken, then runs fd callbacks first and then expired
 * timeouts in deadline order (ties in arming order). The number of timeouts
 * handled per wait is bounded; the rest run on the next wait, which then
 * does not block.
 *
 * Return: 0; -EINTR if a signal interrupted the wait; -EINVAL if @dsp is
 * NULL; -EBUSY from a callback (nested wait) or during teardown; -ECHILD in
 * a forked child; other epoll_pwait(2) errors as -errno.
 */
int event_wait(const struct dispatcher *dsp, const sigset_t *sigmask)
	VENT_NOEXCEPT VENT_SYMBOL(vent_event_wait);

/**
 * event_loop() - call event_wait() until told to stop
 * @dsp: the dispatcher
 * @sigmask: as for event_wait()
 * @err_handler: called with the negative error code when event_wait()
 *               fails; returns ELOOP_CONTINUE to go on, ELOOP_QUIT to make
 *               event_loop() return 0, or a negative code to return. NULL:
 *               the error is returned.
 *
 * Also returns 0 after vent_loop_stop() was called (from any thread).
 *
 * Return: 0, or the negative error code of event_wait() (see there) or of
 * @err_handler.
 */
int event_loop(const struct dispatcher *dsp, const sigset_t *sigmask,
	       int (*err_handler)(int err)) VENT_NOEXCEPT VENT_SYMBOL(vent_event_loop);

/**
 * _event_invoke_callback() - run an event's callback (minivent internal)
 * @evt: an event
 * @reason: REASON_EVENT_OCCURED or REASON_TIMEOUT
 * @events: the epoll mask to pass
 * @reset_reason: reset @evt->reason to 0 afterwards
 *
 * Exported for binary compatibility only. Runs the callback unless it is
 * already running for @evt; if the event is added and the callback returns
 * EVENTCB_REMOVE or EVENTCB_CLEANUP, the event is removed (and cleaned up).
 * The callback runs as if dispatched: a wait on @evt's dispatcher from it
 * (event_wait(), event_loop(), vent_wait()) returns -EBUSY.
 */
void _event_invoke_callback(struct event *evt, unsigned short reason, unsigned int events,
			    bool reset_reason)
	VENT_NOEXCEPT VENT_SYMBOL(vent__event_invoke_callback);

/**
 * __EVENT_INIT() - initialiser for struct event (an expression)
 * @cb: callback (cb_fn)
 * @cln: cleanup (cleanup_fn) or NULL
 * @f: fd or -1
 * @ev: epoll mask
 * @s: timeout seconds
 * @ns: timeout nanoseconds
 *
 * The ON_HEAP variants' cleanup frees the event: it must be at offset 0 of
 * a malloc()ed object.
 */
#ifndef __cplusplus
#define __EVENT_INIT(cb, cln, f, ev, s, ns)	\
	((struct event){			\
		.fd = (f),			\
		.ep.events = (ev),		\
		.callback = (cb),		\
		.cleanup = (cln),		\
		.tmo.tv_sec  = (s),		\
		.tmo.tv_nsec = (ns),		\
	})
#else
/* C++ has no nested designators: an inline function gives the same value. */
static inline struct event vent__event_init(cb_fn cb, cleanup_fn cln, int f, uint32_t ev,
					    long long s, long long ns) noexcept
{
	struct event e = {};
	e.fd = f;
	e.ep.events = ev;
	e.callback = cb;
	e.cleanup = cln;
	e.tmo.tv_sec = static_cast<time_t>(s);
	e.tmo.tv_nsec = static_cast<long>(ns);
	return e;
}
#define __EVENT_INIT(cb, cln, f, ev, s, ns) vent__event_init((cb), (cln), (f), (ev), (s), (ns))
#endif

/*
 * EVENT_W_TMO_ON_STACK(cb, f, ev, us) - fd event with a timeout of @us
 * microseconds (non-negative); its cleanup closes @f.
 */
#define EVENT_W_TMO_ON_STACK(cb, f, ev, us)			\
	__EVENT_INIT(cb, cleanup_event_on_stack, f, ev,		\
		     (us) / 1000000L, (us) % 1000000L * 1000)

/* EVENT_ON_STACK(cb, f, ev) - fd event without timeout; cleanup closes @f. */
#define EVENT_ON_STACK(cb, f, ev) \
	EVENT_W_TMO_ON_STACK(cb, f, ev, 0)

/*
 * TIMER_EVENT_ON_STACK(cb, us) - pure timer firing after @us microseconds.
 * 1 ns is added so that @us = 0 fires on the next wait.
 */
#define TIMER_EVENT_ON_STACK(cb, us)				\
	__EVENT_INIT(cb, cleanup_event_on_stack, -1, 0,		\
		     (us) / 1000000L, (us) % 1000000L * 1000 + 1)

/* EVENT_W_TMO_ON_HEAP(cb, f, ev, us) - as _ON_STACK; cleanup also frees. */
#define EVENT_W_TMO_ON_HEAP(cb, f, ev, us)			\
	__EVENT_INIT(cb, cleanup_event_on_heap, f, ev,		\
		     (us) / 1000000L, (us) % 1000000L * 1000)

/* EVENT_ON_HEAP(cb, f, ev) - as EVENT_ON_STACK; cleanup also frees. */
#define EVENT_ON_HEAP(cb, f, ev)			\
	EVENT_W_TMO_ON_HEAP(cb, f, ev, 0)

/* TIMER_EVENT_ON_HEAP(cb, us) - as TIMER_EVENT_ON_STACK; cleanup also frees. */
#define TIMER_EVENT_ON_HEAP(cb, us)				\
	__EVENT_INIT(cb, cleanup_event_on_heap, -1, 0,		\
		     (us) / 1000000L, (us) % 1000000L * 1000 + 1)

/**
 * typedef timer_cb - callback of a oneshot timer made with TIMER_ON_*()
 * @arg: the argument given to the macro
 */
typedef void (*timer_cb)(void *arg);

/**
 * _call_timer_cb() - event callback behind TIMER_ON_STACK()/TIMER_ON_HEAP()
 * @evt: the &timer_event.e member of a struct timer_event
 * @events: ignored
 *
 * Calls timer_fn(timer_arg).
 *
 * Return: EVENTCB_CLEANUP; -EINVAL if @evt is NULL.
 */
int _call_timer_cb(struct event *evt, uint32_t events)
	VENT_NOEXCEPT VENT_SYMBOL(vent__call_timer_cb);

/**
 * struct timer_event - a oneshot timer with a plain callback
 * @e: the event (first member)
 * @timer_fn: called when the timer fires
 * @timer_arg: its argument
 */
struct timer_event {
	struct event e;
	timer_cb timer_fn;
	void *timer_arg;
};

#ifndef __cplusplus
/* TIMER_ON_STACK(fn, arg, us) - a struct timer_event firing after @us µs. */
#define TIMER_ON_STACK(fn, arg, us)					\
	((struct timer_event){						\
		.e = TIMER_EVENT_ON_STACK(_call_timer_cb, us),		\
		.timer_fn = fn,						\
		.timer_arg = arg,					\
	})

/* TIMER_ON_HEAP(fn, arg, us) - as TIMER_ON_STACK; cleanup frees the object. */
#define TIMER_ON_HEAP(fn, arg, us)					\
	((struct timer_event){						\
		.e = TIMER_EVENT_ON_HEAP(_call_timer_cb, us),		\
		.timer_fn = fn,						\
		.timer_arg = arg,					\
	})
#else
static inline struct timer_event vent__timer_init(struct event e, timer_cb fn, void *arg) noexcept
{
	struct timer_event t = {};
	t.e = e;
	t.timer_fn = fn;
	t.timer_arg = arg;
	return t;
}
#define TIMER_ON_STACK(fn, arg, us) \
	vent__timer_init(TIMER_EVENT_ON_STACK(_call_timer_cb, us), (fn), (arg))
#define TIMER_ON_HEAP(fn, arg, us) \
	vent__timer_init(TIMER_EVENT_ON_HEAP(_call_timer_cb, us), (fn), (arg))
#endif

/* ------------------------------------------------------------------------
 * Loop control (vent extensions)
 */

/**
 * vent_wait() - wait at most @timeout_ms, then run the callbacks
 * @dsp: the dispatcher
 * @timeout_ms: 0 polls without blocking, -1 blocks, N > 0 waits at most N ms
 * @sigmask: as for event_wait()
 *
 * Like event_wait() with a bound. With dispatcher_get_efd() this embeds vent
 * in a foreign loop: when the epoll fd is readable, call vent_wait(@dsp, 0,
 * NULL).
 *
 * Return: the number of callbacks run (0 when the bound expired); -EINVAL if
 * @dsp is NULL or @timeout_ms < -1; -EINTR if a signal interrupted the wait;
 * -EBUSY from a callback or during teardown; -ECHILD in a forked child;
 * other epoll_pwait(2) errors as -errno.
 */
int vent_wait(struct dispatcher *dsp, int timeout_ms, const sigset_t *sigmask) VENT_NOEXCEPT;

/**
 * vent_loop_stop() - make event_loop() return 0
 * @dsp: the dispatcher
 *
 * event_loop() returns 0 after its current iteration; a blocking wait is
 * interrupted. If no event_loop() runs, the next one returns after one
 * iteration. Safe from any thread and from a signal handler.
 *
 * Return: 0; -EINVAL if @dsp is NULL; -ECHILD in a forked child.
 */
int vent_loop_stop(struct dispatcher *dsp) VENT_NOEXCEPT;

/**
 * vent_dispatcher_wake() - interrupt a blocking wait
 * @dsp: the dispatcher
 *
 * The current (or next) event_wait()/vent_wait() returns without waiting
 * for an fd or timeout. Wakeups coalesce. Safe from any thread and from a
 * signal handler.
 *
 * Return: 0; -EINVAL if @dsp is NULL; -ECHILD in a forked child.
 */
int vent_dispatcher_wake(struct dispatcher *dsp) VENT_NOEXCEPT;

/**
 * vent_version() - the library's version
 *
 * Return: a static string such as "1.0.0".
 */
const char *vent_version(void) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* _EVENT_H */
