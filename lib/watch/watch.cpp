// SPDX-License-Identifier: LGPL-2.1-or-later
#include "watch/watch.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <system_error>

#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fork_locked.hpp"

namespace vent {

using detail::CoreObj;
using detail::FdEntry;
using detail::Handle;
using detail::Timer;
using detail::Watch;
using detail::kNsPerMs;

// Ids come from one process-wide counter, so they stay unique even across
// cleanup_dispatcher(), which detaches the adapter and lets a new one start.
std::atomic<int> detail::watch_next_id{1};

namespace {

/*
 * Which dispatcher has which adapter. The dispatcher's public API has no
 * slot for user data, so the association lives here, in a registry that
 * is never destroyed (a process that exits while a loop thread still runs
 * must not find the map gone under it).
 *
 * Fork: the mutex is taken around fork() (base/fork_locked.hpp), so a
 * child never inherits it locked or the map half changed, and can attach
 * adapters to dispatchers of its own. An adapter's own mutex is never
 * taken in a child: every path checks for fork first (get(), on_cleanup()),
 * and the loop-thread paths cannot run there (the core refuses to wait on
 * an inherited dispatcher).
 */
struct Registry : detail::ForkLocked<Registry> {
	std::unordered_map<struct dispatcher *, std::shared_ptr<WatchAdapter>> map;
	// Adapters a forked child inherited for dispatchers it has freed since:
	// their state may have been mid-change in another thread of the parent
	// at fork(), so the child never touches (or destroys) them.
	std::vector<std::shared_ptr<WatchAdapter>> inherited;
};

Registry &registry() noexcept
{
	return Registry::instance();
}

uint32_t to_epoll(int events) noexcept
{
	uint32_t m = 0;
	if (events & VENT_HANDLE_READABLE)
		m |= EPOLLIN;
	if (events & VENT_HANDLE_WRITABLE)
		m |= EPOLLOUT;
	// ERROR/HANGUP are always reported by epoll; naming them keeps a
	// registration that asks only for them non-zero (0 means disabled).
	if (events)
		m |= EPOLLERR | EPOLLHUP;
	return m;
}

int from_epoll(uint32_t m) noexcept
{
	int ev = 0;
	if (m & EPOLLIN)
		ev |= VENT_HANDLE_READABLE;
	if (m & EPOLLOUT)
		ev |= VENT_HANDLE_WRITABLE;
	if (m & EPOLLERR)
		ev |= VENT_HANDLE_ERROR;
	if (m & EPOLLHUP)
		ev |= VENT_HANDLE_HANGUP;
	return ev;
}

// What a watch is told about: its own bits plus ERROR/HANGUP, as poll(2)
// does; nothing at all when it is disabled.
int deliverable(int wanted, int ready) noexcept
{
	if (wanted == 0)
		return 0;
	return ready & (wanted | VENT_HANDLE_ERROR | VENT_HANDLE_HANGUP);
}

// User code runs in noexcept frames: a throwing C++ callback terminates.
void call_handle(vent_handle_cb cb, int id, int fd, int events, void *opaque) noexcept
{
	cb(id, fd, events, opaque);
}

void call_timeout(vent_timeout_cb cb, int id, void *opaque) noexcept
{
	cb(id, opaque);
}

void call_free(vent_free_cb ff, void *opaque) noexcept
{
	ff(opaque);
}

CoreObj *owner_of(struct event *evt) noexcept
{
	return reinterpret_cast<detail::CoreEvent *>(evt)->owner;
}

} // namespace

WatchAdapter::WatchAdapter(struct dispatcher *dsp)
	: dsp_(dsp), clock_(dispatcher_get_clocksource(dsp)),
	  ctl_(std::make_shared<CoreObj>(CoreObj::Kind::Control, this))
{
	if (clock_ < 0)
		throw std::system_error(-clock_, std::generic_category());
	task_.run = on_task;
	task_.ad = this;
	// The anchor: no fd, no timeout, so it never fires; what it brings is
	// its cleanup callback, run when the dispatcher is cleaned or freed.
	struct event &ev = ctl_->ce.ev;
	ev.fd = -1;
	ev.callback = on_anchor;
	ev.cleanup = on_cleanup;
}

// Only memory: never a call into the dispatcher, which may already be gone.
WatchAdapter::~WatchAdapter() = default;

std::shared_ptr<WatchAdapter> WatchAdapter::get(struct dispatcher *dsp, bool create, bool *created)
{
	// A dispatcher inherited across fork(): -ECHILD before any lock (the
	// dispatcher's own check, through the public API).
	if (int rc = dispatcher_get_clocksource(dsp); rc < 0)
		throw std::system_error(-rc, std::generic_category());
	Registry &r = registry();
	std::lock_guard<std::mutex> g(r.mu_);
	auto it = r.map.find(dsp);
	if (it != r.map.end()) {
		if (!it->second->forked())
			return it->second;
		// In a forked child, the adapter of an inherited dispatcher that
		// the child freed, found under the address of a new one.
		r.inherited.push_back(std::move(it->second));
		r.map.erase(it);
	}
	if (!create)
		return nullptr;
	auto ad = std::make_shared<WatchAdapter>(dsp);
	// The map entry first: its node is an allocation, and once the task
	// is posted nothing may fail any more, or the loop would attach an
	// adapter that no map finds.
	auto pos = r.map.emplace(dsp, ad).first;
	{
		Lock l(ad->mu_);
		if (int rc = ad->kick_locked(); rc < 0) {
			// -EBUSY: the dispatcher is being cleaned or freed.
			r.map.erase(pos);
			throw std::system_error(-rc, std::generic_category());
		}
	}
	if (created)
		*created = true;
	return ad;
}

// Removes @this from the registry, if it is still the adapter of its
// dispatcher there.
void WatchAdapter::unregister() noexcept
{
	Registry &r = registry();
	std::lock_guard<std::mutex> g(r.mu_);
	auto it = r.map.find(dsp_);
	if (it != r.map.end() && it->second.get() == this)
		r.map.erase(it);
}

/*
 * A failed first add must leave the dispatcher as it found it: the adapter
 * is dropped from the registry, and its attach task (posted by get())
 * then finds it detached and does nothing. Another thread may have found
 * the adapter in the map since get() published it; if it added a watch,
 * or the loop attached the adapter already, it stays.
 */
void WatchAdapter::abandon() noexcept
{
	Registry &r = registry();
	std::lock_guard<std::mutex> g(r.mu_);
	Lock l(mu_);
	if (detached_ || !handles_.empty() || !timers_.empty() || ctl_->in_core)
		return;
	auto it = r.map.find(dsp_);
	if (it != r.map.end() && it->second.get() == this)
		r.map.erase(it);
	// Adds racing with us now fail with -EBUSY; with_adapter() sees
	// abandoned() and retries them on a fresh adapter.
	detached_ = true;
	abandoned_ = true;
}

bool WatchAdapter::abandoned() noexcept
{
	Lock l(mu_);
	return abandoned_;
}

/*
 * Adds the anchor event, on the loop thread (from the first task run): the
 * one dispatcher call that used to be made on the caller's thread. Only
 * -ENOMEM can fail it (no fd, no timeout).
 */
int WatchAdapter::attach_locked() noexcept
{
	int rc = event_add(dsp_, &ctl_->ce.ev);
	if (rc < 0)
		return rc;
	ctl_->in_core = true;
	ctl_->core_ref = ctl_;
	ctl_->ad_ref = shared_from_this();
	return 0;
}

// The deadline @interval_ms from now on @clock into @due (see Timer::due);
// 0 or -errno.
int WatchAdapter::due_in(int clock, int interval_ms, int64_t &due) noexcept
{
	if (interval_ms <= 0) {
		due = interval_ms < 0 ? kOff : 0;
		return 0;
	}
	int64_t t = 0;
	int rc = detail::now_ns(clock, t);
	if (rc == 0)
		due = t + interval_ms * kNsPerMs;
	return rc;
}

int WatchAdapter::next_id() noexcept
{
	int id = detail::watch_next_id.load(std::memory_order_relaxed);
	do {
		if (id == INT_MAX)
			return -ENOSPC;
	} while (!detail::watch_next_id.compare_exchange_weak(id, id + 1,
							      std::memory_order_relaxed));
	return id;
}

/*
 * Has the loop thread run on_task(): posts the adapter's task, which rides
 * on the dispatcher's own wakeup (core/loop_task.hpp). Coalesced: one post
 * until the task has run. The task holds a reference to the adapter.
 * Returns 0, or -EBUSY while the dispatcher is being cleaned or freed:
 * then the cleanup detaches the adapter and takes what was queued.
 */
int WatchAdapter::kick_locked() noexcept
{
	if (task_ref_)
		return 0;
	task_ref_ = shared_from_this();
	int rc = post_loop_task(dsp_, &task_);
	if (rc < 0)
		task_ref_.reset(); // the caller holds another reference
	return rc;
}

void WatchAdapter::queue_locked(const std::shared_ptr<CoreObj> &obj) noexcept
{
	if (!obj->dirty) {
		obj->dirty = true;
		if (dirty_tail_)
			dirty_tail_->dirty_next = obj;
		else
			dirty_head_ = obj;
		dirty_tail_ = obj.get();
	}
	kick_locked();
}

// Queues @w's free callback for the loop thread. Detached (detach_locked()
// buries every watch inside the dispatcher's cleanup or free, and takes the
// graves itself): no post to a dispatcher that is closing.
void WatchAdapter::bury_locked(const std::shared_ptr<Watch> &w) noexcept
{
	w->removed = true;
	if (grave_tail_)
		grave_tail_->grave_next = w;
	else
		grave_head_ = w;
	grave_tail_ = w.get();
	if (!detached_)
		kick_locked();
}

uint32_t WatchAdapter::union_mask(const FdEntry &e) noexcept
{
	int events = 0;
	for (const auto &h : e.watches)
		events |= h->events;
	return to_epoll(events);
}

// ---------------------------------------------------------------------------
// Handles

// The core learns about an fd later, on the loop thread, where an error
// could not be reported: catch what epoll would refuse now.
int WatchAdapter::check_fd(int fd) noexcept
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
		return -EPERM;
	return 0;
}

