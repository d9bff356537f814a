// SPDX-License-Identifier: LGPL-2.1-or-later
// dispatcher.hpp - epoll set, registration, dispatch batch, timeouts.
#pragma once

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <vector>

#include <signal.h>
#include <sys/epoll.h>

#include <vent/event.h>

#include "base/fork_guard.hpp"
#include "base/slot_table.hpp"
#include "base/time.hpp"
#include "base/unique_fd.hpp"
#include "base/wakeup.hpp"
#include "core/loop_task.hpp"
#include "core/timeout_heap.hpp"

namespace vent {

/*
 * One epoll set, one timerfd and one eventfd.
 *
 * Registered events live in a slot table. The kernel's epoll record carries
 * (generation << 32 | slot), never a pointer. Every kernel registration
 * takes a new generation from a dispatcher-wide counter, kept with the fd's
 * owner in the fd table; a record is delivered only if its slot holds a
 * live event whose fd's owner is that slot under that generation. A record
 * of a removed event (slot freed, or reused by any other registration) is
 * dropped. That is what makes event_remove() safe from any callback.
 *
 * The library also keeps two words in the user's struct event, in ep.data
 * (which the API reserves for the library): the slot index (low half) and
 * the epoll mask currently registered in the kernel (high half; 0 = not in
 * the epoll set). A slot is 24 bytes (event pointer, the timeout's key and
 * its heap position); an fd costs 8 more in the fd table, a timeout 16 in
 * the heap.
 *
 * Timeouts: an indexed heap on (deadline, arm sequence), re-queued lazily
 * when a deadline moves later (see Slot). The timerfd is armed (absolute)
 * for the heap's top only when the top moved earlier than what the kernel
 * holds, or after it fired; moving a deadline later costs no syscall and
 * no heap work: the timer fires early once, the entry is re-queued under
 * its new key and the timerfd re-armed then.
 */
class Dispatcher {
public:
	// Creates the kernel objects; throws std::system_error on failure.
	explicit Dispatcher(int clock);
	~Dispatcher();
	Dispatcher(const Dispatcher &) = delete;
	Dispatcher &operator=(const Dispatcher &) = delete;

	// The facade allocates the C tag that holds this object; when a
	// callback frees the dispatcher, the memory is released later through
	// this hook, once no library frame refers to it any more.
	using Deleter = void (*)(Dispatcher *);
	void set_tag(struct dispatcher *tag, Deleter d) noexcept
	{
		tag_ = tag;
		deleter_ = d;
	}
	struct dispatcher *tag() const noexcept { return tag_; }

	bool forked() const noexcept { return fork_.forked(); }
	// dispatcher_get_efd(): the front set (see front_), created on the
	// first call. Returns the fd or -errno.
	int efd() noexcept;
	int clock() const noexcept { return clock_; }

	int add(struct event *evt);
	int remove(struct event *evt) noexcept;
	int modify(struct event *evt) noexcept;
	int mod_timeout(struct event *evt, const struct timespec &tmo) noexcept;
	// Returns callbacks run, or -errno.
	int wait(int timeout_ms, const sigset_t *sigmask) noexcept;
	int loop(const sigset_t *sigmask, int (*err_handler)(int)) noexcept;
	int cleanup() noexcept;
	// free_dispatcher(): no kernel calls; may defer the delete.
	void destroy() noexcept;
	int stop() noexcept;
	int wake() noexcept;
	// post_loop_task() (loop_task.hpp).
	int post(LoopTask *task) noexcept;
	bool closing() const noexcept { return closing_.load(std::memory_order_seq_cst); }
	// Private bit of evt->flags: the event's callback is running. Lets
	// _event_invoke_callback() refuse to run a callback re-entrantly.
	static constexpr unsigned short kRunningFlag = 1 << 10;
	// Private bits of evt->flags that remember what the library did with
	// evt->fd, so that a user who changes evt->fd while the event is added
	// (event.h forbids it) cannot make it unregister the wrong fd: the
	// event was added with an fd, and its slot holds an fd table entry.
	static constexpr unsigned short kFdEventFlag = 1 << 11;
	static constexpr unsigned short kOwnsFdFlag = 1 << 12;

