// SPDX-License-Identifier: LGPL-2.1-or-later
#include "timeout/timeout.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>

#include <unistd.h>

#include "base/timer_fd.hpp"

namespace vent {

TimeoutList::TimeoutList(int clock)
	: tfd_(detail::timer_open(clock)), clock_(clock), heap_(SlotPos{this})
{
}

void TimeoutList::reserve_for_insert()
{
	heap_.reserve_one();
	slots_.reserve_one();
	index_.reserve_one();
	// The batch of a run holds at most every listed entry.
	const size_t want = index_.size() + 1;
	if (batch_.capacity() < want)
		batch_.reserve(std::max<size_t>(want, 2 * batch_.capacity()));
}

void TimeoutList::insert(struct event *evt, int64_t deadline, const struct timespec &abs)
{
	reserve_for_insert();
	// Nothing below allocates or fails.
	const uint32_t id = slots_.take();
	slots_[id] = Slot{evt, {detail::kNotQueued}};
	index_.insert(evt, id);
	heap_.push(deadline, id);
	evt->tmo = abs;
	if (!running_)
		arm();
}

void TimeoutList::unlist(uint32_t id) noexcept
{
	Slot &s = slots_[id];
	if (s.pos < detail::kInBatch)
		heap_.erase(s.pos);
	index_.erase(s.evt);
	s.evt = nullptr;
	slots_.release(id);
}

int TimeoutList::add(struct event *evt)
{
	// minivent: a zero timeout means "no timeout", and adding none is a no-op.
	if (evt->tmo.tv_sec == 0 && evt->tmo.tv_nsec == 0)
		return 0;
	if (find(evt) != kNoSlot)
		return -EEXIST;
	int64_t deadline;
	struct timespec abs;
	if (int rc = detail::deadline_for(clock_, evt->tmo, evt->flags & TMO_ABS, deadline, abs);
	    rc < 0)
		return rc;
	insert(evt, deadline, abs);
	return 0;
}

int TimeoutList::modify(struct event *evt, const struct timespec &tmo)
{
	if (tmo.tv_sec == 0 && tmo.tv_nsec == 0)
		return cancel(evt);
	int64_t deadline;
	struct timespec abs;
	if (int rc = detail::deadline_for(clock_, tmo, evt->flags & TMO_ABS, deadline, abs); rc < 0)
		return rc;
	const uint32_t id = find(evt);
	if (id == kNoSlot) {
		insert(evt, deadline, abs);
		return 0;
	}
	Slot &s = slots_[id];
	if (s.pos == detail::kInBatch) {
		// Expired and waiting in the current run: back into the heap
		// with its new deadline; the run skips it (no longer kInBatch).
		heap_.reserve_one();
		heap_.push(deadline, id);
	} else {
		heap_.update(s.pos, deadline);
	}
	evt->tmo = abs;
	if (!running_)
		arm();
	return 0;
}

int TimeoutList::cancel(struct event *evt) noexcept
{
	const uint32_t id = find(evt);
	// As minivent: the event has no timeout afterwards, listed or not.
	evt->tmo = {0, 0};
	if (id == kNoSlot)
		return -ENOENT;
	unlist(id);
	if (!running_)
		arm();
	return 0;
}

void TimeoutList::reset() noexcept
{
	heap_.clear();
	index_.clear();
	slots_.clear();
	// A run in progress stops before its next entry (its batch names
	// slots that no longer exist).
	epoch_++;
	if (!running_)
		arm();
}

bool TimeoutList::release() noexcept
{
	if (!running_)
		return true;
	released_ = true;
	return false;
}

bool TimeoutList::run(struct event *self, uint32_t events) noexcept
{
	if (running_ || self->reason != REASON_EVENT_OCCURED || (events & ~uint32_t{EPOLLIN}))
		return false;
	uint64_t ticks;
	// EAGAIN is normal: the timer was re-armed after it fired.
	ssize_t r = read(tfd_.get(), &ticks, sizeof(ticks));
	(void)r;
	// Whatever the kernel held has expired or is about to be replaced.
	armed_ = kUnarmed;

	// Collect first, then call: entries armed to the past by a callback
	// wait for the next run, so a callback that re-arms itself to "now"
	// cannot keep this one going forever.
	// Without a time, nothing is known to have expired: the timer is
	// re-armed and the next run tries again.
	int64_t t;
	if (detail::now_ns(clock_, t) < 0)
		t = std::numeric_limits<int64_t>::min();
	batch_.clear();
	while (!heap_.empty() && heap_.top().when <= t && batch_.size() < batch_.capacity())
		batch_.push_back(heap_.pop(detail::kInBatch).id);

	running_ = true;
	const uint64_t epoch = epoch_;
	for (size_t i = 0; i < batch_.size(); i++) {
		if (released_ || epoch_ != epoch)
			break;
		const uint32_t id = batch_[i];
		Slot &s = slots_[id];
		// Cancelled, or moved back into the heap, by an earlier callback.
		if (!s.evt || s.pos != detail::kInBatch)
			continue;
		struct event *evt = s.evt;
		unlist(id);
		evt->tmo = {0, 0};
		// minivent's path: REASON_TIMEOUT, reason reset afterwards, and
		// EVENTCB_REMOVE/CLEANUP honoured for an event on a dispatcher.
		_event_invoke_callback(evt, REASON_TIMEOUT, 0, true);
	}
	running_ = false;
	batch_.clear();
	if (released_)
		return true;
	// A callback may have forked: the child must not touch the timer it
	// shares with the parent.
	if (!forked())
		arm();
	return false;
}

// Makes the timerfd hold the heap's top. No syscall when it already does.

void TimeoutList::arm() noexcept
{
	const int64_t want = heap_.empty() ? detail::kNever : heap_.top().when;
	if (want == armed_)
		return;
	// Cannot fail for a valid timerfd and a normalised value; if it did,
	// the next change tries again.
	armed_ = detail::timer_set(tfd_.get(), want) == 0 ? want : kUnarmed;
}

} // namespace vent