// @fd passed check_fd().
int WatchAdapter::add_handle(int fd, int events, vent_handle_cb cb, void *opaque, vent_free_cb ff)
{
	auto h = std::make_shared<Handle>();
	h->fd = fd;
	h->events = events;
	h->cb = cb;
	h->opaque = opaque;
	h->ff = ff;

	Lock l(mu_);
	// Detached, or about to be: the dispatcher is being cleaned or freed.
	if (detached_ || loop_closing(dsp_))
		return -EBUSY;
	std::shared_ptr<FdEntry> entry;
	auto it = fds_.find(fd);
	if (it != fds_.end()) {
		entry = it->second;
	} else {
		entry = std::make_shared<FdEntry>(this, fd);
		fds_.reserve(fds_.size() + 1);
	}
	entry->watches.reserve(entry->watches.size() + 1);
	handles_.reserve(handles_.size() + 1);
	int id = next_id();
	if (id < 0)
		return id;
	h->id = id;
	h->entry = entry;
	// reserve() on a hash map makes room for buckets, not for the node
	// each insertion allocates: insert into the maps first, undo on
	// failure, and only then link the watch into its entry (whose vector
	// has room), so a failed add leaves no watch behind.
	auto hpos = handles_.emplace(id, h).first;
	if (it == fds_.end()) {
		try {
			fds_.emplace(fd, entry);
		} catch (...) {
			handles_.erase(hpos);
			throw;
		}
	}
	const uint32_t before = union_mask(*entry);
	entry->watches.push_back(h);
	if (it == fds_.end() || union_mask(*entry) != before || !entry->in_core)
		queue_locked(entry);
	return id;
}

