// SPDX-License-Identifier: LGPL-2.1-or-later
// aio.hpp - blocking file system calls on a thread pool, completed on the loop.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <vent/aio.h>
#include <vent/event.h>

#include "base/fork_guard.hpp"
#include "base/wakeup.hpp"

struct io_uring;

namespace vent {

class Aio;

namespace detail {

enum class AioOp : uint8_t {
	Openat, Close, Pread, Pwrite, Fstatat, Statx, Unlinkat, Renameat, Mkdirat, Fsync,
	Fdatasync, Readahead,
};

// What a submit call hands over. Paths are borrowed here and copied into
// the request's single allocation.
// Each field has one meaning; the ones an operation does not use stay at
// their defaults.
struct AioArgs {
	AioOp op;
	int fd = -1;     // fd, or dirfd for the path operations
	int fd2 = -1;    // newdirfd of renameat
	int flags = 0;   // open, AT_* or unlinkat flags
	mode_t mode = 0; // openat and mkdirat permission bits
	unsigned mask = 0; // statx: STATX_* fields wanted
	void *buf = nullptr; // pread/pwrite data
	struct stat *st = nullptr;   // fstatat result
	struct statx *stx = nullptr; // statx result
	size_t len = 0;
	int64_t off = 0;
	const char *path = nullptr;
	const char *path2 = nullptr;
};

/*
 * One request: a single malloc() holding this header and the copied
 * path(s). Linked into exactly one of the pool's lists (queue, done, batch)
 * through next/prev, and into the id table through hnext.
 */
struct AioReq {
	AioReq *next;
	AioReq *prev;
	AioReq *hnext;
	vent_aio_cb cb;
	void *arg;
	ssize_t result;
	void *buf;          // pread/pwrite data
	struct stat *st;    // fstatat result
	struct statx *stx;  // statx result
	size_t len;
	int64_t off;
	const char *path;  // points into this allocation, or nullptr
	const char *path2; // ditto
	int id;
	int fd;
	int fd2;
	int flags;
	mode_t mode;   // openat, mkdirat
	unsigned mask; // statx
	AioOp op;
	// Pool: Queued -> Running under the pool's mutex; Running -> Done by
	// the thread without it (cancel reads it under the mutex). Ring:
	// RingWait -> RingSent -> Done, all on the loop thread.
	std::atomic<uint8_t> state;
	bool too_long; // a path did not fit in PATH_MAX: -ENAMETOOLONG
	bool route_held; // holds Aio::routes_[fd] until its callback
};

// The completion eventfd as a dispatcher event. Standard layout with the
// event first, so the struct event * of a callback converts back to it.
// Allocated apart from the pool: see Aio::destroy() on forked children.
struct AioEvent {
	struct event ev;
	Aio *owner;
};

// A pool thread. Allocated by the loop thread when it starts the thread,
// so a retiring thread needs no allocation: it only sets exited.
struct AioWorker {
	Aio *owner;
	AioWorker *next;
	pthread_t tid;
	bool exited; // under the pool's mutex: returned or about to return
};

// A doubly linked FIFO of requests (no allocation per push).
struct AioList {
	AioReq *head = nullptr;
	AioReq *tail = nullptr;
	size_t size = 0;
	void push(AioReq *r) noexcept;
	AioReq *pop() noexcept;
	void unlink(AioReq *r) noexcept;
	void splice(AioList &from) noexcept; // appends all of @from, empties it
	bool empty() const noexcept { return head == nullptr; }
};

} // namespace detail

class Aio {
public:
	// Creates the eventfd and registers it with @dsp (may be nullptr);
	// with @backend VENT_AIO_URING, also the ring (VENT_AIO_AUTO: the pool
	// alone, see the constructor).
	// Throws std::system_error / std::bad_alloc.
	Aio(struct dispatcher *dsp, int backend);
	~Aio();
	Aio(const Aio &) = delete;
	Aio &operator=(const Aio &) = delete;

	// The facade allocates the C tag holding this object; destroy() from a
	// callback defers the delete to the outermost poll() through this.
	using Deleter = void (*)(Aio *);
	void set_deleter(Deleter d) noexcept { deleter_ = d; }

	bool forked() const noexcept { return fork_.forked(); }
	int fd() const noexcept { return wake_.fd(); }
	unsigned pending() const noexcept { return pending_; }
	int backend() const noexcept { return ring_ ? VENT_AIO_URING : VENT_AIO_POOL; }

