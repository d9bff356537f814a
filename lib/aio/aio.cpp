// SPDX-License-Identifier: LGPL-2.1-or-later
#include "aio/aio.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/capi.hpp"
#include "base/time.hpp"

namespace vent::detail {

void AioList::push(AioReq *r) noexcept
{
	r->next = nullptr;
	r->prev = tail;
	if (tail)
		tail->next = r;
	else
		head = r;
	tail = r;
	size++;
}

AioReq *AioList::pop() noexcept
{
	AioReq *r = head;
	if (r)
		unlink(r);
	return r;
}

void AioList::unlink(AioReq *r) noexcept
{
	if (r->prev)
		r->prev->next = r->next;
	else
		head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		tail = r->prev;
	r->next = r->prev = nullptr;
	size--;
}

void AioList::splice(AioList &from) noexcept
{
	if (!from.head)
		return;
	if (tail) {
		tail->next = from.head;
		from.head->prev = tail;
	} else {
		head = from.head;
	}
	tail = from.tail;
	size += from.size;
	from.head = from.tail = nullptr;
	from.size = 0;
}

} // namespace vent::detail

namespace vent {

using namespace detail;

Aio::Aio(struct dispatcher *dsp, int backend)
{
	// The ring first: with VENT_AIO_URING its failure is the caller's
	// error. Automatic selection runs the pool alone for now: a ring's
	// teardown makes the kernel notify the thread that used it, and under
	// load a notification can arrive after close_ring() stopped waiting
	// for it and interrupt the loop's next epoll_wait() with EINTR (seen
	// in 4 of 40 loaded runs of fault-fd), which ends event_loop().
	if (backend == VENT_AIO_URING) {
		int rc = ring_create();
		if (rc < 0)
			throw std::system_error(-rc, std::generic_category());
	}
	// Idle threads time out on the monotonic clock, so a wall clock step
	// neither retires them early nor keeps them forever.
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&work_cv_, &ca);
	pthread_condattr_destroy(&ca);
	if (dsp) {
		auto *e = new (std::nothrow) AioEvent{};
		if (!e) {
			pthread_cond_destroy(&work_cv_);
			ring_destroy();
			throw std::bad_alloc();
		}
		e->ev.fd = wake_.fd();
		e->ev.ep.events = EPOLLIN;
		e->ev.callback = on_ready;
		e->ev.cleanup = on_cleanup;
		e->owner = this;
		if (int rc = event_add(dsp, &e->ev); rc < 0) {
			delete e;
			pthread_cond_destroy(&work_cv_);
			ring_destroy();
			throw std::system_error(-rc, std::generic_category());
		}
		ev_ = e;
	}
}

Aio::~Aio()
{
	ring_destroy();
	// A condition variable copied into a forked child may count waiters
	// that exist only in the parent; glibc's destroy would wait for them
	// forever. The child's copy is just memory: leave it alone.
	if (forked())
		return;
	pthread_cond_destroy(&work_cv_);
	pthread_mutex_destroy(&mu_);
}

int Aio::on_ready(struct event *evt, uint32_t) noexcept
{
	reinterpret_cast<AioEvent *>(evt)->owner->poll();
	// If a callback freed the pool, destroy() removed this event and the
	// return value is ignored.
	return EVENTCB_CONTINUE;
}

// The dispatcher went away first (free_dispatcher, cleanup_dispatcher): the
// pool carries on without it. In a forked child whose pool was freed while
// the inherited dispatcher still held the event, owner is already nullptr.
void Aio::on_cleanup(struct event *evt) noexcept
{
	auto *e = reinterpret_cast<AioEvent *>(evt);
	if (e->owner)
		e->owner->ev_ = nullptr;
	delete e;
}

/* --- id table ------------------------------------------------------------
 * Ids are handed out in sequence, so "id & mask" spreads them evenly; the
 * table is kept at least as large as the number of live requests (a chain
 * rarely holds more than one). It is touched by the loop thread only.
 */

AioReq *Aio::find(int id) const noexcept
{
	if (table_.empty() || id <= 0)
		return nullptr;
	AioReq *r = table_[static_cast<size_t>(id) & (table_.size() - 1)];
	while (r && r->id != id)
		r = r->hnext;
	return r;
}

