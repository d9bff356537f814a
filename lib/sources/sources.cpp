// SPDX-License-Identifier: LGPL-2.1-or-later
#include "sources/sources.hpp"

#include <cerrno>
#include <climits>
#include <cstring>
#include <atomic>
#include <mutex>
#include <new>
#include <vector>

#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vent/event.h>

#include "core/add_check.hpp"
#include "core/dispatcher.hpp"
#include "base/fork_locked.hpp"
#include "base/unique_fd.hpp"
#include "base/wakeup.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

namespace vent {

using detail::UniqueFd;

namespace {

struct SignalSource {
	int fd;
	// The signalfd's identity (all signalfds share one anonymous inode):
	// a number that now holds another kind of file is a stale record.
	dev_t dev;
	ino_t ino;
	sigset_t watched; // what the signalfd reports
	sigset_t blocked; // what release may unblock in the releasing thread
	sigset_t saved;   // the thread's mask without what vent blocked
};

/*
 * The registry of live signal sources, process-wide. Small (one entry per
 * signal source, and a process has at most a few), so a vector and linear
 * scans beat any map. The mutex is taken around fork() (ForkLocked) so
 * that a child, whose free_dispatcher() runs the sources' cleanups, never
 * inherits it locked.
 *
 * Why process-wide and not per thread: a signalfd receives a
 * process-directed signal only while every thread blocks it, and after
 * fork() the child's one thread has a new id yet holds the parent's
 * sources. So whether a signal must stay blocked is a question about all
 * the live sources of the process, whichever thread made them.
 */
// Never destroyed (a source may be released from a static destructor or a
// thread still running at exit), and allocated without the heap:
// instance() is reached from noexcept functions (vent_signal_read(),
// vent_signal_release(), the add check) that may run before any signal
// source exists (base/fork_locked.hpp).
class SignalRegistry : public detail::ForkLocked<SignalRegistry> {
public:
	std::vector<SignalSource> sources_;
	// Read without the lock by the add check, so that programs with no
	// signal source pay nothing on event_add().
	std::atomic<size_t> live_{0};

	// True while @s's number still holds its signalfd. A user who closes
	// the fd without vent_signal_release() leaves the record behind; once
	// the number is free or holds another kind of file, the record is
	// stale and must not make that file a signal source. (A signalfd made
	// outside vent on the same number is indistinguishable; one made by
	// vent_signal_init() replaces the record.)
	static bool current(const SignalSource &s) noexcept
	{
		struct stat st;
		return fstat(s.fd, &st) == 0 && st.st_dev == s.dev && st.st_ino == s.ino;
	}

	SignalSource *find(int fd) noexcept
	{
		for (auto &s : sources_)
			if (s.fd == fd)
				return &s;
		return nullptr;
	}
	// find(), dropping a stale record on the way.
	SignalSource *find_current(int fd) noexcept
	{
		SignalSource *s = find(fd);
		if (s && !current(*s)) {
			erase(s);
			return nullptr;
		}
		return s;
	}
	void erase(SignalSource *s) noexcept
	{
		*s = sources_.back();
		sources_.pop_back();
		live_.store(sources_.size(), std::memory_order_relaxed);
	}
	// Drops every stale record (one fstat() per source).
	void prune() noexcept
	{
		for (size_t i = 0; i < sources_.size();) {
			if (current(sources_[i]))
				i++;
			else
				erase(&sources_[i]);
		}
	}
};

/*
 * Not sigandset()/sigisemptyset(): glibc 2.36's sigisemptyset() folds each
 * word into an int and misses signals 33..64 (the real-time range), and
 * only the first _NSIG - 1 bits of a sigset_t are defined anyway.
 */
bool overlaps(const sigset_t &a, const sigset_t &b) noexcept
{
	for (int sig = 1; sig < _NSIG; sig++)
		if (sigismember(&a, sig) == 1 && sigismember(&b, sig) == 1)
			return true;
	return false;
}

bool is_empty(const sigset_t &set) noexcept
{
	for (int sig = 1; sig < _NSIG; sig++)
		if (sigismember(&set, sig) == 1)
			return false;
	return true;
}

/*
 * event_add() veto: a signal is delivered to one signalfd reader only, so
 * two sources for one signal on one dispatcher would split its records
 * arbitrarily. Sources on different dispatchers (one per thread) are the
 * caller's business. O(signal sources) under the registry lock; an fd that
 * is not a source costs no system call.
 */
int check_signal_add(const Dispatcher &d, const struct event *evt) noexcept
{
	SignalRegistry &reg = SignalRegistry::instance();
	if (reg.live_.load(std::memory_order_relaxed) == 0)
		return 0;
	std::lock_guard lock(reg.mu_);
	const SignalSource *self = reg.find_current(evt->fd);
	if (!self)
		return 0;
	for (const auto &other : reg.sources_) {
		if (other.fd != self->fd && overlaps(other.watched, self->watched) &&
		    d.watches_fd(other.fd) && SignalRegistry::current(other))
			return -EBUSY;
	}
	return 0;
}

} // namespace

bool valid_signal_set(const sigset_t &set) noexcept
{
	// Only signals 1.._NSIG-1 exist for the kernel. glibc's sigset_t has
	// room for 1024 bits, but sigemptyset() clears only the first _NSIG-1
	// and the kernel ignores the rest, so bits beyond cannot be judged
	// (and are harmless): a set without a valid signal is simply empty.
	bool any = false;
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sigismember(&set, sig) != 1)
			continue;
		if (sig > SIGRTMAX || sig == SIGKILL || sig == SIGSTOP ||
		    (sig > SIGSYS && sig < SIGRTMIN))
			return false;
		any = true;
	}
	return any;
}

