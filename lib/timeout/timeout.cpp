// SPDX-License-Identifier: LGPL-2.1-or-later
#include "timeout/timeout.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>

#include <sys/timerfd.h>
#include <unistd.h>

#include "base/capi.hpp"

namespace vent {

TimeoutList::TimeoutList(int clock) : clock_(clock), heap_(SlotPos{this})
{
	tfd_.reset(timerfd_create(clock, TFD_NONBLOCK | TFD_CLOEXEC));
	if (!tfd_)
		detail::throw_errno();
}

int TimeoutList::deadline_for(const struct timespec &tmo, bool absolute,
			      int64_t &deadline) const noexcept
{
	// The clock is read after the caller's call began: a relative timeout
	// can only end late, never early. An unreadable clock is reported.
	int64_t now = 0;
	if (!absolute)
		if (int rc = detail::now_ns(clock_, now); rc < 0)
			return rc;
	return detail::timespec_to_deadline(tmo, absolute, now, deadline) ? 0 : -EINVAL;
}

uint32_t TimeoutList::find(const struct event *evt) const noexcept
{
	auto it = index_.find(evt);
	return it == index_.end() ? kNoSlot : it->second;
}

void TimeoutList::reserve_for_insert()
{
	heap_.reserve_one();
	if (free_head_ == kNoSlot)
		slots_.reserve_one();
	// The batch of a run holds at most every listed entry.
	const size_t want = index_.size() + 1;
	if (batch_.capacity() < want)
		batch_.reserve(std::max<size_t>(want, 2 * batch_.capacity()));
}

void TimeoutList::insert(struct event *evt, int64_t deadline)
{
	reserve_for_insert();
	const uint32_t id = free_head_ != kNoSlot ? free_head_ : static_cast<uint32_t>(slots_.size());
	// The last allocation (a map node); nothing has changed if it throws.
	index_.emplace(evt, id);
	if (id == slots_.size()) {
		slots_.push_back(Slot{evt, detail::kNotQueued}); // reserved: no allocation
	} else {
		free_head_ = slots_[id].pos;
		slots_[id] = Slot{evt, detail::kNotQueued};
	}
	heap_.push(deadline, id);
	evt->tmo = detail::deadline_to_timespec(deadline);
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
	s.pos = free_head_;
	free_head_ = id;
}

int TimeoutList::add(struct event *evt)
{
	// minivent: a zero timeout means "no timeout", and adding none is a no-op.
	if (evt->tmo.tv_sec == 0 && evt->tmo.tv_nsec == 0)
		return 0;
	if (find(evt) != kNoSlot)
		return -EEXIST;
	int64_t deadline;
	if (int rc = deadline_for(evt->tmo, evt->flags & TMO_ABS, deadline); rc < 0)
		return rc;
	insert(evt, deadline);
	return 0;
}

int TimeoutList::modify(struct event *evt, const struct timespec &tmo)
{
	if (tmo.tv_sec == 0 && tmo.tv_nsec == 0)
		return cancel(evt);
	int64_t deadline;
	if (int rc = deadline_for(tmo, evt->flags & TMO_ABS, deadline); rc < 0)
		return rc;
	const uint32_t id = find(evt);
	if (id == kNoSlot) {
		insert(evt, deadline);
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
	evt->tmo = detail::deadline_to_timespec(deadline);
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
	free_head_ = kNoSlot;
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

/*
 * Makes the timerfd hold the heap's top. No syscall when it already does;
 * a deadline at or before the epoch is "expired" (a zero it_value would
 * disarm instead).
 */
void TimeoutList::arm() noexcept
{
	const int64_t want =
		heap_.empty() ? detail::kNever : std::max<int64_t>(heap_.top().when, 1);
	if (want == armed_)
		return;
	struct itimerspec its = {};
	int flags = 0;
	if (want != detail::kNever) {
		its.it_value = detail::deadline_to_timespec(want);
		flags = TFD_TIMER_ABSTIME;
	}
	// Cannot fail for a valid timerfd and a normalised value; if it did,
	// the next change tries again.
	armed_ = timerfd_settime(tfd_.get(), flags, &its, nullptr) == 0 ? want : kUnarmed;
}

} // namespace vent