void Aio::table_grow()
{
	if (table_live_ < table_.size())
		return;
	std::vector<AioReq *> t(table_.empty() ? 64 : table_.size() * 2, nullptr);
	for (AioReq *head : table_) {
		while (head) {
			AioReq *next = head->hnext;
			AioReq *&slot = t[static_cast<size_t>(head->id) & (t.size() - 1)];
			head->hnext = slot;
			slot = head;
			head = next;
		}
	}
	table_.swap(t);
}

void Aio::table_insert(AioReq *r)
{
	AioReq *&slot = table_[static_cast<size_t>(r->id) & (table_.size() - 1)];
	r->hnext = slot;
	slot = r;
	table_live_++;
}

void Aio::table_remove(AioReq *r) noexcept
{
	AioReq **p = &table_[static_cast<size_t>(r->id) & (table_.size() - 1)];
	while (*p != r)
		p = &(*p)->hnext;
	*p = r->hnext;
	table_live_--;
}

/* --- threads ------------------------------------------------------------ */

int Aio::spawn_locked() noexcept
{
	auto *w = new (std::nothrow) AioWorker{this, nullptr, {}, false};
	if (!w)
		return -ENOMEM;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	// The threads run one syscall at a time: a small stack is plenty, and
	// 1024 threads must not reserve 8 GiB of address space.
	pthread_attr_setstacksize(&attr, 256 * 1024);
	// A pool thread must never take a signal: it would steal signals from
	// signalfd sources (which need them blocked in every thread) and run
	// user handlers on a thread the user does not know about. The mask is
	// inherited from the creating thread, so block everything around the
	// create and put the caller's mask back.
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&w->tid, &attr, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, nullptr);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		delete w;
		return -rc;
	}
	w->next = workers_;
	workers_ = w;
	nthreads_++;
	return 0;
}

// Unlinks the workers that retired; the caller joins them after unlocking.
AioWorker *Aio::take_exited_locked() noexcept
{
	AioWorker *out = nullptr;
	for (AioWorker **p = &workers_; *p;) {
		AioWorker *w = *p;
		if (w->exited) {
			*p = w->next;
			w->next = out;
			out = w;
		} else {
			p = &w->next;
		}
	}
	return out;
}

void Aio::join_all(AioWorker *list) noexcept
{
	while (list) {
		AioWorker *next = list->next;
		pthread_join(list->tid, nullptr);
		delete list;
		list = next;
	}
}

void *Aio::worker_main(void *p) noexcept
{
	auto *w = static_cast<AioWorker *>(p);
	w->owner->worker_loop(w);
	return nullptr;
}

void Aio::worker_loop(AioWorker *self) noexcept
{
	pthread_mutex_lock(&mu_);
	for (;;) {
		// Above the maximum (it was lowered): leave after the request
		// that was running, without taking another.
		if (nthreads_ > max_ && !stopping_)
			break;
		if (AioReq *r = queue_.pop()) {
			r->state.store(kRunning, std::memory_order_relaxed);
			pthread_mutex_unlock(&mu_);
			r->result = execute(*r);
			complete(r);
			pthread_mutex_lock(&mu_);
			continue;
		}
		if (stopping_)
			break;
		idle_++;
		bool timed_out = false;
		// CLOCK_MONOTONIC cannot fail to read; if it did, the zero
		// deadline would only end this idle wait early.
		struct timespec deadline;
		(void)deadline_after(CLOCK_MONOTONIC, kIdleNs, deadline);
		while (queue_.empty() && !stopping_ && nthreads_ <= max_) {
			int rc = nthreads_ > min_
					 ? pthread_cond_timedwait(&work_cv_, &mu_, &deadline)
					 : pthread_cond_wait(&work_cv_, &mu_);
			// Every return from the wait consumes a pending signal
			// (all idle threads sit in the wait while a submit holds
			// mu_, so each signal wakes one of them). Miscounting
			// low only costs an extra signal, never a lost one.
			if (woken_ > 0)
				woken_--;
			if (rc == ETIMEDOUT) {
				timed_out = true;
				break;
			}
		}
		idle_--;
		if (timed_out && queue_.empty() && !stopping_ && nthreads_ > min_)
			break;
	}
	// Retire: the loop thread joins this thread on its next submit (or in
	// vent_aio_free()); nothing here allocates.
	nthreads_--;
	self->exited = true;
	pthread_mutex_unlock(&mu_);
}