int WatchAdapter::update_handle(int id, int events) noexcept
{
	Lock l(mu_);
	auto it = handles_.find(id);
	if (it == handles_.end())
		return -ENOENT;
	Handle &h = *it->second;
	const uint32_t before = union_mask(*h.entry);
	h.events = events;
	// An fd that epoll refused on the loop thread is not in the core: any
	// update, even with the same events, is the documented retry.
	if (union_mask(*h.entry) != before || !h.entry->in_core)
		queue_locked(h.entry);
	return 0;
}

int WatchAdapter::remove_handle(int id) noexcept
{
	Lock l(mu_);
	auto it = handles_.find(id);
	if (it == handles_.end())
		return -ENOENT;
	std::shared_ptr<Handle> h = std::move(it->second);
	handles_.erase(it);
	FdEntry &e = *h->entry;
	const uint32_t before = union_mask(e);
	e.watches.erase(std::find(e.watches.begin(), e.watches.end(), h));
	if (e.watches.empty()) {
		// A later add on the same fd number gets a fresh entry: the user
		// may close this fd and open another one under the same number.
		e.dead = true;
		fds_.erase(e.fd);
		queue_locked(h->entry);
	} else if (union_mask(e) != before) {
		queue_locked(h->entry);
	}
	bury_locked(h);
	return 0;
}

