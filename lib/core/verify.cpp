// SPDX-License-Identifier: LGPL-2.1-or-later
// verify.cpp - the dispatcher's invariants as a check (debug builds only).
//
// Compiled into every build, empty unless VENT_VERIFY is defined: the
// library proper carries no trace of it. The fuzzer and the soak link the
// vent_verify build (lib/meson.build), where wait_inner() calls verify() at
// the end of every batch.
#ifdef VENT_VERIFY

#include "core/dispatcher.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "base/epoll_fdinfo.hpp"

namespace vent {

using detail::kNever;
using detail::kNotQueued;

namespace {

[[noreturn, gnu::format(printf, 1, 2)]] void broken(const char *fmt, ...) noexcept
{
	va_list ap;
	va_start(ap, fmt);
	fputs("vent verify: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

} // namespace

void Dispatcher::verify() const noexcept
{
	// Slots: live count, back-pointers, heap positions.
	size_t live = 0;
	for (size_t i = 0; i < slots_.size(); i++) {
		const struct event *evt = slots_[i].evt;
		if (!evt)
			continue;
		live++;
		const uint32_t slot = static_cast<uint32_t>(i);
		if (data_slot(evt) != slot)
			broken("slot %u: its event's data names slot %u", slot, data_slot(evt));
		if (evt->dsp != tag_)
			broken("slot %u: its event's dsp is not this dispatcher", slot);
		// The timeout: none (no deadline, not queued) or queued, whose
		// heap entry holds the slot and a key not after the slot's (see
		// Slot). "Due" (a deadline, not queued) ends with the batch.
		const Slot &sl = slots_[i];
		const uint32_t pos = sl.heap_pos;
		if (pos == kNotQueued && sl.when != kNever)
			broken("slot %u: still due after the batch", slot);
		if (pos != kNotQueued && (pos >= heap_.size() || heap_.at(pos).id != slot))
			broken("slot %u: heap position %u does not hold it", slot, pos);
		if (pos != kNotQueued &&
		    heap_.less(detail::TimeoutHeap<SlotPos>::Entry{sl.when, slot, sl.seq},
				 heap_.at(pos)))
			broken("slot %u: heap entry's key %lld/%u is after the slot's %lld/%u",
			       slot, static_cast<long long>(heap_.at(pos).when), heap_.at(pos).seq,
			       static_cast<long long>(sl.when), sl.seq);
		// evt->tmo is the deadline, {0, 0} for none, or a value that was
		// clamped to "never" (kept as none).
		// A re-arm still pending (the clock could not be read when the
		// batch ended) writes evt->tmo when it is stamped.
		if (sl.when == kStampPending && pos == kNotQueued)
			broken("slot %u: pending re-arm not queued", slot);
		if (sl.when == kStampPending && stamps_.empty())
			broken("slot %u: pending re-arm without a stamp", slot);
		int64_t tmo_ns = 0;
		const bool tmo_zero = evt->tmo.tv_sec == 0 && evt->tmo.tv_nsec == 0;
		detail::timespec_to_deadline(evt->tmo, true, 0, tmo_ns);
		if (sl.when != kStampPending &&
		    (sl.when == kNever ? !tmo_zero && tmo_ns != kNever : tmo_ns != sl.when))
			broken("slot %u: timeout {%lld, %ld} but deadline %lld", slot,
			       static_cast<long long>(evt->tmo.tv_sec), evt->tmo.tv_nsec,
			       static_cast<long long>(sl.when));
		if (evt->flags & kRunningFlag)
			broken("slot %u: callback marked running after the batch", slot);
		if ((evt->fd >= 0) != static_cast<bool>(evt->flags & kFdEventFlag))
			broken("slot %u: fd %d but fd-event flag %d", slot, evt->fd,
			       !!(evt->flags & kFdEventFlag));
		if (evt->flags & kOwnsFdFlag) {
			const int fd = evt->fd;
			if (fd < 0 || static_cast<size_t>(fd) >= fd_owner_.size() ||
			    fd_owner_[fd].slot != slot)
				broken("slot %u: owns fd %d, which the fd table gives to another", slot,
				       fd);
		} else if (data_mask(evt) != 0 && evt->fd >= 0 &&
			   static_cast<size_t>(evt->fd) < fd_owner_.size() &&
			   fd_owner_[evt->fd].slot == slot) {
			broken("slot %u: the fd table gives it fd %d without its flag", slot, evt->fd);
		}
	}
	if (live != live_)
		broken("%zu live slots, counted %zu", live, live_);

	// Free list: exactly the free slots, no cycle.
	size_t nfree = 0;
	for (uint32_t s = slots_.free_head(); s != kNoSlot; s = slots_[s].next_free) {
		if (s >= slots_.size() || slots_[s].evt)
			broken("free list reaches slot %u, which is %s", s,
			       s >= slots_.size() ? "out of range" : "live");
		if (++nfree > slots_.size())
			broken("free list has a cycle");
	}
	if (nfree + live_ != slots_.size())
		broken("%zu free + %zu live slots, table of %zu", nfree, live_, slots_.size());

	// Heap: ids live and pointing back, heap order.
	for (size_t i = 0; i < heap_.size(); i++) {
		const auto &e = heap_.at(i);
		if (e.id >= slots_.size() || !slots_[e.id].evt || slots_[e.id].heap_pos != i)
			broken("heap entry %zu: slot %u does not point back", i, e.id);
		if (i > 0 && heap_.less(e, heap_.at((i - 1) / 4)))
			broken("heap entry %zu comes before its parent", i);
	}

	// The timerfd fits the heap once a batch is over (arm_timer() ran).
	if (timer_stale())
		broken("timerfd stale after the batch: armed %lld, top %lld, fired %d",
		       static_cast<long long>(armed_),
		       heap_.empty() ? -1LL : static_cast<long long>(heap_.top().when),
		       timer_fired_);

	// fd table: every owner live and naming that fd.
	for (size_t fd = 0; fd < fd_owner_.size(); fd++) {
		const uint32_t s = fd_owner_[fd].slot;
		if (s == kNoSlot)
			continue;
		if (s >= slots_.size() || !slots_[s].evt)
			broken("fd %zu: owned by free slot %u", fd, s);
		const struct event *evt = slots_[s].evt;
		if (!(evt->flags & kOwnsFdFlag) || evt->fd != static_cast<int>(fd))
			broken("fd %zu: owner slot %u holds fd %d (owns flag %d)", fd, s, evt->fd,
			       !!(evt->flags & kOwnsFdFlag));
	}

	// Kernel: the two fixed records, and every record of a live
	// registration carries its fd and the mask the library registered
	// (records of removed ones are orphans awaiting the purge, allowed).
	constexpr uint32_t kKeptBits = EPOLLONESHOT | EPOLLET | EPOLLWAKEUP | EPOLLEXCLUSIVE;
	detail::EpollFdinfo info(epfd_.get());
	detail::EpollRecord r;
	size_t nrecs = 0;
	bool timer = false, wake = false;
	while (info.next(r) > 0) {
		nrecs++;
		if (r.data == kTimerId) {
			if (r.fd != tfd_.get())
				broken("kernel: timer record on fd %d, timerfd is %d", r.fd, tfd_.get());
			timer = true;
			continue;
		}
		if (r.data == kWakeId) {
			if (r.fd != wake_.fd())
				broken("kernel: wake record on fd %d, eventfd is %d", r.fd, wake_.fd());
			wake = true;
			continue;
		}
		const struct event *evt = record_owner(static_cast<uint32_t>(r.data),
						       static_cast<uint32_t>(r.data >> 32));
		if (!evt)
			continue;
		if (r.fd != evt->fd)
			broken("kernel: record of slot %u on fd %d, the event's fd is %d",
			       static_cast<uint32_t>(r.data), r.fd, evt->fd);
		const uint32_t mask = data_mask(evt);
		if (mask == 0)
			broken("kernel: disabled slot %u still in the epoll set",
			       static_cast<uint32_t>(r.data));
		// The kernel adds EPOLLERR and EPOLLHUP to every registration; a
		// oneshot one that fired keeps only its flag bits.
		constexpr uint32_t kAlways = EPOLLERR | EPOLLHUP;
		const uint32_t have = r.events & ~kAlways;
		if (have != (mask & ~kAlways) &&
		    !((mask & EPOLLONESHOT) && have == (mask & kKeptBits)))
			broken("kernel: slot %u registered with mask %#x, the library says %#x",
			       static_cast<uint32_t>(r.data), r.events, mask);
	}
	if (nrecs > 0 && (!timer || !wake))
		broken("kernel: the timerfd or the eventfd is missing from the epoll set");
}

} // namespace vent

#endif // VENT_VERIFY