	// _event_invoke_callback() for an event of this dispatcher.
	// Returns false if @evt may no longer be touched.
	bool invoke_compat(struct event *evt, unsigned short reason, uint32_t events) noexcept;
	// The same for an event that is not added anywhere (no dispatcher).
	static bool invoke_unregistered(struct event *evt, unsigned short reason,
					uint32_t events) noexcept;
	bool owns(const struct event *evt) const noexcept { return slot_of(evt) != kNoSlot; }
	// True if a registered event (enabled or disabled) holds fd number @fd.
	// Used by the add check of lib/sources/sources.cpp (see add_check.hpp).
	bool watches_fd(int fd) const noexcept
	{
		return fd >= 0 && static_cast<size_t>(fd) < fd_owner_.size() &&
		       fd_owner_[fd].slot != kNoSlot;
	}

	// Number of registered events (for tests and benchmarks).
	size_t size() const noexcept { return live_; }

	/*
	 * Checks the invariants that tie the slots, the timeout heap, the fd
	 * table and the kernel's epoll set together (core/verify.cpp), and
	 * aborts with a message on the first one broken. Defined only in the
	 * debug build the fuzzer and the soak link (lib/meson.build's
	 * vent_verify: core/dispatcher.cpp and core/verify.cpp compiled again
	 * with -DVENT_VERIFY, the other objects shared with the library),
	 * where wait_inner() runs it at the end of every batch; the library
	 * itself has no trace of it. Declared in every build, so that the
	 * class is the same in the shared objects.
	 */
	void verify() const noexcept;

private:
	static constexpr uint32_t kNoSlot = UINT32_MAX;
	static constexpr uint64_t kTimerId = UINT64_MAX;
	static constexpr uint64_t kWakeId = UINT64_MAX - 1;
	static constexpr int kBatch = 256;
	// Timeouts handled per wait: bounds the time fd events can be starved
	// by a cohort of expiring timers.
	static constexpr size_t kTimerBudget = 1024;
	// A deadline not known yet: a relative re-arm from a callback, stamped
	// when the batch ends (see Stamp). After every real deadline (those
	// are clamped below it, to kNever) and before kNever.
	static constexpr int64_t kStampPending = detail::kNever - 1;

	/*
	 * 24 bytes. A timer-only event costs a slot and a heap entry (16) and
	 * nothing else: 40 bytes in all.
	 *
	 * The slot holds the timeout's key (@when, @seq); the heap entry at
	 * @heap_pos holds a key that may be older and earlier. A re-arm that
	 * moves the deadline later (the common case: an inactivity timeout
	 * pushed back on every I/O) writes the slot only and leaves the heap
	 * alone; the entry takes the slot's key when it comes up (see
	 * dispatch_timeouts()). Since an entry's key is never later than its
	 * slot's, the heap's top is never later than the earliest timeout, and
	 * an entry that comes up with its slot's key has the earliest key of
	 * all: timeouts fire in (deadline, arm sequence) order, never early.
	 *
	 * The timeout's state, from the two fields:
	 *   @when == kNever                          none
	 *   @heap_pos != kNotQueued                  queued
	 *   @when != kNever, @heap_pos == kNotQueued due: taken out of the
	 *                                            heap by a timer batch, its
	 *                                            callback not run yet
	 *   @when == kStampPending (queued)          re-armed relative from a
	 *                                            callback: the deadline is
	 *                                            stamped when the batch
	 *                                            ends (see Stamp)
	 */
	struct Slot {
		struct event *evt; // nullptr when free
		int64_t when;      // the timeout's deadline; kNever: none
		uint32_t seq;      // the arm sequence of @when (ties fire in arm order)
		union {
			uint32_t heap_pos;  // live slot: its heap entry, or kNotQueued
			uint32_t next_free; // free slot: the next free one, or kNoSlot
		};
	};
	static_assert(sizeof(Slot) == 24);
	static_assert(kNoSlot == detail::SlotTable<Slot>::kNone);

	// Per fd number: the slot whose kernel registration holds the fd, and
	// the generation of that registration. The generation is what the
	// kernel record carries (see record_id()); it is only needed for
	// events with an fd, so it lives here and not in the slot.
	struct FdOwner {
		uint32_t slot;  // kNoSlot: none
		uint32_t gen;
	};