	int set_threads(unsigned min, unsigned max) noexcept;
	int submit(const detail::AioArgs &a, vent_aio_cb cb, void *arg);
	int cancel(int id) noexcept;
	int poll() noexcept;
	// vent_aio_free(): reports everything, joins, then deletes (maybe later).
	void destroy() noexcept;

private:
	static constexpr unsigned kMaxThreads = 1024;
	static constexpr int64_t kIdleNs = 2'000'000'000;
	enum State : uint8_t { kQueued, kRunning, kDone, kRingWait, kRingSent };

	static void *worker_main(void *self) noexcept;
	static int on_ready(struct event *evt, uint32_t events) noexcept;
	static void on_cleanup(struct event *evt) noexcept;
	static ssize_t execute(const detail::AioReq &r) noexcept;

	void worker_loop(detail::AioWorker *self) noexcept;
	void complete(detail::AioReq *r) noexcept; // any thread, no lock
	void take_done() noexcept;         // loop thread: done stack -> batch_
	int spawn_locked() noexcept;
	detail::AioWorker *take_exited_locked() noexcept;
	static void join_all(detail::AioWorker *list) noexcept;
	int run_batch() noexcept;
	void teardown() noexcept;
	void teardown_forked() noexcept;
	int enqueue_pool(detail::AioReq *r) noexcept;
	void kick() noexcept;

	// The io_uring side (aio/ring.cpp); ring_ is nullptr for the pool.
	int ring_create() noexcept;
	void ring_destroy() noexcept;
	bool ring_route(detail::AioReq &r) noexcept;
	int ring_fs_class(dev_t dev, int fd) noexcept;
	bool ring_pread_ok(detail::AioReq &r) noexcept;
	void route_release(const detail::AioReq &r) noexcept;
	void route_forget(int fd) noexcept;
	void ring_finish(detail::AioReq *r, int res) noexcept;
	void ring_flush() noexcept;
	void ring_drain_cq() noexcept;
	void ring_reap() noexcept;
	void ring_wait_all() noexcept;

	detail::AioReq *find(int id) const noexcept;
	void table_insert(detail::AioReq *r);
	void table_remove(detail::AioReq *r) noexcept;
	void table_grow();

	detail::ForkGuard fork_;
	detail::Wakeup wake_; // completions -> loop thread
	// io_uring: the requests not yet handed to the kernel (at most cq_cap_
	// are in flight, so the completion queue can never overflow).
	struct io_uring *ring_ = nullptr;
	detail::AioList ring_wait_;
	unsigned ring_inflight_ = 0;
	unsigned ring_cq_cap_ = 0;
	uint64_t ring_ops_ = 0;     // bit per detail::AioOp the kernel supports
	bool ring_taskrun_ = false; // the kernel flags pending completions
	bool ring_enabled_ = false; // created disabled, enabled on the loop thread
	std::vector<std::pair<dev_t, int>> ring_fs_; // st_dev -> ring_fs_class()
	// Route cache, indexed by fd: whether a pread of that fd may go to the
	// ring, decided once (fstat, fcntl) and kept while requests that used
	// it are pending (users > 0). See ring_pread_ok().
	struct Route {
		uint32_t users;
		bool ring;
	};
	std::vector<Route> routes_;
	detail::AioEvent *ev_ = nullptr; // nullptr: no dispatcher (or detached)
	Deleter deleter_ = nullptr;

	// Loop-thread state.
	unsigned pending_ = 0;
	int next_id_ = 1;
	std::vector<detail::AioReq *> table_; // id -> request, chained through hnext
	size_t table_live_ = 0;
	detail::AioList batch_;      // taken from done_head_, callbacks being run
	int depth_ = 0;      // poll() frames on the stack
	bool closing_ = false;   // destroy() started: submits are refused
	bool destroyed_ = false; // destroy() finished inside a callback

	// Shared with the threads, under mu_.
	pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t work_cv_;  // queue non-empty, stopping, or bounds changed
	detail::AioList queue_;
	detail::AioWorker *workers_ = nullptr;
	unsigned min_ = 1;
	unsigned max_ = 4;
	unsigned nthreads_ = 0; // started and not yet exited
	unsigned idle_ = 0;     // waiting for work
	unsigned woken_ = 0;    // idle threads signalled, not yet awake
	bool stopping_ = false;

	// Finished requests: a lock-free stack (threads push, the loop takes
	// all), so a completion never waits for the queue's mutex.
	std::atomic<detail::AioReq *> done_head_{nullptr};
};

} // namespace vent
