// SPDX-License-Identifier: LGPL-2.1-or-later
// aio/ring.cpp - the io_uring backend of Aio: requests that io_uring runs
// exactly as the syscall would go to a ring whose eventfd is the pool's
// completion eventfd; everything else stays on the thread pool.
#include "aio/aio.hpp"

#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <new>

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#if VENT_HAVE_URING
#include <linux/magic.h>
#include <liburing.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#endif

#if VENT_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)(addr), (void)(len))
#define RUNNING_ON_VALGRIND 0
#endif

namespace vent {

using namespace detail;

#if VENT_HAVE_URING

namespace {

// Submission queue entries; the completion queue holds kRingCq, and never
// more than that many requests are in flight (the rest wait in ring_wait_).
constexpr unsigned kRingSq = 256;
constexpr unsigned kRingCq = 1024;
// read(2) and write(2) move at most this much in one call; io_uring's
// length is 32 bits. Longer requests go to the pool, which truncates as
// the syscall does.
constexpr size_t kMaxRw = 0x7ffff000;

// The operations the ring runs (see ring_route() for why only these).
constexpr struct {
	AioOp op;
	uint8_t opcode;
} kRingOps[] = {
	{AioOp::Pread, IORING_OP_READ},
	{AioOp::Close, IORING_OP_CLOSE},
};

constexpr uint64_t op_bit(AioOp op) noexcept
{
	return uint64_t{1} << static_cast<unsigned>(op);
}

// Closing a ring makes the kernel notify the closing thread
// (task_work_add(TWA_SIGNAL), measured: every time, even for a ring never
// used, within 25 ms): that would interrupt this thread's next
// epoll_wait() with EINTR, ending event_loop(). Take it here instead: a
// sleep that the notification interrupts, bounded in case it came already.
// epoll_wait() returns at the notification (ppoll() and nanosleep()
// restart and sleep on). The kernel sends it from a workqueue, which a
// loaded machine can delay well past 200 ms (seen: a later epoll_wait() of
// the loop got EINTR in 15 of 200 loaded runs with a 200 ms bound), so the
// bound is generous: it only costs time if the notification never comes,
// and it arrives within 25 ms on an idle machine.
void close_ring(struct io_uring *ring) noexcept
{
	constexpr int kNotifyBoundMs = 2000;
	io_uring_queue_exit(ring);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep >= 0) {
		struct epoll_event ev;
		epoll_wait(ep, &ev, 1, kNotifyBoundMs);
		close(ep);
	}
}


} // namespace

/*
 * SINGLE_ISSUER | DEFER_TASKRUN: completions are posted only when this
 * thread enters the ring, so they never interrupt epoll_wait() with EINTR
 * (task work would otherwise run as a signal-like notification). The ring
 * is created disabled and enabled by the first flush, so the "single
 * issuer" is the loop thread even when vent_aio_new() ran elsewhere.
 * Older kernels refuse those flags (EINVAL): COOP_TASKRUN, then a plain
 * ring. EPERM (seccomp, io_uring_disabled), ENOSYS, ENOMEM (memlock) and
 * the like mean no ring at all; the caller decides what that means.
 */