	/*
	 * A relative re-arm made from a callback (dispatching_), waiting for
	 * the clock read that ends the batch (stamp_pending()): the slot's
	 * key is (kStampPending, @seq) until then, and its heap entry keeps a
	 * key not after that one (an older one, or kStampPending itself).
	 * The arm sequence is taken at the call, so ties fire in call order
	 * whatever the clock read. A stamp whose slot no longer holds that
	 * key (removed, reused, re-armed or cancelled since) is dropped.
	 * @floor is the slot's deadline before the call, which its heap
	 * entry's key is not after: a stamped deadline not before it (a
	 * timeout pushed later, the common case) leaves the entry alone
	 * without reading it.
	 */
	struct Stamp {
		struct timespec rel; // the relative timeout, as given
		int64_t floor;       // not before the heap entry's deadline
		uint32_t slot;
		uint32_t seq;
	};

	struct SlotPos {
		Dispatcher *d;
		void set(uint32_t id, uint32_t pos) noexcept { d->slots_[id].heap_pos = pos; }
	};

	static uint32_t data_slot(const struct event *evt) noexcept
	{
		return static_cast<uint32_t>(evt->ep.data.u64);
	}
	static uint32_t data_mask(const struct event *evt) noexcept
	{
		return static_cast<uint32_t>(evt->ep.data.u64 >> 32);
	}
	static void set_data(struct event *evt, uint32_t slot, uint32_t mask) noexcept
	{
		evt->ep.data.u64 = static_cast<uint64_t>(mask) << 32 | slot;
	}
	static uint64_t record_id(uint32_t slot, uint32_t gen) noexcept
	{
		return static_cast<uint64_t>(gen) << 32 | slot;
	}
	// The event whose live registration a kernel record (@slot, @gen)
	// belongs to, or nullptr for a stale record.
	struct event *record_owner(uint32_t slot, uint32_t gen) const noexcept
	{
		if (slot >= slots_.size())
			return nullptr;
		struct event *evt = slots_[slot].evt;
		if (!evt || evt->fd < 0 || static_cast<size_t>(evt->fd) >= fd_owner_.size())
			return nullptr;
		const FdOwner &o = fd_owner_[evt->fd];
		return o.slot == slot && o.gen == gen ? evt : nullptr;
	}

	// A callback being run for a slot, on the C++ stack of run_callback().
	// release_slot() marks the frames of the slot it frees, so that the
	// caller knows, without a per-slot generation, that the event it ran
	// was removed (and maybe its slot reused) by the callback.
	struct CallbackFrame {
		uint32_t slot;
		bool released;
		CallbackFrame *prev;
	};

	uint32_t slot_of(const struct event *evt) const noexcept;
	// The clock in nanoseconds; 0 or -errno.
	int now(int64_t &ns) const noexcept { return detail::now_ns(clock_, ns); }
	// The deadline of a timeout on this dispatcher's clock (see
	// detail::deadline_for()).
	[[gnu::always_inline]] int deadline_for(const struct timespec &tmo, bool absolute,
						int64_t &deadline, struct timespec &abs) const noexcept
	{
		return detail::deadline_for(clock_, tmo, absolute, deadline, abs);
	}
	int epoll_set(int op, int fd, uint32_t mask, uint64_t id) noexcept;
	int registered_fd(uint32_t slot, const struct event *evt) const noexcept;
	int register_fd(uint32_t slot, struct event *evt, uint32_t mask) noexcept;
	void unregister_fd(uint32_t slot, struct event *evt) noexcept;
	void release_slot(uint32_t slot) noexcept;
	void forget(uint32_t slot, struct event *evt) noexcept;
	// Leaves @s with no timeout (heap entry erased).
	void clear_timeout(Slot &s) noexcept
	{
		if (s.heap_pos != detail::kNotQueued)
			heap_.erase(s.heap_pos);
		s.when = detail::kNever;
	}
	bool stamp_later(uint32_t slot, Slot &s, const struct timespec &tmo,
			 uint32_t pos) noexcept;
	// Gives the pending re-arms (stamps_) their deadlines from one clock
	// read. If the clock cannot be read, they stay pending (never early)
	// and the next wait tries again.
	void stamp_pending() noexcept;
	void arm_timer() noexcept;
	// False when the timerfd already fits the heap, so arm_timer() makes
	// no syscall: the heap's top is not earlier than what the timerfd
	// holds (the common case of a re-arm, which moves a deadline later),
	// or both are empty. Inline, so callers skip the call in that case.
	bool timer_stale() const noexcept
	{
		if (timer_fired_)
			return true;
		if (heap_.empty() || heap_.top().when >= kStampPending)
			return armed_ != detail::kNever;
		return heap_.top().when < armed_;
	}
	void disarm_timer() noexcept;
	// Returns true if the event is still registered afterwards.
	bool run_callback(uint32_t slot, unsigned short reason, uint32_t events) noexcept;
	bool batch_aborted(uint64_t epoch) const noexcept
	{
		return destroyed_ || epoch != epoch_;
	}
	void dispatch_timeouts(uint64_t epoch) noexcept;
	int wait_inner(int timeout_ms, const sigset_t *sigmask) noexcept;
	void rebuild_epoll() noexcept;
	void teardown(bool kernel) noexcept;
	// Leaves a library frame; deletes the dispatcher if it was freed from
	// a callback and this was the outermost frame. Returns true if so.
	bool leave() noexcept;
	// Runs (or, with @cancelled, cancels) the posted tasks; returns the
	// callbacks they ran.
	int run_tasks(bool cancelled) noexcept;