// ---------------------------------------------------------------------------
// Timeouts

// @due comes from due_in() on the dispatcher's clock.
int WatchAdapter::add_timeout(int interval_ms, int64_t due, vent_timeout_cb cb, void *opaque,
			      vent_free_cb ff)
{
	auto t = std::make_shared<Timer>(this);
	t->cb = cb;
	t->opaque = opaque;
	t->ff = ff;
	t->interval = interval_ms;

	Lock l(mu_);
	// Detached, or about to be: the dispatcher is being cleaned or freed.
	if (detached_ || loop_closing(dsp_))
		return -EBUSY;
	timers_.reserve(timers_.size() + 1);
	int id = next_id();
	if (id < 0)
		return id;
	t->id = id;
	t->due = due;
	timers_.emplace(id, t);
	queue_locked(t);
	return id;
}

int WatchAdapter::update_timeout(int id, int interval_ms) noexcept
{
	Lock l(mu_);
	auto it = timers_.find(id);
	if (it == timers_.end())
		return -ENOENT;
	Timer &t = *it->second;
	// Any value >= 0 restarts the period, even the same one: libvirt's
	// keepalive relies on it.
	int64_t due = 0;
	if (int rc = due_in(clock_, interval_ms, due); rc < 0)
		return rc; // nothing changed
	t.interval = interval_ms;
	t.due = due;
	queue_locked(it->second);
	return 0;
}

int WatchAdapter::remove_timeout(int id) noexcept
{
	Lock l(mu_);
	auto it = timers_.find(id);
	if (it == timers_.end())
		return -ENOENT;
	std::shared_ptr<Timer> t = std::move(it->second);
	timers_.erase(it);
	queue_locked(t);
	bury_locked(t);
	return 0;
}

// Makes the core's timeout for @t match t.due. Loop thread only. Returns
// event_mod_timeout()'s result (-ENOMEM when the core's timeout heap could
// not grow; the caller queues @t to try again).
int WatchAdapter::set_core_timeout(Timer &t) noexcept
{
	struct timespec ts = {0, 0}; // none
	if (t.due != kOff) {
		// An absolute deadline in the past fires on the next wait: that
		// is how a 0 interval runs once per iteration.
		ts = detail::deadline_to_timespec(std::max<int64_t>(t.due, 1));
	}
	if (!t.in_core) {
		t.ce.ev.tmo = ts;
		return 0;
	}
	return event_mod_timeout(&t.ce.ev, &ts);
}

// ---------------------------------------------------------------------------
// The loop thread