int Aio::ring_create() noexcept
{
	static constexpr unsigned kTries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE,
		IORING_SETUP_CQSIZE,
		0,
	};
	auto *ring = new (std::nothrow) struct io_uring;
	if (!ring)
		return -ENOMEM;
	int rc = -EINVAL;
	unsigned flags = 0;
	for (unsigned f : kTries) {
		struct io_uring_params p;
		std::memset(&p, 0, sizeof(p));
		p.flags = f;
		p.cq_entries = kRingCq;
		rc = io_uring_queue_init_params(kRingSq, ring, &p);
		if (rc == 0) {
			flags = f;
			ring_cq_cap_ = p.cq_entries;
			break;
		}
		if (rc != -EINVAL)
			break;
	}
	if (rc < 0) {
		delete ring;
		return rc;
	}
	// A forked child must never see the parent's rings (it could submit
	// into them): the mappings are not inherited at all. Not under
	// valgrind 3.19, which does not know MADV_DONTFORK: it crashed when a
	// child's own mmap() landed where it believed the parent's ring still
	// was (the fork guard keeps a child off the ring in any case).
	rc = RUNNING_ON_VALGRIND ? 0 : io_uring_ring_dontfork(ring);
	if (rc == 0)
		rc = io_uring_register_eventfd(ring, wake_.fd());
	if (rc < 0) {
		close_ring(ring);
		delete ring;
		return rc;
	}
	ring_ops_ = 0;
	if (struct io_uring_probe *probe = io_uring_get_probe_ring(ring)) {
		for (const auto &e : kRingOps)
			if (io_uring_opcode_supported(probe, e.opcode))
				ring_ops_ |= op_bit(e.op);
		io_uring_free_probe(probe);
	}
	ring_taskrun_ = flags & IORING_SETUP_TASKRUN_FLAG;
	ring_enabled_ = !(flags & IORING_SETUP_R_DISABLED);
	ring_ = ring;
	return 0;
}


// In a forked child the ring's memory is not mapped (dontfork) and the
// parent holds the ring open: only the child's reference to the ring file
// and the struct are released.
void Aio::ring_destroy() noexcept
{
	if (!ring_)
		return;
	if (forked()) {
		close(ring_->ring_fd);
	} else {
		// Task work still queued on the ring would be moved to this
		// thread with a further notification: run it first.
		if (ring_enabled_)
			io_uring_get_events(ring_);
		close_ring(ring_);
	}
	delete ring_;
	ring_ = nullptr;
}

// How the ring runs file operations on a file system (cached per device;
// st_dev is the key the callers have at hand).
enum FsClass {
	kFsNowait, // ext4, xfs, btrfs: reads complete without a kernel worker
	kFsSlow,   // tmpfs, overlayfs: every read on a kernel worker (and
		   // slower than the pool, measured)
	kFsOther,  // unknown: may need a kernel worker
};

int Aio::ring_fs_class(dev_t dev, int fd) noexcept
{
	for (const auto &e : ring_fs_)
		if (e.first == dev)
			return e.second;
	struct statfs sf;
	int cls = kFsOther;
	if (fstatfs(fd, &sf) == 0) {
		switch (sf.f_type) {
		case EXT4_SUPER_MAGIC: // also ext2 and ext3
		case XFS_SUPER_MAGIC:
		case BTRFS_SUPER_MAGIC:
			cls = kFsNowait;
			break;
		case TMPFS_MAGIC:
		case OVERLAYFS_SUPER_MAGIC:
			cls = kFsSlow;
			break;
		default:
			break;
		}
	}
	if (ring_fs_.size() >= 64)
		ring_fs_.clear();
	try {
		ring_fs_.emplace_back(dev, cls);
	} catch (...) {
		// Not cached: asked again next time.
	}
	return cls;
}

/*
 * Where @r runs: true for the ring, false for the pool.
 *
 * The loop thread's epoll_wait() must never see EINTR, and io_uring
 * interrupts the submitting thread (task_work_add(TWA_SIGNAL)) whenever it
 * starts a further kernel worker: when a busy worker blocks with work queued
 * behind it, which the loop cannot rule out (measured: 50 fsyncs in flight,
 * and even one fsync submitted while the worker of a finished write was
 * still winding down, made vent_wait() return -EINTR, which ends
 * event_loop()). So the ring takes only what completes without a kernel
 * worker: pread of regular files on ext4, xfs and btrfs (buffered reads
 * complete in the submit or through page-cache callbacks) and of block
 * devices, without O_DIRECT; close of regular files and directories there
 * (no ->flush). Writes may allocate blocks and go to a worker; metadata
 * operations and fsync always do: they run on the pool.
 *
 * And it takes them only where io_uring answers exactly as the syscall on
 * a pool thread would: a negative offset (io_uring: "the file position";
 * pread: EINVAL), lengths over what one read(2) moves (io_uring: 32 bits),
 * anything but a regular file or block device (a pipe would be read;
 * pread: ESPIPE), an fd that is not open (the pool reports EBADF).
 */