int signal_open(const sigset_t &set)
{
	if (!valid_signal_set(set))
		return -EINVAL;
	SignalRegistry &reg = SignalRegistry::instance();
	detail::set_add_check(check_signal_add);

	std::lock_guard lock(reg.mu_);
	// Allocate before creating anything: bad_alloc leaves no trace.
	reg.sources_.reserve(reg.sources_.size() + 1);
	reg.prune();

	UniqueFd fd(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
	if (!fd)
		return -errno;
	struct stat st;
	if (fstat(fd.get(), &st) < 0)
		return -errno;

	SignalSource src;
	src.fd = fd.get();
	src.dev = st.st_dev;
	src.ino = st.st_ino;
	src.watched = set;
	// What vent keeps blocked for the live sources of the process. A
	// thread that has one of them blocked got it from vent: from an
	// earlier source of its own, or inherited from the thread that made
	// one (a thread created later, the forked child of a source's owner).
	sigset_t vents;
	sigemptyset(&vents);
	for (const auto &other : reg.sources_)
		for (int sig = 1; sig <= SIGRTMAX; sig++)
			if (sigismember(&other.blocked, sig) == 1)
				sigaddset(&vents, sig);
	sigset_t old;
	// Cannot fail with a valid set (the reserved signals were refused).
	pthread_sigmask(SIG_BLOCK, &set, &old);
	// Release may unblock what this init blocked and what vent had
	// blocked already; never what the thread blocked on its own.
	sigemptyset(&src.blocked);
	for (int sig = 1; sig <= SIGRTMAX; sig++) {
		if (sigismember(&set, sig) == 1 &&
		    (sigismember(&old, sig) == 0 || sigismember(&vents, sig) == 1))
			sigaddset(&src.blocked, sig);
	}
	// The saved mask is the one the thread would have without vent.
	src.saved = old;
	for (int sig = 1; sig <= SIGRTMAX; sig++)
		if (sigismember(&vents, sig) == 1)
			sigdelset(&src.saved, sig);

	// A record still under this number would be stale (prune() dropped
	// it unless another thread raced a close): the number is ours now.
	if (SignalSource *stale = reg.find(src.fd))
		reg.erase(stale);
	reg.sources_.push_back(src);
	reg.live_.store(reg.sources_.size(), std::memory_order_relaxed);
	return fd.release();
}

int signal_read(int fd, struct signalfd_siginfo *si, size_t n) noexcept
{
	{
		SignalRegistry &reg = SignalRegistry::instance();
		std::lock_guard lock(reg.mu_);
		if (!reg.find_current(fd))
			return -EINVAL;
	}
	if (n > INT_MAX)
		n = INT_MAX;
	size_t got = 0;
	while (got < n) {
		const size_t want = n - got;
		ssize_t r = read(fd, si + got, want * sizeof(*si));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || got > 0)
				break;
			return -errno;
		}
		got += static_cast<size_t>(r) / sizeof(*si);
		// A short read means the queue is empty: spare the EAGAIN call.
		if (static_cast<size_t>(r) < want * sizeof(*si))
			break;
	}
	return static_cast<int>(got);
}