/*
 * Applies the queued changes to the dispatcher. Runs on the loop thread
 * from the control callback, with mu_ held: the core calls made here never
 * call back into user code.
 */
void WatchAdapter::sync_locked() noexcept
{
	std::shared_ptr<CoreObj> obj = std::move(dirty_head_);
	dirty_tail_ = nullptr;
	while (obj) {
		std::shared_ptr<CoreObj> next = std::move(obj->dirty_next);
		obj->dirty = false;
		struct event &ev = obj->ce.ev;
		bool drop;
		// The core could not grow its tables: the caller was told the
		// watch exists, so it must not be lost. Queue it again; the kick
		// runs this again in the next wait.
		bool retry = false;
		if (obj->kind == CoreObj::Kind::Fd) {
			auto &e = static_cast<FdEntry &>(*obj);
			drop = e.dead;
			if (!drop) {
				const uint32_t mask = union_mask(e);
				if (!e.in_core) {
					ev.fd = e.fd;
					ev.ep.events = mask;
					ev.callback = on_fd;
					ev.cleanup = on_cleanup;
					// Checked in add_handle(), but epoll may
					// still refuse it here: the fd was closed
					// since (-EBADF), epoll's watch limit
					// (-ENOSPC), another event holds it
					// (-EEXIST). Its watches are told
					// VENT_HANDLE_ERROR rather than left
					// silent.
					int rc = event_add(dsp_, &ev);
					if (rc == 0) {
						e.in_core = true;
						e.core_mask = mask;
					} else if (rc != -ENOMEM && mask != 0) {
						e.failed_next = std::move(failed_head_);
						failed_head_ = std::static_pointer_cast<FdEntry>(obj);
					}
					retry = rc == -ENOMEM;
				} else if (mask != e.core_mask) {
					ev.ep.events = mask;
					if (event_modify(&ev) == 0)
						e.core_mask = mask;
				}
			}
		} else {
			auto &t = static_cast<Timer &>(*obj);
			drop = t.removed;
			if (!drop) {
				int rc = set_core_timeout(t);
				if (!t.in_core) {
					ev.fd = -1;
					ev.flags = TMO_ABS;
					ev.callback = on_timer;
					ev.cleanup = on_cleanup;
					rc = event_add(dsp_, &ev);
					if (rc == 0)
						t.in_core = true;
				}
				retry = rc == -ENOMEM;
			}
		}
		if (obj->in_core && !obj->core_ref) {
			obj->core_ref = obj;
			obj->ad_ref = shared_from_this();
		}
		if (drop && obj->in_core) {
			event_remove(&ev);
			obj->in_core = false;
			// Our caller holds a reference to the adapter; the
			// object itself is held by @obj until the next round.
			obj->core_ref.reset();
			obj->ad_ref.reset();
		}
		if (retry)
			queue_locked(obj);
		obj = std::move(next);
	}
}

/*
 * The part of a list of removed watches whose free callbacks may run now:
 * all but those whose callback is under way (a callback that cleaned or
 * freed its own dispatcher, which detached the adapter). Those are marked
 * and their ff runs when the callback returns (callback_done()).
 */
std::shared_ptr<Watch> WatchAdapter::take_graves_locked(std::shared_ptr<Watch> head) noexcept
{
	std::shared_ptr<Watch> out;
	Watch *tail = nullptr;
	while (head) {
		std::shared_ptr<Watch> next = std::move(head->grave_next);
		if (head->running > 0) {
			head->ff_deferred = true;
		} else if (tail) {
			tail->grave_next = head;
			tail = head.get();
		} else {
			out = head;
			tail = head.get();
		}
		head = std::move(next);
	}
	return out;
}

void WatchAdapter::callback_done(Watch &w, Lock &l) noexcept
{
	if (--w.running > 0 || !w.ff_deferred)
		return;
	w.ff_deferred = false;
	if (w.ff) {
		l.unlock();
		call_free(w.ff, w.opaque);
		l.lock();
	}
}