bool Aio::ring_route(AioReq &r) noexcept
{
	if (!(ring_ops_ & op_bit(r.op)))
		return false;
	switch (r.op) {
	case AioOp::Close: {
		// Rare next to reads: decided afresh, and the fd's cached
		// route ends here (the fd may be reused once this runs).
		route_forget(r.fd);
		struct stat st;
		if (fstat(r.fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
			return false;
		return ring_fs_class(st.st_dev, r.fd) == kFsNowait;
	}
	case AioOp::Pread:
		if (r.off < 0 || r.len > kMaxRw ||
		    static_cast<uint64_t>(r.off) + r.len > static_cast<uint64_t>(INT64_MAX))
			return false;
		return ring_pread_ok(r);
	default:
		return false;
	}
}

/*
 * Whether a pread of r.fd may go to the ring: a regular file on a
 * kFsNowait file system or a block device, without O_DIRECT. That costs
 * two syscalls (fstat, fcntl), as much as the read itself when the data is
 * cached, so the answer is kept per fd while a request that used it is
 * pending (until its callback starts). The fd cannot become another file
 * meanwhile: closing, dup2()-ing over or changing the status flags of an
 * fd with requests pending on it is the caller's error (aio.h), as for
 * POSIX aio. The entry ends when its last request's callback starts, or
 * at a vent_aio_close() of the fd; forgetting early is always safe (the
 * next request asks the kernel again).
 */
bool Aio::ring_pread_ok(AioReq &r) noexcept
{
	constexpr int kRouteFds = 1 << 16; // fds above: asked every time
	size_t i = static_cast<size_t>(r.fd);
	if (r.fd >= 0 && i < routes_.size() && routes_[i].users > 0) {
		routes_[i].users++;
		r.route_held = true;
		return routes_[i].ring;
	}
	struct stat st;
	bool ring = false;
	if (fstat(r.fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		int fl = fcntl(r.fd, F_GETFL);
		ring = fl >= 0 && !(fl & O_DIRECT) &&
		       (S_ISBLK(st.st_mode) || ring_fs_class(st.st_dev, r.fd) == kFsNowait);
	}
	if (r.fd < 0 || r.fd >= kRouteFds)
		return ring;
	if (i >= routes_.size()) {
		try {
			routes_.resize(std::max(i + 1, routes_.size() * 2));
		} catch (...) {
			return ring; // not cached: asked again next time
		}
	}
	routes_[i] = Route{1, ring};
	r.route_held = true;
	return ring;
}

// The callback of @r is about to run: its fd may be closed from now on.
void Aio::route_release(const AioReq &r) noexcept
{
	size_t i = static_cast<size_t>(r.fd);
	// An entry forgotten (close) and made again for a new file may lose
	// a user too early here: that only forgets it early.
	if (i < routes_.size() && routes_[i].users > 0)
		routes_[i].users--;
}

void Aio::route_forget(int fd) noexcept
{
	size_t i = static_cast<size_t>(fd);
	if (fd >= 0 && i < routes_.size())
		routes_[i].users = 0;
}

void Aio::ring_finish(AioReq *r, int res) noexcept
{
	r->result = res;
	// The kernel wrote the data through the ring, out of valgrind's sight.
	if (r->op == AioOp::Pread && res > 0)
		VALGRIND_MAKE_MEM_DEFINED(r->buf, static_cast<size_t>(res));
	r->state.store(kDone, std::memory_order_relaxed);
	ring_inflight_--;
	batch_.push(r);
}

// Moves the completions in the queue to batch_ (without entering).
void Aio::ring_drain_cq() noexcept
{
	unsigned head, n = 0;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(ring_, head, cqe)
	{
		ring_finish(static_cast<AioReq *>(io_uring_cqe_get_data(cqe)), cqe->res);
		n++;
	}
	io_uring_cq_advance(ring_, n);
}

// Moves the completed requests to batch_. With DEFER_TASKRUN, completions
// are posted into the queue only when this thread enters the ring: enter
// once if the kernel flags pending work (or cannot flag it).
void Aio::ring_reap() noexcept
{
	if (ring_inflight_ == 0)
		return;
	bool enter = true;
	if (ring_taskrun_ && io_uring_cq_ready(ring_) > 0)
		enter = __atomic_load_n(ring_->sq.kflags, __ATOMIC_ACQUIRE) &
			(IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
	if (enter)
		io_uring_get_events(ring_);
	ring_drain_cq();
}

// Hands the waiting requests to the kernel, as many as the completion
// queue has room for, in one io_uring_enter() (more only when more than a
// submission queue's worth wait).
void Aio::ring_flush() noexcept
{
	if (ring_wait_.empty() || ring_inflight_ >= ring_cq_cap_)
		return;
	if (!ring_enabled_) {
		// The calling thread becomes the ring's single issuer.
		if (syscall(__NR_io_uring_register, ring_->ring_fd, IORING_REGISTER_ENABLE_RINGS,
			    nullptr, 0) < 0 &&
		    errno != EBADFD)
			return;
		ring_enabled_ = true;
	}
	while (!ring_wait_.empty() && ring_inflight_ < ring_cq_cap_) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring_);
		if (!sqe) {
			if (io_uring_submit(ring_) <= 0)
				break;
			continue;
		}
		AioReq *r = ring_wait_.pop();
		if (r->op == AioOp::Pread)
			io_uring_prep_read(sqe, r->fd, r->buf, static_cast<unsigned>(r->len),
					   static_cast<uint64_t>(r->off));
		else
			io_uring_prep_close(sqe, r->fd); // the only other (ring_route)
		io_uring_sqe_set_data(sqe, r);
		r->state.store(kRingSent, std::memory_order_relaxed);
		ring_inflight_++;
	}
	int rc = io_uring_submit_and_get_events(ring_);
	// Transient (interrupted, kernel short of memory): what stayed in the
	// submission queue goes with the next pass. Reads of cached pages
	// complete inside the submit, and the kernel signals the eventfd for
	// those only after an RCU grace period (measured: about 8 ms per
	// batch, 17.7k reads/s at 128 in flight): signal it at once.
	if ((rc < 0 && (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)) ||
	    io_uring_cq_ready(ring_) > 0)
		kick();
}

// vent_aio_free(): waits for every request in the kernel, however long
// its operation blocks, and moves it to batch_.
void Aio::ring_wait_all() noexcept
{
	while (ring_inflight_ > 0) {
		int rc = io_uring_submit_and_wait(ring_, 1);
		if (rc == -EEXIST) {
			// Not the ring's submitter (vent_aio_free() on another
			// thread): wait for the completions without entering.
			struct pollfd pfd = {wake_.fd(), POLLIN, 0};
			if (io_uring_cq_ready(ring_) == 0)
				::poll(&pfd, 1, 100);
			wake_.drain();
		} else if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY &&
			   rc != -ETIME) {
			break; // cannot wait: abandoned
		}
		ring_drain_cq();
	}
}

#else // !VENT_HAVE_URING: built without liburing, the pool only

int Aio::ring_create() noexcept
{
	return -ENOSYS;
}
void Aio::ring_destroy() noexcept {}
bool Aio::ring_route(AioReq &) noexcept
{
	return false;
}
int Aio::ring_fs_class(dev_t, int) noexcept
{
	return 0;
}
bool Aio::ring_pread_ok(AioReq &) noexcept
{
	return false;
}
void Aio::route_release(const AioReq &) noexcept {}
void Aio::route_forget(int) noexcept {}
void Aio::ring_finish(AioReq *, int) noexcept {}
void Aio::ring_reap() noexcept {}
void Aio::ring_drain_cq() noexcept {}
void Aio::ring_flush() noexcept {}
void Aio::ring_wait_all() noexcept {}

#endif

} // namespace vent