bool signal_is_source(int fd) noexcept
{
	SignalRegistry &reg = SignalRegistry::instance();
	if (reg.live_.load(std::memory_order_relaxed) == 0)
		return false;
	std::lock_guard lock(reg.mu_);
	return reg.find_current(fd) != nullptr;
}

bool signal_close(int fd) noexcept
{
	SignalRegistry &reg = SignalRegistry::instance();
	sigset_t unblock;
	{
		std::lock_guard lock(reg.mu_);
		// Stale records must not keep a signal blocked.
		reg.prune();
		SignalSource *src = reg.find(fd);
		if (!src)
			return false;
		unblock = src->blocked;
		// A signal that another live source of the process still watches
		// stays blocked in this thread, whichever thread (or parent, in a
		// forked child) made that source: unblocked here, a
		// process-directed instance could land in this thread and take
		// the default action. That source's release unblocks it in the
		// thread that calls it.
		for (int sig = 1; sig <= SIGRTMAX; sig++) {
			if (sigismember(&unblock, sig) != 1)
				continue;
			for (const auto &other : reg.sources_) {
				if (&other != src && sigismember(&other.watched, sig) == 1) {
					sigdelset(&unblock, sig);
					break;
				}
			}
		}
		reg.erase(src);
	}
	// Close first: a signal pending now goes to the thread's restored
	// disposition, not to a signalfd nobody reads.
	UniqueFd(fd).reset();
	if (!is_empty(unblock))
		pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
	return true;
}

int signal_saved_mask(int fd, sigset_t &out) noexcept
{
	SignalRegistry &reg = SignalRegistry::instance();
	std::lock_guard lock(reg.mu_);
	const SignalSource *src = reg.find_current(fd);
	if (!src)
		return -EINVAL;
	out = src->saved;
	return 0;
}

int pid_open(pid_t pid) noexcept
{
	int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, PIDFD_NONBLOCK));
	// PIDFD_NONBLOCK arrived in Linux 5.10; waitid() uses WNOHANG anyway.
	if (fd < 0 && errno == EINVAL)
		fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
	if (fd >= 0)
		return fd;
	// The id of a live thread that does not lead its thread group: Linux
	// answers ENOENT (older kernels EINVAL). Either way @pid names no process.
	return errno == ENOENT ? -EINVAL : -errno;
}

int pid_check_fd(int fd) noexcept
{
	// pidfd_send_signal() takes two kinds of fd: pidfds and directories
	// of /proc/<pid>. A pidfd is never a directory (an anonymous inode
	// before Linux 6.9, a pidfs file since), and waitid(P_PIDFD) and
	// epoll refuse the directory, so refuse it here.
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EBADF;
	// Signal 0 checks the fd without touching the process. The kernel
	// answers EBADF for anything that is not a pidfd; ESRCH (gone) and
	// EPERM (not ours to signal) still prove it is one.
	if (syscall(SYS_pidfd_send_signal, fd, 0, nullptr, 0) == 0)
		return 0;
	if (errno == ESRCH || errno == EPERM)
		return 0;
	return -errno;
}

int pid_wait(int fd, siginfo_t *info) noexcept
{
	siginfo_t local;
	siginfo_t *si = info ? info : &local;
	std::memset(si, 0, sizeof(*si));
	// __WALL: without it waitid() only reaps children whose exit signal is
	// SIGCHLD, and a clone3(CLONE_PIDFD) child with exit_signal 0 (the
	// usual choice with pidfds) would stay a zombie for ever.
	if (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), si,
		   WEXITED | WNOHANG | __WALL) < 0)
		return -errno;
	// WNOHANG: a zero si_pid means "not exited yet".
	return si->si_pid == 0 ? -EAGAIN : 0;
}

int wakeup_open() noexcept
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

// A counting wakeup (the user's own eventfd), not a coalescing one: the
// eventfd helpers of base/wakeup.hpp.
int wakeup_signal(int fd, uint64_t n) noexcept
{
	return detail::eventfd_add(fd, n);
}

uint64_t wakeup_drain(int fd) noexcept
{
	return detail::eventfd_drain(fd);
}

} // namespace vent
