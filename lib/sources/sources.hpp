// SPDX-License-Identifier: LGPL-2.1-or-later
// sources.hpp - signalfd, pidfd and eventfd sources (C++ internals of
// include/vent/sources.h; the facade fills the struct event).
#pragma once

#include <cstddef>
#include <cstdint>

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/types.h>

namespace vent {

/*
 * Signal sources.
 *
 * struct event has no room for per-source state (its layout is minivent's),
 * yet a signal source must remember which signals its init blocked (to
 * unblock exactly those on release) and the mask to hand to a spawned child.
 * That state lives in a small process-wide registry keyed by the signalfd
 * number, which is unique while the fd is open: signal_open() adds the
 * entry, signal_close() removes it and closes the fd, so a released source
 * leaves nothing behind. The registry also lets event_add() refuse a second
 * source for a signal the dispatcher already watches (add_check.hpp).
 *
 * Thread masks are per thread: signal_open() blocks in the calling thread,
 * signal_close() unblocks in the calling thread. The registry is
 * process-wide: a source records as its own the signals it blocked and
 * those the thread already had blocked for another live source (its own
 * earlier one, or inherited by a later thread or a forked child), and its
 * close unblocks them only when no other live source of the process still
 * watches them. So the mask of a thread is restored when its last source
 * of a signal goes, whatever the order, and a signal another thread's
 * source watches is never unblocked under it.
 *
 * The registry is keyed by fd number: a record whose number was closed
 * without signal_close() (now free, or holding a file that is not a
 * signalfd) is stale, never matched, and dropped when met.
 */

// True if @set is non-empty and holds only signals a signalfd may watch:
// 1..SIGRTMAX, not SIGKILL or SIGSTOP, not the signals the C library
// reserves between the classic and the real-time range.
bool valid_signal_set(const sigset_t &set) noexcept;

// Creates a non-blocking, close-on-exec signalfd for @set, blocks @set in
// the calling thread and records the source. Returns the fd or -errno;
// throws std::bad_alloc (nothing created then).
int signal_open(const sigset_t &set);

// Reads up to @n records; returns how many (0 when none is pending), or
// -errno (-EINVAL if @fd is not a signal source).
int signal_read(int fd, struct signalfd_siginfo *si, size_t n) noexcept;

// True if @fd is a live signal source (its number still holds the signalfd
// that signal_open() made).
bool signal_is_source(int fd) noexcept;

// Forgets the source, closes @fd, then unblocks in the calling thread the
// signals it recorded (unless another live source of the process still
// watches them).
// Returns false (and does nothing) if @fd is not a signal source.
bool signal_close(int fd) noexcept;

// The calling thread's mask at open without what vent blocked for the live
// sources of the process. -EINVAL if @fd is not a signal source.
int signal_saved_mask(int fd, sigset_t &out) noexcept;

/*
 * Child processes: a pidfd per child. The library never reaps on its own;
 * pid_wait() reaps without blocking when the user asks.
 */

// pidfd_open(@pid) non-blocking (close-on-exec is implied). Returns the fd
// or -errno: -ESRCH no such process, -EINVAL @pid is a thread that does not
// lead its process, -ENOSYS kernel without pidfd.
int pid_open(pid_t pid) noexcept;

// 0 if @fd is a pidfd (of a live, exited or reaped process), -EBADF if it
// is not an open pidfd (a /proc/<pid> directory included), -ENOSYS without
// pidfd support.
int pid_check_fd(int fd) noexcept;

// waitid(P_PIDFD, @fd, WEXITED | WNOHANG | __WALL). 0 when reaped (@info filled),
// -EAGAIN if the child has not exited, -ECHILD if it is not our child or
// was reaped already, other -errno from waitid.
int pid_wait(int fd, siginfo_t *info) noexcept;

/*
 * Wakeups: an eventfd counter. wakeup_signal() is async-signal-safe.
 */

// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK). Returns the fd or -errno.
int wakeup_open() noexcept;

// Adds @n (clamped to the eventfd maximum) to the counter; a saturated
// counter is success. Async-signal-safe, preserves errno. 0 or -errno.
int wakeup_signal(int fd, uint64_t n) noexcept;

// Reads and resets the counter; 0 if it was 0 (or on error).
uint64_t wakeup_drain(int fd) noexcept;

} // namespace vent