// One syscall, its result as -errno. The threads block every signal, so
// EINTR cannot happen here except from a stop/continue of the process.
ssize_t Aio::execute(const AioReq &r) noexcept
{
	if (r.too_long)
		return -ENAMETOOLONG;
	ssize_t rc;
	do {
		switch (r.op) {
		case AioOp::Openat:
			rc = openat(r.fd, r.path, r.flags, r.mode);
			break;
		case AioOp::Close:
			// Linux releases the fd even when close() fails: never retry.
			return close(r.fd) < 0 ? -errno : 0;
		case AioOp::Pread:
			rc = pread(r.fd, r.buf, r.len, static_cast<off_t>(r.off));
			break;
		case AioOp::Pwrite:
			rc = pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.off));
			break;
		case AioOp::Fstatat:
			rc = fstatat(r.fd, r.path, r.st, r.flags);
			break;
		case AioOp::Statx:
			rc = statx(r.fd, r.path, r.flags, r.mask, r.stx);
			break;
		case AioOp::Unlinkat:
			rc = unlinkat(r.fd, r.path, r.flags);
			break;
		case AioOp::Renameat:
			rc = renameat(r.fd, r.path, r.fd2, r.path2);
			break;
		case AioOp::Mkdirat:
			rc = mkdirat(r.fd, r.path, r.mode);
			break;
		case AioOp::Fsync:
			rc = fsync(r.fd);
			break;
		case AioOp::Fdatasync:
			rc = fdatasync(r.fd);
			break;
		case AioOp::Readahead:
			rc = readahead(r.fd, static_cast<off64_t>(r.off), r.len);
			break;
		default:
			return -EINVAL;
		}
	} while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : rc;
}

// Hands @r to the loop thread and makes the eventfd readable, once per
// batch: later completions find the wakeup pending and skip the write. Lock-free, so
// a thread finishing a request never contends with submits for mu_.
void Aio::complete(AioReq *r) noexcept
{
	r->state.store(kDone, std::memory_order_relaxed);
	r->next = done_head_.load(std::memory_order_relaxed);
	while (!done_head_.compare_exchange_weak(r->next, r))
		;
	kick();
}

// Makes the completion fd readable (coalesced until the next poll()).
void Aio::kick() noexcept
{
	wake_.signal();
}

// Moves the finished requests to batch_, oldest first.
void Aio::take_done() noexcept
{
	AioReq *r = done_head_.exchange(nullptr);
	AioList fifo;
	// The stack is newest first: pushing each at the head of a list
	// restores completion order.
	while (r) {
		AioReq *next = r->next;
		r->prev = nullptr;
		r->next = fifo.head;
		if (fifo.head)
			fifo.head->prev = r;
		else
			fifo.tail = r;
		fifo.head = r;
		fifo.size++;
		r = next;
	}
	batch_.splice(fifo);
}

/* --- the loop thread ---------------------------------------------------- */

int Aio::set_threads(unsigned min, unsigned max) noexcept
{
	if (max == 0 || max > kMaxThreads || min > max)
		return -EINVAL;
	pthread_mutex_lock(&mu_);
	min_ = min;
	max_ = max;
	// Idle threads re-check their bounds: surplus ones exit, and ones that
	// were kept for the old minimum start their idle timer.
	pthread_cond_broadcast(&work_cv_);
	// A raised maximum serves a backlog at once.
	while (queue_.size > idle_ && nthreads_ < max_ && !stopping_)
		if (spawn_locked() < 0)
			break;
	AioWorker *exited = take_exited_locked();
	pthread_mutex_unlock(&mu_);
	join_all(exited);
	return 0;
}

