// SPDX-License-Identifier: LGPL-2.1-or-later
#include "core/dispatcher.hpp"

#include <algorithm>
#include <cerrno>

#include <cstdio>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/add_check.hpp"
#include "base/capi.hpp"
#include "base/epoll_fdinfo.hpp"
#include "base/timer_fd.hpp"

namespace vent {

using detail::kNever;
using detail::kNotQueued;
using detail::UniqueFd;

namespace {

// User code runs in noexcept frames: a C++ callback that throws terminates
// here instead of unwinding through library state.
int call_callback(cb_fn cb, struct event *evt, uint32_t events) noexcept
{
	return cb(evt, events);
}

void call_cleanup(cleanup_fn fn, struct event *evt) noexcept
{
	fn(evt);
}

// Private flag bits of struct event (bits 8 and up belong to the library).
constexpr unsigned short kPrivateFlags = 0xff00;

} // namespace

Dispatcher::Dispatcher(int clock) : clock_(clock), heap_(SlotPos{this})
{
	// timerfd first: it is what rejects an unsupported clock with EINVAL.
	UniqueFd tfd = detail::timer_open(clock);
	// timerfd_create() accepts clocks that cannot be read: an alarm clock
	// as root on a host without an RTC. Every deadline needs a read.
	struct timespec ts;
	if (int rc = detail::clock_now(clock, ts); rc < 0)
		throw std::system_error(-rc, std::generic_category());
	UniqueFd epfd(epoll_create1(EPOLL_CLOEXEC));
	if (!epfd)
		detail::throw_errno();

	struct epoll_event ev = {};
	ev.events = EPOLLIN;
	ev.data.u64 = kTimerId;
	if (epoll_ctl(epfd.get(), EPOLL_CTL_ADD, tfd.get(), &ev) < 0)
		detail::throw_errno();
	ev.data.u64 = kWakeId;
	if (epoll_ctl(epfd.get(), EPOLL_CTL_ADD, wake_.fd(), &ev) < 0)
		detail::throw_errno();

	// The timer batch never allocates during dispatch.
	expired_.reserve(kTimerBudget);

	epfd_ = std::move(epfd);
	tfd_ = std::move(tfd);
}

// Only closes fds and frees memory: no epoll_ctl(), no timerfd_settime(),
// so that a forked child's free_dispatcher() leaves the parent's kernel
// objects alone.
Dispatcher::~Dispatcher() = default;

uint32_t Dispatcher::slot_of(const struct event *evt) const noexcept
{
	uint32_t slot = data_slot(evt);
	if (slot < slots_.size() && slots_[slot].evt == evt)
		return slot;
	return kNoSlot;
}

int Dispatcher::efd() noexcept
{
	if (!front_) {
		UniqueFd front(epoll_create1(EPOLL_CLOEXEC));
		if (!front)
			return -errno;
		struct epoll_event ev = {};
		ev.events = EPOLLIN;
		if (epoll_ctl(front.get(), EPOLL_CTL_ADD, epfd_.get(), &ev) < 0)
			return -errno;
		front_ = std::move(front);
	}
	return front_.get();
}

int Dispatcher::epoll_set(int op, int fd, uint32_t mask, uint64_t id) noexcept
{
	struct epoll_event ev;
	ev.events = mask;
	ev.data.u64 = id;
	return epoll_ctl(epfd_.get(), op, fd, &ev) < 0 ? -errno : 0;
}

/*
 * Puts @evt's fd into the epoll set with @mask and makes @slot its owner.
 *
 * EEXIST from the kernel while no live, enabled vent event holds the fd
 * means the registration is an orphan: a previous event's fd was closed
 * before its removal while a duplicate kept the file open. Take it over
 * with EPOLL_CTL_MOD instead of failing.
 */
int Dispatcher::register_fd(uint32_t slot, struct event *evt, uint32_t mask) noexcept
{
	const int fd = evt->fd;
	const uint32_t owner = fd_owner_[fd].slot;
	// The same event registering its fd again (re-enabled after a mask of
	// 0) keeps its generation: readiness fetched before is still its own.
	// Anything else is a new registration.
	const uint32_t gen = owner == slot ? fd_owner_[fd].gen : reg_gen_ + 1;
	const uint64_t id = record_id(slot, gen);
	int rc = epoll_set(EPOLL_CTL_ADD, fd, mask, id);
	if (rc == -EEXIST) {
		if (owner != kNoSlot && owner != slot && data_mask(slots_[owner].evt) != 0)
			return -EEXIST;
		rc = epoll_set(EPOLL_CTL_MOD, fd, mask, id);
	}
	if (rc < 0)
		return rc;
	if (mask == 0) {
		// A disabled event must stay silent, but the kernel always
		// reports EPOLLERR/EPOLLHUP: keep the fd out of the set. The
		// ADD above only validated it, as epoll would for any fd.
		epoll_set(EPOLL_CTL_DEL, fd, 0, 0);
	}
	if (owner != slot) {
		reg_gen_ = gen;
		// Records of the previous owner's registration, if any, are
		// stale from now on: count it as a removal so that they are not
		// taken for an orphan (see wait_inner()).
		if (owner != kNoSlot) {
			batch_removals_++;
			if (struct event *prev = slots_[owner].evt)
				prev->flags &= static_cast<unsigned short>(~kOwnsFdFlag);
		}
	}
	fd_owner_[fd] = FdOwner{slot, gen};
	evt->flags |= kOwnsFdFlag;
	set_data(evt, slot, mask);
	return 0;
}

/*
 * The fd number whose fd table entry @slot holds, or -1. That is evt->fd,
 * unless the user changed evt->fd while the event was added: then the table
 * is searched (O(fd numbers), only on that misuse), so that what the library
 * registered is what it unregisters.
 */
int Dispatcher::registered_fd(uint32_t slot, const struct event *evt) const noexcept
{
	if (!(evt->flags & kOwnsFdFlag))
		return -1;
	const int fd = evt->fd;
	if (fd >= 0 && static_cast<size_t>(fd) < fd_owner_.size() && fd_owner_[fd].slot == slot)
		return fd;
	for (size_t i = 0; i < fd_owner_.size(); i++)
		if (fd_owner_[i].slot == slot)
			return static_cast<int>(i);
	return -1;
}

void Dispatcher::unregister_fd(uint32_t slot, struct event *evt) noexcept
{
	// Only the owner may delete: if the fd number was closed and reused by
	// a newer event, the kernel registration belongs to that event (which
	// took kOwnsFdFlag from this one). A failed DEL (fd already closed) is
	// harmless: the kernel dropped the registration, or, if a duplicate
	// keeps the file open, the orphan is purged when it first reports (see
	// wait_inner()).
	const int fd = registered_fd(slot, evt);
	if (fd >= 0) {
		if (data_mask(evt) != 0)
			epoll_set(EPOLL_CTL_DEL, fd, 0, 0);
		fd_owner_[fd].slot = kNoSlot;
	}
	evt->flags &= static_cast<unsigned short>(~kOwnsFdFlag);
	set_data(evt, slot, 0);
}

void Dispatcher::release_slot(uint32_t slot) noexcept
{
	Slot &s = slots_[slot];
	s.evt = nullptr;
	s.when = kNever;
	slots_.release(slot);
	live_--;
	for (CallbackFrame *f = frames_; f; f = f->prev)
		if (f->slot == slot)
			f->released = true;
}

int Dispatcher::add(struct event *evt)
{
	if (tearing_down_ || destroyed_)
		return -EBUSY;
	const int fd = evt->fd;
	if (fd < -1)
		return -EBADF;
	// The dispatcher's own epoll fd (the front set, see front_): epoll
	// refuses the inner set itself with EINVAL, and would call this one a
	// loop.
	if (fd >= 0 && fd == front_.get())
		return -EINVAL;
	// Module veto (add_check.hpp): e.g. -EBUSY for a second signal source
	// of the same signal on this dispatcher.
	if (fd >= 0) {
		if (int rc = detail::run_add_check(*this, evt); rc < 0)
			return rc;
	}

	const struct timespec tmo = evt->tmo;
	const bool timed = tmo.tv_sec != 0 || tmo.tv_nsec != 0;
	int64_t deadline = kNever;
	struct timespec abs = {0, 0};
	if (timed) {
		heap_.prefetch(heap_.size());
		if (int rc = deadline_for(tmo, evt->flags & TMO_ABS, deadline, abs); rc < 0)
			return rc;
	}

	// Every allocation happens before the kernel is touched, so an
	// allocation failure (thrown to the facade) leaves nothing behind.
	slots_.reserve_one(64);
	if (timed)
		heap_.reserve_one();
	if (fd >= 0 && static_cast<size_t>(fd) >= fd_owner_.size()) {
		// The table is sized by fd number: check that the number is an
		// open fd before growing it, or a bogus one (INT_MAX) would cost
		// gigabytes instead of -EBADF. Only on growth, so rarely.
		if (fcntl(fd, F_GETFD) < 0)
			return -errno;
		fd_owner_.resize(std::max<size_t>(fd + 1, fd_owner_.size() * 2),
				 FdOwner{kNoSlot, 0});
	}

	const uint32_t slot = slots_.take();
	Slot &s = slots_[slot];
	s.evt = evt;
	s.when = kNever;
	s.seq = 0;
	s.heap_pos = kNotQueued;
	live_++;
	set_data(evt, slot, 0);
	evt->flags &= static_cast<unsigned short>(~kPrivateFlags);

	if (fd >= 0) {
		evt->flags |= kFdEventFlag;
		int rc = register_fd(slot, evt, evt->ep.events);
		if (rc < 0) {
			// Nothing was registered: the slot goes back
			// uncounted (batch_removals_ counts removals).
			release_slot(slot);
			evt->flags &= static_cast<unsigned short>(~kPrivateFlags);
			return rc;
		}
	}

	evt->reason = REASON_EVENT_OCCURED;
	// A deadline clamped to "never" needs no heap entry: it is kept as
	// no timeout.
	if (deadline == kStampPending) {
		deadline = kNever;
		abs = detail::deadline_to_timespec(kNever);
	}
	if (timed && deadline != kNever) {
		const uint32_t seq = heap_.next_seq();
		s.when = deadline;
		s.seq = seq;
		heap_.push(deadline, slot, seq);
		if (depth_ == 0 && timer_stale())
			arm_timer();
	}
	evt->tmo = abs;
	return 0;
}

// The end of every removal, once the fd is dealt with: the timeout, the
// slot, and the two fields of the user's struct that say "added".
void Dispatcher::forget(uint32_t slot, struct event *evt) noexcept
{
	clear_timeout(slots_[slot]);
	release_slot(slot);
	// Records of this event fetched in the current batch are stale now,
	// not orphans (see wait_inner()).
	batch_removals_++;
	evt->dsp = nullptr;
	evt->flags &= static_cast<unsigned short>(~(kRunningFlag | kFdEventFlag | kOwnsFdFlag));
}

int Dispatcher::remove(struct event *evt) noexcept
{
	uint32_t slot = slot_of(evt);
	if (slot == kNoSlot)
		return -EINVAL;
	unregister_fd(slot, evt);
	forget(slot, evt);
	// No timer re-arm: a timer that fires for nothing costs one wakeup,
	// which is cheaper than a syscall on every removal.
	return 0;
}

int Dispatcher::modify(struct event *evt) noexcept
{
	if (tearing_down_ || destroyed_)
		return -EBUSY;
	uint32_t slot = slot_of(evt);
	if (slot == kNoSlot)
		return -EINVAL;
	const int fd = evt->fd;
	// evt->fd changed since event_add() (a pure timer given an fd, an fd
	// event given -1 or another number): refuse rather than register a
	// second fd for one event (see registered_fd()).
	if ((fd >= 0) != static_cast<bool>(evt->flags & kFdEventFlag))
		return -EINVAL;
	if (fd < 0)
		return 0;
	if ((evt->flags & kOwnsFdFlag) &&
	    (static_cast<size_t>(fd) >= fd_owner_.size() || fd_owner_[fd].slot != slot))
		return -EINVAL;
	const uint32_t want = evt->ep.events;
	const uint32_t have = data_mask(evt);

	if (fd_owner_[fd].slot != slot) {
		// Another event took the fd number while this one was disabled
		// (or after this one's fd was closed): register anew, which
		// fails with EEXIST if the other one is enabled.
		if (want == 0) {
			set_data(evt, slot, 0);
			return 0;
		}
		return register_fd(slot, evt, want);
	}
	// An unchanged mask needs no syscall, except to re-arm: a oneshot
	// registration the kernel disabled after it fired, or an edge-triggered
	// one whose readiness the caller wants checked again. EPOLL_CTL_MOD
	// does both, as minivent's event_modify() always does.
	if (want == have && !(want & (EPOLLONESHOT | EPOLLET)))
		return 0;
	if (want == 0) {
		epoll_set(EPOLL_CTL_DEL, fd, 0, 0);
		set_data(evt, slot, 0);
		return 0;
	}
	if (have == 0)
		return register_fd(slot, evt, want);
	int rc = epoll_set(EPOLL_CTL_MOD, fd, want, record_id(slot, fd_owner_[fd].gen));
	if (rc < 0)
		return rc;
	set_data(evt, slot, want);
	return 0;
}

int Dispatcher::mod_timeout(struct event *evt, const struct timespec &tmo) noexcept
{
	if (tearing_down_ || destroyed_)
		return -EBUSY;
	uint32_t slot = slot_of(evt);
	if (slot == kNoSlot)
		return -EINVAL;
	Slot &s = slots_[slot];

	if (tmo.tv_sec == 0 && tmo.tv_nsec == 0) {
		clear_timeout(s);
		evt->tmo = {0, 0};
		return 0;
	}

	const uint32_t pos = s.heap_pos;
	if (dispatching_ && !(evt->flags & TMO_ABS)) {
		// A negative value fails now, as it would outside a batch.
		int64_t d;
		if ((tmo.tv_sec < 0 || static_cast<unsigned long>(tmo.tv_nsec) >=
					       static_cast<unsigned long>(detail::kNsPerSec)) &&
		    !detail::timespec_to_deadline(tmo, false, 0, d))
			return -EINVAL;
		if (stamp_later(slot, s, tmo, pos))
			return 0;
	}
	// The entry is read only if the deadline moves earlier; the load
	// overlaps with the clock read (which orders loads, not prefetches).
	if (pos != kNotQueued)
		heap_.prefetch_entry(pos);
	int64_t deadline;
	struct timespec abs;
	if (int rc = deadline_for(tmo, evt->flags & TMO_ABS, deadline, abs); rc < 0)
		return rc;
	if (deadline >= kStampPending) {
		// kNever, or the one value below it that is reserved.
		clear_timeout(s);
		evt->tmo = detail::deadline_to_timespec(kNever);
		return 0;
	}
	if (pos == kNotQueued) {
		// No timeout, or a due one (a re-arm from an earlier callback of
		// the batch replaces it: the batch skips queued slots).
		try {
			heap_.reserve_one();
		} catch (...) {
			return -ENOMEM;
		}
		const uint32_t seq = heap_.next_seq();
		heap_.push(deadline, slot, seq);
		s.seq = seq;
	} else {
		// Queued. A later deadline leaves the entry's earlier key in
		// place (see Slot): no heap line is touched. Only a deadline
		// before the entry's key moves the entry.
		s.seq = heap_.next_seq();
		if (deadline < s.when && deadline < heap_.at(pos).when)
			heap_.update(pos, deadline, s.seq);
	}
	s.when = deadline;
	evt->tmo = abs;
	if (depth_ == 0 && timer_stale())
		arm_timer();
	return 0;
}

/*
 * The re-arm of mod_timeout() from a callback with a relative @tmo: no clock
 * read now; the deadline is stamped from the clock read that ends the batch
 * (stamp_pending()), so it is never early and late by at most the rest of
 * the batch. The old timeout ends here as with any re-arm: the slot takes
 * the key (kStampPending, a fresh arm sequence), which its heap entry's key
 * is not after, so a due or queued old deadline no longer fires. Returns
 * false, having changed nothing, if the stamp cannot be recorded (out of
 * memory): the caller then reads the clock as outside a batch.
 */
bool Dispatcher::stamp_later(uint32_t slot, Slot &s, const struct timespec &tmo,
			     uint32_t pos) noexcept
{
	try {
		if (stamps_.size() == stamps_.capacity())
			stamps_.reserve(std::max<size_t>(64, stamps_.capacity() * 2));
		if (pos == kNotQueued)
			heap_.reserve_one();
	} catch (...) {
		return false;
	}
	const uint32_t seq = heap_.next_seq();
	// A due or unarmed timeout gets an entry under the pending key: it
	// sifts no further than its parent, being after every real deadline.
	const int64_t floor = pos == kNotQueued ? kStampPending : s.when;
	if (pos == kNotQueued)
		heap_.push(kStampPending, slot, seq);
	s.when = kStampPending;
	s.seq = seq;
	stamps_.push_back(Stamp{tmo, floor, slot, seq});
	return true;
}

void Dispatcher::stamp_pending() noexcept
{
	if (stamps_.empty())
		return;
	struct timespec t;
	if (detail::clock_now(clock_, t) < 0)
		return;
	const bool floors = stamp_floors_;
	for (const Stamp &st : stamps_) {
		Slot &s = slots_[st.slot];
		if (!s.evt || s.when != kStampPending || s.seq != st.seq)
			continue;
		int64_t deadline = kNever;
		struct timespec abs = {0, 0};
		// The sign was checked by the call (mod_timeout()).
		if (!detail::relative_deadline(t, st.rel, deadline, abs) ||
		    deadline >= kStampPending) {
			clear_timeout(s);
			s.evt->tmo = detail::deadline_to_timespec(kNever);
			continue;
		}
		// As any re-arm: the entry moves only if its key is after the
		// new one (it holds kStampPending, or an older, later key); a
		// deadline not before the floor cannot be.
		if ((!floors || deadline < st.floor) && deadline < heap_.at(s.heap_pos).when)
			heap_.update(s.heap_pos, deadline, st.seq);
		s.when = deadline;
		s.evt->tmo = abs;
	}
	stamps_.clear();
	stamp_floors_ = true;
}

/*
 * Brings the timerfd in line with the heap. Called when a wait ends (the
 * one place where the earliest deadline is known after all callbacks), and
 * on changes made outside any wait so that a foreign loop polling the epoll
 * fd sees the timer too. No syscall unless the top moved earlier than what
 * the kernel holds, or the kernel timer expired.
 */
void Dispatcher::arm_timer() noexcept
{
	if (!timer_stale())
		return;
	if (heap_.empty() || heap_.top().when >= kStampPending) {
		disarm_timer();
		return;
	}
	const int64_t top = heap_.top().when;
	if (detail::timer_set(tfd_.get(), top) == 0) {
		armed_ = top;
		timer_fired_ = false;
	}
}

void Dispatcher::disarm_timer() noexcept
{
	detail::timer_set(tfd_.get(), kNever);
	armed_ = kNever;
	timer_fired_ = false;
}

// Inline: it runs once per delivered event, and its callers are all here.
[[gnu::always_inline]] inline bool Dispatcher::run_callback(uint32_t slot, unsigned short reason,
							    uint32_t events) noexcept
{
	struct event *evt = slots_[slot].evt;
	const uint64_t epoch = epoch_;
	CallbackFrame frame{slot, false, frames_};

	evt->reason = reason;
	evt->flags |= kRunningFlag;
	frames_ = &frame;
	int rc = call_callback(evt->callback, evt, events);
	frames_ = frame.prev;
	ncallbacks_++;

	// The callback may have freed or cleaned the dispatcher, or removed
	// (and maybe re-added) its own event: then the return value is moot
	// and @evt may already be gone (removal cleared the running bit).
	if (batch_aborted(epoch) || frame.released)
		return false;
	evt->flags &= static_cast<unsigned short>(~kRunningFlag);
	if (rc == EVENTCB_REMOVE) {
		remove(evt);
		return false;
	}
	if (rc == EVENTCB_CLEANUP) {
		cleanup_fn fn = evt->cleanup;
		remove(evt);
		if (fn)
			call_cleanup(fn, evt);
		return false;
	}
	return true;
}

void Dispatcher::dispatch_timeouts(uint64_t epoch) noexcept
{
	// Without a clock read, the deadline the kernel saw pass is "now":
	// what is due by it runs, nothing later does.
	int64_t t;
	if (now(t) < 0)
		t = fired_at_ == kNever ? std::numeric_limits<int64_t>::min() : fired_at_;
	// Collect first, then call: a timeout re-armed to the past from its
	// own callback goes back into the heap and waits for the next wait,
	// so fd events keep being served.
	expired_.clear();
	for (size_t budget = kTimerBudget; budget > 0 && !heap_.empty(); budget--) {
		const auto &top = heap_.top();
		if (top.when > t)
			break;
		Slot &s = slots_[top.id];
		if (s.when == top.when && s.seq == top.seq) {
			expired_.push_back(top.id);
			heap_.pop();
		} else {
			// Moved later since it was queued: re-queue under the
			// slot's key (which may be due too: it then comes up
			// again in its place in the order). The pending key
			// is after the floor of the slot's stamp.
			if (s.when == kStampPending)
				stamp_floors_ = false;
			heap_.update(0, s.when, s.seq);
		}
	}
	for (uint32_t slot : expired_) {
		if (batch_aborted(epoch))
			break;
		Slot &s = slots_[slot];
		// Skip events removed, or whose timeout was moved or cancelled,
		// by an earlier callback of this batch: only the collection
		// above leaves a live slot due (a deadline, not queued), and
		// removal, a re-add into the slot, a re-arm and a cancel all end
		// that state.
		if (!s.evt || s.heap_pos != kNotQueued || s.when == kNever)
			continue;
		s.when = kNever;
		s.evt->tmo = {0, 0};
		run_callback(slot, REASON_TIMEOUT, 0);
	}
	// If the budget ran out, the timer fired state makes arm_timer() re-arm
	// for the (past) top, so the next wait returns at once.
}

/*
 * Replaces the kernel epoll set by a fresh one, so that orphaned
 * registrations (an fd closed before its removal while a dup kept the file
 * open) disappear. An outer epoll holds the front set (see front_), which
 * stays: the fresh set takes the old one's place inside it. Without a front
 * set the fresh one goes under the old fd number (dup3).
 *
 * The fresh set is built from the kernel's own list of registrations
 * (/proc/self/fdinfo of the epoll fd: target fd, data, inode), not from
 * vent's fd table: an fd number that a live event still names may have been
 * closed and reused for an unrelated file, and re-adding it by number would
 * hand that file's readiness to the stale event. A registration is kept
 * only if its data is a live id whose event still has that fd number and
 * the number still names the same inode. O(registrations), and only after
 * an orphan actually reported. Without /proc the set is left as it is.
 */
void Dispatcher::rebuild_epoll() noexcept
{
	detail::EpollFdinfo info(epfd_.get());
	if (!info) {
		rebuild_needed_ = false;
		return;
	}
	UniqueFd fresh(epoll_create1(EPOLL_CLOEXEC));
	if (!fresh)
		return;
	struct epoll_event ev = {};
	ev.events = EPOLLIN;
	ev.data.u64 = kTimerId;
	if (epoll_ctl(fresh.get(), EPOLL_CTL_ADD, tfd_.get(), &ev) < 0)
		return;
	ev.data.u64 = kWakeId;
	if (epoll_ctl(fresh.get(), EPOLL_CTL_ADD, wake_.fd(), &ev) < 0)
		return;

	detail::EpollRecord rec;
	int more;
	while ((more = info.next(rec)) > 0) {
		if (rec.data == kTimerId || rec.data == kWakeId)
			continue;
		const uint32_t slot = static_cast<uint32_t>(rec.data);
		const uint32_t gen = static_cast<uint32_t>(rec.data >> 32);
		struct stat st;
		const struct event *evt = record_owner(slot, gen);
		if (evt && evt->fd == rec.fd && fstat(rec.fd, &st) == 0 && st.st_ino == rec.ino) {
			ev.events = data_mask(evt);
			ev.data.u64 = rec.data;
			// ENOSPC/ENOMEM: keep the old set (and the
			// orphan) rather than lose a live event.
			if (epoll_ctl(fresh.get(), EPOLL_CTL_ADD, rec.fd, &ev) < 0)
				return;
		}
	}
	if (more < 0)
		return;
	if (front_) {
		ev.events = EPOLLIN;
		ev.data.u64 = 0;
		if (epoll_ctl(front_.get(), EPOLL_CTL_ADD, fresh.get(), &ev) < 0)
			return;
		epoll_ctl(front_.get(), EPOLL_CTL_DEL, epfd_.get(), &ev);
		epfd_ = std::move(fresh);
	} else if (dup3(fresh.get(), epfd_.get(), O_CLOEXEC) < 0) {
		return;
	}
	rebuild_needed_ = false;
}

int Dispatcher::wait(int timeout_ms, const sigset_t *sigmask) noexcept
{
	if (dispatching_ || tearing_down_ || destroyed_)
		return -EBUSY;
	depth_++;
	int rc = wait_inner(timeout_ms, sigmask);
	leave();
	return rc;
}

int Dispatcher::wait_inner(int timeout_ms, const sigset_t *sigmask) noexcept
{
	// Re-arms left pending by a batch that could not read the clock.
	stamp_pending();
	arm_timer();
	int n = epoll_pwait(epfd_.get(), records_.data(), kBatch, timeout_ms, sigmask);
	if (n < 0)
		return -errno;

	dispatching_ = true;
	ncallbacks_ = 0;
	batch_removals_ = 0;
	const uint64_t epoch = epoch_;
	bool timers = false;

	for (int i = 0; i < n && !batch_aborted(epoch); i++) {
		const uint64_t id = records_[i].data.u64;
		if (id == kTimerId) {
			timers = true;
			timer_fired_ = true;
			fired_at_ = armed_;
			armed_ = kNever;
			continue;
		}
		if (id == kWakeId) {
			// Before the stop flag is read (loop()): a stop whose
			// wake this drain answers is seen (base/wakeup.hpp).
			wake_.drain();
			// After the drain: a task whose post's wake coalesced
			// into the one just drained is on the list by now.
			ncallbacks_ += run_tasks(false);
			continue;
		}
		const uint32_t slot = static_cast<uint32_t>(id);
		const uint32_t gen = static_cast<uint32_t>(id >> 32);
		struct event *evt = record_owner(slot, gen);
		if (!evt) {
			// Stale. If nothing was removed in this batch yet, the
			// record cannot come from a removal we just did: it is
			// an orphaned kernel registration that would keep
			// reporting. Purge it after the batch.
			if (batch_removals_ == 0)
				rebuild_needed_ = true;
			continue;
		}
		// Disabled by an earlier callback of this batch: silent.
		if (data_mask(evt) == 0)
			continue;
		run_callback(slot, REASON_EVENT_OCCURED, records_[i].events);
	}

	if (timers && !batch_aborted(epoch))
		dispatch_timeouts(epoch);

	dispatching_ = false;
	if (!destroyed_) {
		// After the last callback: what re-arms it made from now on
		// are never early.
		stamp_pending();
		if (rebuild_needed_)
			rebuild_epoll();
		arm_timer();
#ifdef VENT_VERIFY
		verify();
#endif
	}
	return ncallbacks_;
}

int Dispatcher::loop(const sigset_t *sigmask, int (*err_handler)(int)) noexcept
{
	if (dispatching_ || tearing_down_ || destroyed_)
		return -EBUSY;
	depth_++;
	int rc;
	for (;;) {
		rc = wait_inner(-1, sigmask);
		if (destroyed_ || stop_.exchange(false)) {
			rc = 0;
			break;
		}
		if (rc >= 0)
			continue;
		if (!err_handler)
			break;
		int h = err_handler(rc);
		if (destroyed_) {
			rc = 0;
			break;
		}
		if (h == ELOOP_CONTINUE)
			continue;
		rc = h < 0 ? h : 0;
		break;
	}
	leave();
	return rc;
}

bool Dispatcher::leave() noexcept
{
	if (--depth_ == 0 && destroyed_) {
		deleter_(this);
		return true;
	}
	return false;
}

/*
 * Removes every event and calls each cleanup exactly once. Adds are refused
 * meanwhile (tearing_down_); removals of not-yet-cleaned events from a
 * cleanup callback are allowed and simply skip that event's cleanup.
 */
void Dispatcher::teardown(bool kernel) noexcept
{
	tearing_down_ = true;
	closing_.store(true, std::memory_order_seq_cst);
	depth_++;
	epoch_++;
	for (size_t i = 0; i < slots_.size(); i++) {
		struct event *evt = slots_[i].evt;
		if (!evt)
			continue;
		const uint32_t slot = static_cast<uint32_t>(i);
		if (kernel) {
			unregister_fd(slot, evt);
		} else if (const int fd = registered_fd(slot, evt); fd >= 0) {
			fd_owner_[fd].slot = kNoSlot;
		}
		forget(slot, evt);
		if (evt->cleanup)
			call_cleanup(evt->cleanup, evt);
	}
	heap_.clear();
	stamps_.clear();
	stamp_floors_ = true;
	if (kernel && !destroyed_)
		disarm_timer();
	// Tasks posted before closing_ was set never run now; posts made
	// after are refused (-EBUSY) until this returns. A post that read
	// closing_ before it was set may still be pushing: wait it out (a
	// few instructions, unless its thread was preempted there), so that
	// its task is on the list cancelled here, and its wake_.signal() is
	// done before destroy() closes the eventfd and deletes *this.
	// (seq_cst on both sides: a post either sees closing_ or is counted.)
	// Not in a forked child: a count there belongs to a parent thread
	// that does not exist in the child.
	while (!fork_.forked() && posting_.load(std::memory_order_seq_cst) != 0)
		sched_yield();
	run_tasks(true);
	depth_--;
	tearing_down_ = false;
	closing_.store(destroyed_, std::memory_order_seq_cst);
}

int Dispatcher::cleanup() noexcept
{
	if (tearing_down_ || destroyed_)
		return -EBUSY;
	depth_++;
	teardown(true);
	leave();
	return 0;
}

void Dispatcher::destroy() noexcept
{
	if (destroyed_)
		return;
	destroyed_ = true;
	if (!tearing_down_) {
		teardown(false);
		// Closing now (not at delete) is what a caller that frees the
		// dispatcher from a callback, then forks or execs, expects.
		epfd_.reset();
		front_.reset();
		tfd_.reset();
		wake_.close();
	}
	if (depth_ == 0)
		deleter_(this);
}

int Dispatcher::stop() noexcept
{
	stop_.store(true, std::memory_order_seq_cst);
	return wake();
}

int Dispatcher::post(LoopTask *task) noexcept
{
	// Counted before closing_ is read: teardown() sets closing_ and then
	// waits for posting_ to drop to 0, so either this sees closing_, or
	// the teardown sees this post and cancels its task.
	posting_.fetch_add(1, std::memory_order_seq_cst);
	if (closing_.load(std::memory_order_seq_cst)) {
		posting_.fetch_sub(1, std::memory_order_release);
		return -EBUSY;
	}
	LoopTask *head = tasks_.load(std::memory_order_relaxed);
	do
		task->next = head;
	while (!tasks_.compare_exchange_weak(head, task, std::memory_order_release,
					     std::memory_order_relaxed));
	// After the push: the loop's drain then sees the task (wakeup.hpp).
	wake_.signal();
	// Last touch of *this: once posting_ is 0, free_dispatcher() may
	// delete it.
	posting_.fetch_sub(1, std::memory_order_release);
	return 0;
}

/*
 * Runs the posted tasks, oldest first. A task that cleans or frees the
 * dispatcher (through a callback it runs) cancels those after it.
 */
int Dispatcher::run_tasks(bool cancelled) noexcept
{
	LoopTask *head = tasks_.exchange(nullptr, std::memory_order_acquire);
	if (!head)
		return 0;
	LoopTask *fifo = nullptr;
	while (head) {
		LoopTask *next = head->next;
		head->next = fifo;
		fifo = head;
		head = next;
	}
	const uint64_t epoch = epoch_;
	int n = 0;
	while (fifo) {
		LoopTask *next = fifo->next;
		fifo->next = nullptr;
		const bool cancel = cancelled || batch_aborted(epoch);
		const int r = fifo->run(fifo, cancel);
		if (!cancel)
			n += r;
		fifo = next;
	}
	return n;
}

int Dispatcher::wake() noexcept
{
	// Async-signal-safe; wakes that arrive while one is pending coalesce
	// into it (base/wakeup.hpp).
	wake_.signal();
	return 0;
}

bool Dispatcher::invoke_unregistered(struct event *evt, unsigned short reason,
				     uint32_t events) noexcept
{
	evt->reason = reason;
	evt->flags |= kRunningFlag;
	bool alive = call_callback(evt->callback, evt, events) != EVENTCB_CLEANUP;
	if (alive)
		evt->flags &= static_cast<unsigned short>(~kRunningFlag);
	return alive;
}

bool Dispatcher::invoke_compat(struct event *evt, unsigned short reason, uint32_t events) noexcept
{
	uint32_t slot = slot_of(evt);
	if (slot == kNoSlot)
		return invoke_unregistered(evt, reason, events);
	depth_++;
	// A callback run this way is dispatched as much as one run by a wait:
	// a wait from it (which could run it again) is -EBUSY.
	const bool was_dispatching = dispatching_;
	dispatching_ = true;
	bool alive = run_callback(slot, reason, events);
	dispatching_ = was_dispatching;
	// Changes the callback made to timeouts were deferred (depth_ > 0).
	if (depth_ == 1 && !destroyed_) {
		stamp_pending();
		arm_timer();
	}
	if (leave())
		return false;
	return alive;
}

} // namespace vent
