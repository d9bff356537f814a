// SPDX-License-Identifier: LGPL-2.1-or-later
// timeout.hpp - minivent's standalone timeout list (vent/timeout.h) on the
// core's indexed heap.
#pragma once

#include <cstdint>

#include <vent/event.h>

#include "base/fork_guard.hpp"
#include "base/pod_array.hpp"
#include "base/ptr_map.hpp"
#include "base/slot_table.hpp"
#include "base/time.hpp"
#include "base/unique_fd.hpp"
#include "core/timeout_heap.hpp"

namespace vent {

/*
 * One timerfd (base/timer_fd.hpp) and the core's heap of (deadline, arm
 * sequence) over a slot table (base/slot_table.hpp). A slot holds a listed
 * event and its heap position; an index (base/ptr_map.hpp) maps the event's
 * address to its slot, so add, modify and cancel find it in O(1) and move
 * it in O(log n). No entry has memory of its own: the slots, the index, the
 * heap and the batch are arrays that grow geometrically, all before
 * anything changes (a failed add leaves the list as it was), and an add
 * allocates nothing once the list has held as many entries.
 *
 * timeout_event() first takes every expired entry off the heap into a batch
 * (position kInBatch: still listed, so cancel and modify reach it), then
 * runs them in order. An entry whose position is no longer kInBatch when
 * its turn comes was cancelled or moved by an earlier callback; only the
 * collection sets kInBatch, so a slot reused meanwhile never looks batched.
 * The batch array is kept as large as the heap, so the collection never
 * allocates.
 *
 * The timerfd is armed (absolute) for the heap's top whenever the top
 * differs from what the kernel holds, outside a run; a run re-arms once at
 * its end.
 */
class TimeoutList {
public:
	// Creates the timerfd; throws std::system_error on failure.
	explicit TimeoutList(int clock);
	TimeoutList(const TimeoutList &) = delete;
	TimeoutList &operator=(const TimeoutList &) = delete;

	bool forked() const noexcept { return fork_.forked(); }
	int fd() const noexcept { return tfd_.get(); }
	int clock() const noexcept { return clock_; }

	int add(struct event *evt);
	int modify(struct event *evt, const struct timespec &tmo);
	int cancel(struct event *evt) noexcept;
	void reset() noexcept;
	// timeout_event(): runs the expired entries. @self is the list's own
	// event (for the reason check of minivent's contract). Returns true if
	// free_timeout_event() was called meanwhile: the caller deletes the list.
	bool run(struct event *self, uint32_t events) noexcept;
	// free_timeout_event(): true if the caller may delete the list now,
	// false if a run further up the stack deletes it when it unwinds.
	bool release() noexcept;

	size_t size() const noexcept { return index_.size(); }

private:
	static constexpr uint32_t kNoSlot = detail::PtrMap::kAbsent;
	static constexpr int64_t kUnarmed = INT64_MIN;

	struct Slot {
		struct event *evt; // nullptr when free
		union {
			uint32_t pos;       // listed: heap index, kNotQueued or kInBatch
			uint32_t next_free; // free: the next free slot (SlotTable)
		};
	};
	struct SlotPos {
		TimeoutList *l;
		void set(uint32_t id, uint32_t pos) noexcept { l->slots_[id].pos = pos; }
	};

	uint32_t find(const struct event *evt) const noexcept { return index_.find(evt); }
	// Allocations an insert needs, made up front; throws std::bad_alloc.
	void reserve_for_insert();
	void insert(struct event *evt, int64_t deadline, const struct timespec &abs);
	void unlist(uint32_t id) noexcept;
	void arm() noexcept;

	detail::UniqueFd tfd_;
	int clock_;
	detail::ForkGuard fork_;
	detail::SlotTable<Slot> slots_;
	detail::PtrMap index_; // event address -> slot
	detail::TimeoutHeap<SlotPos> heap_;
	detail::PodArray<uint32_t> batch_;
	int64_t armed_ = detail::kNever; // what the timerfd holds (kNever: disarmed)
	bool running_ = false;     // run() is on the stack
	bool released_ = false;    // free_timeout_event() was called during run()
	uint64_t epoch_ = 0;       // bumped by reset(): a run in progress stops
};

} // namespace vent
