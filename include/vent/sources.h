/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sources.h - Linux event sources for vent: signals (signalfd), child
 * processes (pidfd) and wakeups (eventfd).
 *
 * Each init function fills an ordinary struct event: @fd, @ep.events =
 * EPOLLIN, @callback, and a default @cleanup that releases what the helper
 * created; every other field is zeroed. The caller may then set @tmo,
 * @flags or its own @cleanup (which must release the source, see each
 * function) and event_add() it. Timeouts, event_modify(), EVENTCB_REMOVE /
 * EVENTCB_CLEANUP and cleanup_dispatcher() work on these events exactly as
 * on any fd: "wait for this child, at most 5 s" is one event with one
 * callback, whose &event.reason tells which came first.
 *
 * Signal rules a user must know:
 *
 * - A signal reaches a signalfd only while it is blocked in EVERY thread of
 *   the process; a thread that leaves it unblocked takes process-directed
 *   signals for itself (default action or handler). vent_signal_init()
 *   blocks the signals in the calling thread only, so call it before
 *   creating threads: threads created afterwards inherit the mask. Threads
 *   that already exist must block the signals themselves.
 * - A signalfd reports the process-directed signals (kill(), sigqueue(), a
 *   terminal) and those directed at the thread that reads it, the
 *   dispatcher's thread. A signal directed at another thread
 *   (pthread_kill(), tgkill(), raise() there) stays pending in that thread,
 *   which inherited the block, and the loop never sees it; the thread gets
 *   it when it unblocks the signal or calls sigwaitinfo().
 * - The library's record of signal sources is process-wide: a signal stays
 *   blocked while any live source in the process watches it, whichever
 *   thread made that source (and, in a forked child, the sources inherited
 *   from the parent count until released or closed). vent only ever changes
 *   the calling thread's mask, so a thread that releases its source while
 *   another thread's source still watches the signal keeps the signal
 *   blocked afterwards; it may unblock it itself once the last source is
 *   gone. A thread created while a source lives counts the inherited block
 *   as vent's: its own source's release unblocks it, and its saved mask
 *   leaves it out.
 * - A blocked mask survives fork() and execve(): a child spawned while a
 *   signal source lives starts with those signals blocked, which breaks
 *   most programs. Get the original mask with vent_signal_saved_mask() and
 *   restore it in the child (posix_spawnattr_setsigmask(), or
 *   pthread_sigmask() after fork()).
 * - Standard signals coalesce while pending (five SIGUSR1 before a read
 *   give one record); real-time signals queue every instance with its
 *   payload, in order.
 *
 * Children: the library never reaps on its own. The callback calls
 * vent_pid_wait(), which reaps without blocking.
 *
 * Threads: init, read, release and wait belong to the dispatcher's thread
 * (signal masks are per thread: release on the thread that called init,
 * or in a forked child).
 * vent_wakeup_signal() may be called from any thread and from a signal
 * handler.
 */
#ifndef VENT_SOURCES_H
#define VENT_SOURCES_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include "defs.h"
#include "event.h"

VENT_BEGIN_DECLS

/**
 * vent_signal_init() - make @evt a signal source
 * @evt: the event to fill (must not be added; every field is overwritten)
 * @signals: the signals to watch: 1..SIGRTMAX except SIGKILL, SIGSTOP and
 *           the signals the C library reserves (32 and 33 with glibc)
 * @cb: the callback; it calls vent_signal_read() to fetch the records
 *
 * Opens a non-blocking, close-on-exec signalfd for @signals and blocks them
 * in the calling thread, remembering which of them were not blocked before.
 * Fills @evt: @fd, @ep.events = EPOLLIN, @callback = @cb, @cleanup =
 * vent_signal_release. Signals already pending when the event is added are
 * reported at once.
 *
 * A dispatcher watches each signal through at most one source: event_add()
 * of a second source for a signal that one of this dispatcher's events
 * already watches fails with -EBUSY (a signal goes to one signalfd reader
 * only, so two sources would split its records arbitrarily).
 *
 * The source keeps a little state inside the library (which signals init
 * blocked, the saved mask), keyed by the signalfd: vent_signal_release()
 * frees it. Closing @evt->fd by other means leaves the signals blocked in
 * the threads that blocked them; the library forgets the source once that
 * fd number is free or holds a file that is not a signalfd (a pipe, a
 * pidfd...), so the new file is never taken for a signal source, and a
 * later vent_signal_init() that gets the number replaces the record. (A
 * signalfd made outside vent on that number cannot be told apart from the
 * closed one.) See the rules at the top of this file (block in every
 * thread; thread-directed signals; masks survive exec). Not
 * async-signal-safe.
 *
 * Return: 0; -EINVAL if @evt, @signals or @cb is NULL, or @signals is empty
 * or holds an invalid signal (0 cannot be in a sigset_t, numbers above
 * SIGRTMAX, SIGKILL, SIGSTOP, reserved ones); -EMFILE, -ENFILE when out of
 * fds; -ENOMEM when out of memory. On failure nothing is created and @evt
 * is unchanged.
 */