	detail::ForkGuard fork_;
	int clock_;
	detail::UniqueFd epfd_;
	// The epoll fd handed out for embedding: a set that holds only epfd_.
	// The orphan purge replaces the epoll file behind epfd_ (see
	// rebuild_epoll()); an outer epoll that held that file would lose the
	// dispatcher, one that holds this front file never does. Created by
	// the first efd() call, so that a dispatcher nobody embeds pays
	// nothing for it.
	detail::UniqueFd front_;
	detail::UniqueFd tfd_;
	detail::Wakeup wake_;
	// Posted loop tasks, newest first (a lock-free stack: the loop takes
	// the whole list at once, so there is no ABA). closing_ refuses posts
	// while cleanup/free runs; posting_ counts the posts under way, which
	// teardown() waits out before it cancels the list, so that a post
	// that passed the closing_ check is cancelled, never lost. All three
	// are touched by foreign threads.
	std::atomic<LoopTask *> tasks_{nullptr};
	std::atomic<bool> closing_{false};
	std::atomic<int> posting_{0};
	Deleter deleter_ = nullptr;
	struct dispatcher *tag_ = nullptr;

	detail::SlotTable<Slot> slots_; // free slots are linked by next_free
	size_t live_ = 0;
	// fd number -> slot that holds its kernel registration (kNoSlot: none).
	// Lets a stale event (whose fd was closed and the number reused) never
	// touch the new owner's registration.
	detail::PodArray<FdOwner> fd_owner_;
	uint32_t reg_gen_ = 0;  // generation of the newest kernel registration
	CallbackFrame *frames_ = nullptr;

	detail::TimeoutHeap<SlotPos> heap_;
	int64_t armed_ = detail::kNever;  // what the timerfd holds; kNever: disarmed
	// What the timerfd held when it last fired: the time dispatch_timeouts()
	// uses if the clock cannot be read (the kernel saw that deadline pass).
	int64_t fired_at_ = detail::kNever;
	bool timer_fired_ = false;        // expired in the kernel: must be re-armed

	int depth_ = 0;               // library frames that will look at *this again
	bool destroyed_ = false;      // free_dispatcher() ran; delete at depth 0
	bool tearing_down_ = false;   // cleanup callbacks are running
	bool dispatching_ = false;    // callbacks of a wait are running
	uint64_t epoch_ = 0;          // bumped by cleanup_dispatcher(): aborts batches
	bool rebuild_needed_ = false; // an orphaned registration was seen
	// Events removed (forget()) and registrations replaced in the current
	// batch: while 0, a stale record is an orphan (wait_inner()).
	uint32_t batch_removals_ = 0;
	int ncallbacks_ = 0;

	std::atomic<bool> stop_{false};

	std::array<struct epoll_event, kBatch> records_;
	std::vector<uint32_t> expired_;
	std::vector<Stamp> stamps_;
	// False once dispatch_timeouts() re-queued an entry under the pending
	// key: the floors of the stamps (Stamp::floor) may be below their
	// entries' keys until they are stamped.
	bool stamp_floors_ = true;
};

} // namespace vent
