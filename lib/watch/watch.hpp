// SPDX-License-Identifier: LGPL-2.1-or-later
// watch.hpp - id-based handles and periodic timeouts built on the public core API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <vent/event.h>
#include <vent/watch.h>

#include "base/fork_guard.hpp"
#include "base/time.hpp"
#include "core/loop_task.hpp"

namespace vent {

class WatchAdapter;

namespace detail {

// The next watch or timeout id (process-wide; ids stop at INT_MAX). Not
// static so that a unit test can start it near the end.
extern std::atomic<int> watch_next_id;

struct CoreObj;

// A struct event that knows its owner. Standard layout with the event
// first, so the struct event * the core hands back converts to it.
struct CoreEvent {
	struct event ev;
	CoreObj *owner;
};

/*
 * Something that is (or will be) registered with the dispatcher as one
 * struct event: the adapter's control eventfd, one entry per watched fd,
 * one per timeout. Every field is guarded by the adapter's mutex.
 */
struct CoreObj {
	enum class Kind { Control, Fd, Timer };
	explicit CoreObj(Kind k, WatchAdapter *a) : kind(k), ad(a) { ce.owner = this; }
	virtual ~CoreObj() = default;
	CoreObj(const CoreObj &) = delete;
	CoreObj &operator=(const CoreObj &) = delete;

	CoreEvent ce{};
	const Kind kind;
	WatchAdapter *const ad;
	bool in_core = false; // added to the dispatcher
	bool dirty = false;   // queued for the loop thread to sync
	// While the core holds &ce.ev, these keep the object and its adapter
	// alive; dropped when the event is removed or cleaned up.
	std::shared_ptr<CoreObj> core_ref;
	std::shared_ptr<WatchAdapter> ad_ref;
	// Intrusive FIFO of objects to sync: no allocation when queueing.
	std::shared_ptr<CoreObj> dirty_next;
};

// A handle or timeout as the user sees it: an id, an opaque, a free callback.
struct Watch {
	int id = 0;
	void *opaque = nullptr;
	vent_free_cb ff = nullptr;
	bool removed = false;
	// Callbacks of this watch under way (on the loop thread; more than one
	// only if a callback nests a dispatch through the compat API).
	int running = 0;
	// Removed while its callback ran and its ff was then due: the ff runs
	// when the callback returns (a callback that cleans or frees its own
	// dispatcher must not see its opaque freed under it).
	bool ff_deferred = false;
	// Intrusive FIFO of removed watches whose ff is due.
	std::shared_ptr<Watch> grave_next;
	virtual ~Watch() = default;
};

struct Handle;

// All the handle watches of one fd share one struct event: epoll allows one
// registration per fd, so the kernel mask is the union of theirs.
struct FdEntry final : CoreObj {
	FdEntry(WatchAdapter *a, int f) : CoreObj(Kind::Fd, a), fd(f) {}
	int fd;
	bool dead = false;                          // no watch left: remove from the core
	uint32_t core_mask = 0;                     // epoll mask the core has
	std::vector<std::shared_ptr<Handle>> watches; // in registration order
	// Intrusive list of entries the loop could not put into epoll: their
	// watches are told VENT_HANDLE_ERROR after the sync (no allocation).
	std::shared_ptr<FdEntry> failed_next;
};

struct Handle final : Watch {
	int fd = -1;
	int events = 0;
	vent_handle_cb cb = nullptr;
	std::shared_ptr<FdEntry> entry;
	uint64_t seen = 0; // dispatch round that last considered this watch
};

struct Timer final : CoreObj, Watch {
	explicit Timer(WatchAdapter *a) : CoreObj(Kind::Timer, a) {}
	int interval = -1;
	int64_t due = 0; // deadline on the dispatcher's clock (ns); kOff: none
	vent_timeout_cb cb = nullptr;
};

} // namespace detail

/*
 * The per-dispatcher state behind vent/watch.h. It uses the dispatcher only
 * through the public event.h API, and only on the loop thread: every
 * function may be called from any thread, so calls update the adapter's own
 * state under its mutex, queue what the dispatcher must learn, and post the
 * adapter's loop task (core/loop_task.hpp), which wakes the loop through
 * the dispatcher's own wake eventfd; the task (on the loop thread) then
 * applies the queue with event_add()/event_modify()/event_mod_timeout()/
 * event_remove() and runs the due free callbacks with the mutex released.
 * Even the first call on a dispatcher touches nothing of it but that post:
 * the task's first run adds the adapter's anchor event (no fd, no timeout),
 * whose cleanup tells the adapter that the dispatcher is cleaned or freed.
 * Dispatch consults the adapter's state, not the core's, so a change is in
 * force as soon as the call returns.
 */
class WatchAdapter : public std::enable_shared_from_this<WatchAdapter> {
public:
	explicit WatchAdapter(struct dispatcher *dsp);
	~WatchAdapter();
	WatchAdapter(const WatchAdapter &) = delete;
	WatchAdapter &operator=(const WatchAdapter &) = delete;