int vent_signal_init(struct event *evt, const sigset_t *signals, cb_fn cb) VENT_NOEXCEPT;

/**
 * vent_signal_read() - fetch pending signal records
 * @evt: a signal source made by vent_signal_init()
 * @si: room for @n records
 * @n: the number of records wanted
 *
 * Reads up to @n records without blocking. Call it from the callback until
 * it returns less than @n; real-time signals come one record per instance,
 * in order, with their payload in &signalfd_siginfo.ssi_int /
 * &signalfd_siginfo.ssi_ptr.
 *
 * Return: the number of records read (0 when none is pending, or if @n is
 * 0); -EINVAL if @evt or @si is NULL, or @evt is not a live signal source.
 */
int vent_signal_read(struct event *evt, struct signalfd_siginfo *si, size_t n) VENT_NOEXCEPT;

/**
 * vent_signal_release() - close a signal source and restore the mask
 * @evt: a signal source; NULL, or an event that is not a live signal
 *       source, is a no-op
 *
 * The default cleanup of a signal source (a custom cleanup must call it).
 * Removes @evt from its dispatcher if it is still added, closes the
 * signalfd, sets @evt->fd to -1, frees the library's state for it, and then
 * unblocks in the calling thread the signals that vent blocked for it:
 * those vent_signal_init() blocked, and those the thread had blocked
 * already because of another vent source (its own earlier one, or one it
 * inherited the block from). Signals the thread blocked on its own before
 * init stay blocked. A signal that another live source anywhere in the
 * process still watches (another thread's, or in a forked child an
 * inherited one) stays blocked in the calling thread: vent cannot unblock
 * it there later, when the last source goes (see the rules at the top of
 * this file). Call it on the thread that called vent_signal_init(), or in
 * a forked child. Signals still pending when the mask is restored are
 * delivered to the thread's disposition (default action or handler): drain
 * them with vent_signal_read() first if that is not wanted. Safe in a
 * forked child (it affects only the child).
 */
void vent_signal_release(struct event *evt) VENT_NOEXCEPT;

/**
 * vent_signal_saved_mask() - the signal mask to give a spawned child
 * @evt: a signal source made by vent_signal_init()
 * @mask: where to store the mask
 *
 * Stores the signal mask the thread that called vent_signal_init() had
 * before vent blocked anything in it: the signals blocked for any live
 * vent source of the process are left out, including a block the thread
 * inherited from the thread that made a source, or, in a forked child,
 * from the parent. A blocked mask survives execve(): pass this mask to
 * posix_spawnattr_setsigmask(), or restore it with pthread_sigmask() in
 * the child after fork(). Takes a lock, which is held across fork(): safe
 * in the parent and in a forked child.
 *
 * Return: 0; -EINVAL if @evt or @mask is NULL, or @evt is not a live signal
 * source.
 */
int vent_signal_saved_mask(const struct event *evt, sigset_t *mask) VENT_NOEXCEPT;

/**
 * vent_pid_init() - make @evt a child-exit source for @pid
 * @evt: the event to fill (must not be added; every field is overwritten)
 * @pid: the process to watch (normally a child of the caller)
 * @cb: the callback; it calls vent_pid_wait() to reap the child
 *
 * Opens a pidfd (pidfd_open(2), close-on-exec, non-blocking): the event
 * becomes readable when the process exits. No SIGCHLD handler is involved,
 * and the pidfd pins the process, so a reused pid can never be mistaken for
 * it. The library never reaps: until the callback calls vent_pid_wait() the
 * child stays a zombie (and the event keeps firing). A child that exited
 * before the event was added is reported at once. Fills @evt: @fd,
 * @ep.events = EPOLLIN, @callback = @cb, @cleanup = cleanup_event_on_stack
 * (closes the pidfd; a custom cleanup must close @evt->fd). Removing the
 * event before the child exits and running its cleanup leaves the child to
 * the caller.
 *
 * Return: 0; -EINVAL if @evt or @cb is NULL, or @pid <= 0, or @pid is the
 * id of a thread that is not its process's main thread (a thread is not a
 * process); -ESRCH if no such process exists (already reaped); -ENOSYS if
 * the kernel has no pidfd_open (Linux < 5.3); -EMFILE, -ENFILE when out of
 * fds; -ENOMEM. On failure @evt is unchanged.
 */
int vent_pid_init(struct event *evt, pid_t pid, cb_fn cb) VENT_NOEXCEPT;