int Aio::submit(const AioArgs &a, vent_aio_cb cb, void *arg)
{
	if (closing_)
		return -EBUSY;
	// Make room first (may throw bad_alloc): a failed submit changes
	// nothing.
	table_grow();

	// A path of PATH_MAX bytes or more is what the kernel rejects with
	// ENAMETOOLONG; copying at most PATH_MAX bytes keeps the allocation
	// bounded, and the request reports that error like the syscall.
	bool too_long = false;
	size_t l1 = 0, l2 = 0;
	if (a.path) {
		l1 = strnlen(a.path, PATH_MAX);
		too_long |= l1 == PATH_MAX;
	}
	if (a.path2) {
		l2 = strnlen(a.path2, PATH_MAX);
		too_long |= l2 == PATH_MAX;
	}
	if (too_long)
		l1 = l2 = 0;
	size_t size = sizeof(AioReq) + (a.path ? l1 + 1 : 0) + (a.path2 ? l2 + 1 : 0);
	void *mem = std::malloc(size);
	if (!mem)
		return -ENOMEM;
	auto *r = new (mem) AioReq{};
	char *tail = reinterpret_cast<char *>(r + 1);
	if (a.path) {
		std::memcpy(tail, a.path, l1);
		tail[l1] = '\0';
		r->path = tail;
		tail += l1 + 1;
	}
	if (a.path2) {
		std::memcpy(tail, a.path2, l2);
		tail[l2] = '\0';
		r->path2 = tail;
	}
	r->too_long = too_long;
	r->cb = cb;
	r->arg = arg;
	r->op = a.op;
	r->fd = a.fd;
	r->fd2 = a.fd2;
	r->flags = a.flags;
	r->mode = a.mode;
	r->mask = a.mask;
	r->buf = a.buf;
	r->st = a.st;
	r->stx = a.stx;
	r->len = a.len;
	r->off = a.off;
	do {
		r->id = next_id_;
		next_id_ = next_id_ == INT_MAX ? 1 : next_id_ + 1;
	} while (find(r->id));

	if (ring_ && ring_route(*r)) {
		r->state.store(kRingWait, std::memory_order_relaxed);
		ring_wait_.push(r);
		// From a callback, poll() flushes on its way out; otherwise
		// the eventfd brings the loop to poll(), which flushes the
		// whole batch in one io_uring_enter().
		if (depth_ == 0)
			kick();
	} else if (int rc = enqueue_pool(r); rc < 0) {
		if (r->route_held)
			route_release(*r);
		std::free(mem);
		return rc;
	}

	table_insert(r);
	pending_++;
	return r->id;
}

// Queues @r for the threads, starting one if needed.
int Aio::enqueue_pool(AioReq *r) noexcept
{
	pthread_mutex_lock(&mu_);
	// Start a thread when this request would otherwise wait: nobody idle
	// to take it (idle threads already have earlier requests to take).
	if (nthreads_ < max_ && queue_.size >= idle_) {
		int rc = spawn_locked();
		if (rc < 0 && nthreads_ == 0) {
			pthread_mutex_unlock(&mu_);
			return rc == -ENOMEM ? -ENOMEM : -EAGAIN;
		}
	}
	r->state.store(kQueued, std::memory_order_relaxed);
	queue_.push(r);
	// One wakeup per idle thread: a burst of submits while a signalled
	// thread is still waking must not pay a futex call each.
	if (idle_ > woken_) {
		woken_++;
		pthread_cond_signal(&work_cv_);
	}
	AioWorker *exited = take_exited_locked();
	pthread_mutex_unlock(&mu_);
	join_all(exited);
	return 0;
}

int Aio::cancel(int id) noexcept
{
	AioReq *r = find(id);
	if (!r)
		return -ENOENT;
	// Ring states change on this thread only. Once in the kernel, a
	// request runs to its end: io_uring's own cancel would interrupt
	// running operations (an open could report -ERESTARTSYS).
	switch (r->state.load(std::memory_order_relaxed)) {
	case kRingWait:
		ring_wait_.unlink(r);
		r->result = -ECANCELED;
		complete(r);
		return 0;
	case kRingSent:
		return -EBUSY;
	default:
		break;
	}
	// Only a thread taking it from the queue (under mu_) moves a request
	// out of Queued, so the check and the unlink are one step.
	pthread_mutex_lock(&mu_);
	uint8_t state = r->state.load(std::memory_order_relaxed);
	if (state == kQueued)
		queue_.unlink(r);
	pthread_mutex_unlock(&mu_);
	if (state == kRunning)
		return -EBUSY;
	if (state != kQueued)
		return -ENOENT;
	r->result = -ECANCELED;
	complete(r);
	return 0;
}