// Runs the free callbacks of a list of removed watches; no lock held.
// Returns how many ran.
int WatchAdapter::run_graves(std::shared_ptr<Watch> head) noexcept
{
	int n = 0;
	while (head) {
		std::shared_ptr<Watch> next = std::move(head->grave_next);
		if (head->ff) {
			call_free(head->ff, head->opaque);
			n++;
		}
		head = std::move(next);
	}
	return n;
}

/*
 * The adapter's loop task (posted by kick_locked()). On the loop thread:
 * attaches the adapter on its first run, applies the queued changes, tells
 * the watches of fds epoll refused, and runs the due free callbacks.
 * Cancelled (the dispatcher is cleaned or freed with the task pending):
 * detaches the adapter, as the anchor's cleanup does.
 */
int WatchAdapter::on_task(LoopTask *task, bool cancelled) noexcept
{
	WatchAdapter *ad = static_cast<Task *>(task)->ad;
	// free_dispatcher() in a forked child: see on_cleanup().
	if (ad->forked())
		return 0;
	std::shared_ptr<WatchAdapter> keep;
	std::shared_ptr<Watch> graves;
	int n = 0;
	if (cancelled)
		ad->unregister();
	{
		Lock l(ad->mu_);
		keep = std::move(ad->task_ref_);
		if (cancelled) {
			if (!ad->detached_)
				ad->detach_locked(graves);
		} else if (ad->detached_) {
			return 0; // abandoned, or cleaned since the post
		} else if (!ad->ctl_->in_core && ad->attach_locked() < 0) {
			// -ENOMEM: try again in the next wait.
			ad->kick_locked();
			return 0;
		} else {
			ad->sync_locked();
			std::shared_ptr<FdEntry> failed = std::move(ad->failed_head_);
			while (failed) {
				std::shared_ptr<FdEntry> next = std::move(failed->failed_next);
				n += ad->deliver(*failed, VENT_HANDLE_ERROR, l);
				failed = std::move(next);
			}
			graves = std::move(ad->grave_head_);
			ad->grave_tail_ = nullptr;
		}
		graves = ad->take_graves_locked(std::move(graves));
	}
	// The watches in @graves were removed before this point, and none of
	// their callbacks is running (take_graves_locked()).
	return n + run_graves(std::move(graves));
}

// The anchor never fires (no fd, no timeout).
int WatchAdapter::on_anchor(struct event *evt, uint32_t events) noexcept
{
	(void)evt;
	(void)events;
	return EVENTCB_CONTINUE;
}

int WatchAdapter::on_fd(struct event *evt, uint32_t events) noexcept
{
	auto *e = static_cast<FdEntry *>(owner_of(evt));
	WatchAdapter *ad = e->ad;
	const int ready = from_epoll(events);
	// Declared before the lock: if these are the last references, they
	// are released after the mutex inside the adapter.
	std::shared_ptr<WatchAdapter> keep;
	std::shared_ptr<CoreObj> self;
	Lock l(ad->mu_);
	keep = e->ad_ref;
	self = e->core_ref;
	ad->deliver(*e, ready, l);
	l.unlock();
	return EVENTCB_CONTINUE;
}

int WatchAdapter::deliver(FdEntry &e, int ready, Lock &l) noexcept
{
	const uint64_t round = ++round_;
	int n = 0;
	/*
	 * Each watch of the fd at most once per round. The list may change
	 * while a callback runs (any watch may be removed, added or updated),
	 * so rescan from the start after each callback; fds carry a handful of
	 * watches at most.
	 */
	for (;;) {
		// Held for the callback_done() after the callback, which may
		// remove the watch (and clean or free the dispatcher).
		std::shared_ptr<Handle> h;
		int events = 0;
		for (const auto &w : e.watches) {
			if (w->seen == round)
				continue;
			w->seen = round;
			events = deliverable(w->events, ready);
			if (events) {
				h = w;
				break;
			}
		}
		if (!h)
			break;
		const vent_handle_cb cb = h->cb;
		const int id = h->id, fd = h->fd;
		void *const opaque = h->opaque;
		h->running++;
		l.unlock();
		call_handle(cb, id, fd, events, opaque);
		n++;
		l.lock();
		callback_done(*h, l);
	}
	return n;
}