/**
 * vent_pid_init_fd() - make @evt a child-exit source for a pidfd
 * @evt: the event to fill (must not be added; every field is overwritten)
 * @pidfd: a pidfd, e.g. from clone3(CLONE_PIDFD) or pidfd_open(2)
 * @cb: the callback; it calls vent_pid_wait() to reap the child
 *
 * As vent_pid_init(), for a pidfd the caller already has. On success the
 * event owns @pidfd: its default cleanup (cleanup_event_on_stack) closes
 * it. On failure the caller still owns it.
 *
 * Return: 0; -EINVAL if @evt or @cb is NULL; -EBADF if @pidfd is not an
 * open pidfd (also an fd of a /proc/<pid> directory, which the pidfd
 * signal call accepts but waitid() and epoll do not); -ENOSYS if the
 * kernel has no pidfd support. On failure @evt is unchanged.
 */
int vent_pid_init_fd(struct event *evt, int pidfd, cb_fn cb) VENT_NOEXCEPT;

/**
 * vent_pid_wait() - reap the child of a pid source without blocking
 * @evt: a pid source made by vent_pid_init() or vent_pid_init_fd()
 * @info: receives the exit information (&siginfo_t.si_pid,
 *        &siginfo_t.si_code CLD_EXITED/CLD_KILLED/CLD_DUMPED,
 *        &siginfo_t.si_status); may be NULL
 *
 * Calls waitid(P_PIDFD, @evt->fd, @info, WEXITED | WNOHANG | __WALL): a
 * child is reaped whatever its exit signal, including a clone3() child
 * with exit_signal 0, which sends none. Usually called from the callback,
 * which then returns EVENTCB_CLEANUP. When another party
 * (a waitpid(-1) loop, a SIGCHLD handler, SIGCHLD set to SIG_IGN) reaped the
 * child first, the event still fires, and this returns -ECHILD.
 *
 * Return: 0 when the child was reaped; -EAGAIN if it has not exited yet;
 * -ECHILD if it is not a child of the calling process or was reaped
 * already; -EINVAL if @evt is NULL; -EBADF if @evt->fd is not an open
 * pidfd.
 */
int vent_pid_wait(struct event *evt, siginfo_t *info) VENT_NOEXCEPT;

/**
 * vent_wakeup_init() - make @evt a waker
 * @evt: the event to fill (must not be added; every field is overwritten)
 * @cb: the callback; it calls vent_wakeup_drain()
 *
 * Opens an eventfd (non-blocking, close-on-exec). Other threads and signal
 * handlers wake the loop with vent_wakeup_signal(); the callback runs on
 * the loop thread. Fills @evt: @fd, @ep.events = EPOLLIN, @callback = @cb,
 * @cleanup = cleanup_event_on_stack (closes the eventfd; a custom cleanup
 * must close @evt->fd). A waker is released by its cleanup; using it after
 * that (vent_wakeup_signal() from a thread that did not notice) is
 * undefined: the fd number may already belong to another file. Stop the
 * signalling threads first.
 *
 * Return: 0; -EINVAL if @evt or @cb is NULL; -EMFILE, -ENFILE when out of
 * fds; -ENOMEM. On failure @evt is unchanged.
 */
int vent_wakeup_init(struct event *evt, cb_fn cb) VENT_NOEXCEPT;

/**
 * vent_wakeup_signal() - wake the loop
 * @evt: a waker made by vent_wakeup_init()
 * @n: the amount to add to the counter (0 adds nothing and wakes no one;
 *     values above UINT64_MAX - 1, the eventfd maximum, are clamped)
 *
 * Adds @n to the waker's counter; the callback runs on the loop thread and
 * vent_wakeup_drain() returns the sum of everything signalled since the
 * previous drain. Never blocks: if the counter is saturated the loop has a
 * pending wakeup already, and that counts as success. Safe from any thread
 * and from a signal handler (async-signal-safe; errno is preserved). Not
 * after the waker's release.
 *
 * Return: 0; -EINVAL if @evt is NULL; -EBADF if @evt->fd is not open (the
 * waker was released).
 */
int vent_wakeup_signal(const struct event *evt, uint64_t n) VENT_NOEXCEPT;

/**
 * vent_wakeup_drain() - read and reset a waker's counter
 * @evt: a waker made by vent_wakeup_init()
 *
 * Non-blocking. Signals coalesce: many vent_wakeup_signal() calls before a
 * drain give one callback and one sum. Call it on the loop thread, normally
 * from the callback (otherwise the callback keeps firing).
 *
 * Return: the sum signalled since the last drain; 0 if none, if @evt is
 * NULL, or if @evt->fd is not an open eventfd.
 */
uint64_t vent_wakeup_drain(struct event *evt) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* VENT_SOURCES_H */