int Aio::poll() noexcept
{
	if (depth_ > 0 || closing_)
		return -EBUSY;
	// Consume the wakeup before taking the stack: a completion pushed
	// after the take writes the eventfd again (base/wakeup.hpp), so no
	// wakeup is lost; one pushed in between only causes an empty poll.
	wake_.drain();
	if (ring_)
		ring_reap();
	take_done();
	depth_++;
	int n = run_batch();
	depth_--;
	// What this pass's callbacks (or earlier calls) submitted, in one go.
	if (ring_ && !closing_)
		ring_flush();
	if (destroyed_ && depth_ == 0)
		deleter_(this);
	return n;
}

// Runs the callbacks of batch_. Each request is freed before its callback,
// so the callback may submit, cancel or free the pool.
int Aio::run_batch() noexcept
{
	int n = 0;
	while (!destroyed_) {
		AioReq *r = batch_.pop();
		if (!r)
			break;
		table_remove(r);
		pending_--;
		if (r->route_held)
			route_release(*r);
		vent_aio_cb cb = r->cb;
		void *arg = r->arg;
		int id = r->id;
		ssize_t result = r->result;
		std::free(r);
		cb(id, result, arg);
		n++;
	}
	return n;
}

void Aio::teardown() noexcept
{
	closing_ = true;
	if (ev_) {
		if (event_remove(&ev_->ev) == 0) {
			delete ev_;
		} else {
			// Should not happen; leave the event to the dispatcher's
			// cleanup, which sees no owner and only frees it.
			ev_->owner = nullptr;
		}
		ev_ = nullptr;
	}
	pthread_mutex_lock(&mu_);
	stopping_ = true;
	AioList cancelled;
	cancelled.splice(queue_);
	pthread_cond_broadcast(&work_cv_);
	AioWorker *all = workers_;
	workers_ = nullptr;
	pthread_mutex_unlock(&mu_);
	// Requests still waiting for the ring never reached the kernel.
	cancelled.splice(ring_wait_);
	for (AioReq *r = cancelled.head; r; r = r->next) {
		r->result = -ECANCELED;
		r->state.store(kDone, std::memory_order_relaxed);
	}
	// Running requests finish (however long they block) and are pushed
	// to the done stack; the ring's land in batch_.
	join_all(all);
	if (ring_)
		ring_wait_all();
	// No thread is left: what was finished comes first, then the
	// cancelled queue. Callbacks may cancel (and so push) more.
	take_done();
	batch_.splice(cancelled);
	depth_++;
	while (!batch_.empty()) {
		run_batch();
		take_done();
	}
	depth_--;
}

// In a forked child the threads do not exist and mu_ may have been copied
// locked: free what the child's copy holds without locking or waiting, and
// without callbacks (the requests belong to the parent).
void Aio::teardown_forked() noexcept
{
	closing_ = true;
	for (AioReq *&head : table_) {
		while (head) {
			AioReq *next = head->hnext;
			std::free(head);
			head = next;
		}
	}
	table_live_ = 0;
	queue_ = {};
	batch_ = {};
	ring_wait_ = {};
	done_head_.store(nullptr, std::memory_order_relaxed);
	while (AioWorker *w = workers_) {
		workers_ = w->next;
		delete w;
	}
	// The inherited dispatcher still holds the event; in the child it can
	// only be freed, and its cleanup then frees the event.
	if (ev_) {
		ev_->owner = nullptr;
		ev_ = nullptr;
	}
}

void Aio::destroy() noexcept
{
	if (closing_)
		return; // from a callback run by destroy() itself
	if (forked())
		teardown_forked();
	else
		teardown();
	if (depth_ > 0)
		destroyed_ = true; // the outermost poll() deletes
	else
		deleter_(this);
}

} // namespace vent