	// The adapter attached to @dsp; with @create, attaches one if there is
	// none (throws on failure, std::system_error(ECHILD) for a dispatcher
	// inherited across fork(); *@created says whether this call did).
	// nullptr if none and !@create. Any thread.
	static std::shared_ptr<WatchAdapter> get(struct dispatcher *dsp, bool create,
						 bool *created = nullptr);
	// Undoes the attach of an adapter that get() just created for an add
	// that then failed, unless a watch was added to it meanwhile. Any
	// thread.
	void abandon() noexcept;
	// True once abandon() dropped the adapter: an add that found it in the
	// registry before that and got -EBUSY gets a fresh one from get()
	// instead (with_adapter(), capi.cpp). Any thread.
	bool abandoned() noexcept;

	// What an add checks before get() creates an adapter, so that an add
	// with bad arguments never creates one (only allocation failures and
	// id exhaustion are left to abandon()): what epoll would refuse of
	// @fd (0 or -errno), and the deadline of a new timeout (due_in()).
	static int check_fd(int fd) noexcept;
	static int due_in(int clock, int interval_ms, int64_t &due) noexcept;

	bool forked() const noexcept { return fork_.forked(); }

	int add_handle(int fd, int events, vent_handle_cb cb, void *opaque, vent_free_cb ff);
	int update_handle(int id, int events) noexcept;
	int remove_handle(int id) noexcept;
	int add_timeout(int interval_ms, int64_t due, vent_timeout_cb cb, void *opaque,
			vent_free_cb ff);
	int update_timeout(int id, int interval_ms) noexcept;
	int remove_timeout(int id) noexcept;

	static constexpr int64_t kOff = INT64_MAX;

private:
	using Lock = std::unique_lock<std::mutex>;

	struct Task : LoopTask {
		WatchAdapter *ad = nullptr;
	};

	int attach_locked() noexcept;
	void unregister() noexcept;
	// Reads the dispatcher's clock into @ns; 0 or -errno.
	int now(int64_t &ns) const noexcept { return detail::now_ns(clock_, ns); }
	static int next_id() noexcept;
	void queue_locked(const std::shared_ptr<detail::CoreObj> &obj) noexcept;
	void bury_locked(const std::shared_ptr<detail::Watch> &w) noexcept;
	int kick_locked() noexcept;
	static uint32_t union_mask(const detail::FdEntry &e) noexcept;
	int set_core_timeout(detail::Timer &t) noexcept;
	void sync_locked() noexcept;
	std::shared_ptr<detail::Watch> take_graves_locked(std::shared_ptr<detail::Watch> head) noexcept;
	static int run_graves(std::shared_ptr<detail::Watch> head) noexcept;
	// After a callback of @w returned: runs @w's deferred ff, if any,
	// with @l released.
	static void callback_done(detail::Watch &w, Lock &l) noexcept;
	void detach_locked(std::shared_ptr<detail::Watch> &graves) noexcept;

	static int on_task(LoopTask *task, bool cancelled) noexcept;
	static int on_anchor(struct event *evt, uint32_t events) noexcept;
	static int on_fd(struct event *evt, uint32_t events) noexcept;
	// Tells the watches of @e about @ready (each at most once); takes
	// and drops @l around each callback. Returns the callbacks run.
	int deliver(detail::FdEntry &e, int ready, Lock &l) noexcept;
	static int on_timer(struct event *evt, uint32_t events) noexcept;
	static void on_cleanup(struct event *evt) noexcept;

	struct dispatcher *const dsp_;
	const int clock_;
	detail::ForkGuard fork_;
	// The anchor event (Kind::Control), in the core once attached.
	const std::shared_ptr<detail::CoreObj> ctl_;

	std::mutex mu_;
	bool detached_ = false;     // the dispatcher dropped us (cleanup/free)
	bool abandoned_ = false;    // detached by abandon(), not by the dispatcher
	uint64_t round_ = 0;        // dispatch rounds, for Handle::seen
	Task task_;
	// Set while task_ is posted: keeps the adapter alive for it.
	std::shared_ptr<WatchAdapter> task_ref_;
	std::unordered_map<int, std::shared_ptr<detail::Handle>> handles_;
	std::unordered_map<int, std::shared_ptr<detail::Timer>> timers_;
	std::unordered_map<int, std::shared_ptr<detail::FdEntry>> fds_; // live entries by fd
	std::shared_ptr<detail::CoreObj> dirty_head_;
	detail::CoreObj *dirty_tail_ = nullptr;
	std::shared_ptr<detail::Watch> grave_head_;
	detail::Watch *grave_tail_ = nullptr;
	std::shared_ptr<detail::FdEntry> failed_head_;
};

} // namespace vent