int WatchAdapter::on_timer(struct event *evt, uint32_t events) noexcept
{
	(void)events;
	auto *t = static_cast<Timer *>(owner_of(evt));
	WatchAdapter *ad = t->ad;
	std::shared_ptr<WatchAdapter> keep;
	std::shared_ptr<CoreObj> self;
	Lock l(ad->mu_);
	keep = t->ad_ref;
	self = t->core_ref;
	if (t->removed || t->due == kOff)
		return EVENTCB_CONTINUE;
	// The core found the deadline passed; if the clock cannot be read
	// now, the deadline itself is the best estimate of the time.
	int64_t now = 0;
	if (ad->now(now) < 0)
		now = t->due;
	if (t->due > now) {
		// The period was restarted after the core's deadline was set:
		// never fire early, wait for the new deadline.
		if (ad->set_core_timeout(*t) == -ENOMEM)
			ad->queue_locked(self);
		return EVENTCB_CONTINUE;
	}
	// Re-arm before the callback, so that an update made while it runs
	// (from it or from another thread) is the one that stays.
	t->due = t->interval == 0 ? 0 : now + t->interval * kNsPerMs;
	if (ad->set_core_timeout(*t) == -ENOMEM)
		ad->queue_locked(self);
	const vent_timeout_cb cb = t->cb;
	const int id = t->id;
	void *const opaque = t->opaque;
	t->running++;
	l.unlock();
	call_timeout(cb, id, opaque);
	l.lock();
	callback_done(*t, l); // @t is held by @self
	return EVENTCB_CONTINUE;
}

/*
 * The dispatcher is being cleaned or freed (or, for an fd entry or timer
 * only, that is the only way the core drops an event without us asking).
 * When the control event goes, the adapter detaches: every watch still
 * registered is removed and the free callbacks run here, on the thread
 * that called free_dispatcher()/cleanup_dispatcher().
 */
void WatchAdapter::on_cleanup(struct event *evt) noexcept
{
	CoreObj *obj = owner_of(evt);
	WatchAdapter *ad = obj->ad;
	// free_dispatcher() in a forked child: another thread of the parent
	// may have held the adapter's mutex, or been changing its state, at
	// fork(). Leave it all alone (it stays reachable from the registry);
	// no free callback runs in the child.
	if (ad->forked())
		return;
	std::shared_ptr<WatchAdapter> keep;
	std::shared_ptr<CoreObj> self;
	std::shared_ptr<Watch> graves;
	bool control = obj->kind == CoreObj::Kind::Control;
	if (control)
		ad->unregister();
	{
		Lock l(ad->mu_);
		obj->in_core = false;
		keep = std::move(obj->ad_ref);
		self = std::move(obj->core_ref);
		if (control && !ad->detached_) {
			ad->detach_locked(graves);
			graves = ad->take_graves_locked(std::move(graves));
		}
	}
	run_graves(std::move(graves));
}

void WatchAdapter::detach_locked(std::shared_ptr<Watch> &graves) noexcept
{
	detached_ = true;
	for (auto &[id, h] : handles_)
		bury_locked(h);
	for (auto &[id, t] : timers_)
		bury_locked(t);
	handles_.clear();
	timers_.clear();
	for (auto &[fd, e] : fds_)
		e->watches.clear();
	fds_.clear();
	// Break the queue's chain; the objects still in the core are held by
	// their own core_ref until their cleanup runs.
	std::shared_ptr<CoreObj> obj = std::move(dirty_head_);
	dirty_tail_ = nullptr;
	while (obj) {
		obj->dirty = false;
		obj = std::move(obj->dirty_next);
	}
	graves = std::move(grave_head_);
	grave_tail_ = nullptr;
}

} // namespace vent
