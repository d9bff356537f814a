/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio.h - asynchronous file operations: blocking file system calls run on
 * a small thread pool, and their results come back as callbacks on the
 * loop thread (the model of Perl's Linux::AIO, libeio and libuv's fs pool).
 *
 * epoll cannot wait for regular files, so vent runs openat(), pread(),
 * fsync() and friends on pool threads. Each finished request is queued for
 * the loop thread; an eventfd, registered as an ordinary event in the
 * dispatcher given to vent_aio_new(), makes the dispatcher run the
 * callbacks. Without a dispatcher, poll vent_aio_fd() for readability in
 * any loop and call vent_aio_poll().
 *
 * Rules a user must know:
 *
 * - Every submit returns a request id (> 0) or a negative errno. A request
 *   that was accepted gets exactly one callback, with the syscall's return
 *   value or -errno (never a global errno), and only ever on the loop
 *   thread: from the dispatcher's wait, from vent_aio_poll(), or from
 *   vent_aio_free(). No callback runs on a pool thread or inside a submit
 *   or cancel call.
 * - Paths are copied at submit time; buffers (pread, pwrite, struct stat,
 *   struct statx) stay the caller's and must stay valid until the callback.
 *   Paths are resolved when the request runs, relative to @dirfd (AT_FDCWD:
 *   the working directory at that moment): prefer the *at forms with a
 *   directory fd if the working directory may change.
 * - An fd given to a request must stay the same open file until that
 *   request's callback starts: do not close() it, dup2() over it or change
 *   its status flags (O_DIRECT) while a request on it is pending (as for
 *   POSIX aio). The library may rely on that: it decides once how to run
 *   the reads of an fd, and keeps that decision while reads of it are
 *   pending. From the callback on (or with vent_aio_close(), whose request
 *   closes it), the fd may be closed and its number reused.
 * - A pool is single-threaded: every function here must be called from one
 *   thread at a time (the loop thread). Only the pool's own threads run
 *   concurrently; they touch nothing but the pool and the request's
 *   syscall. They block every signal, so a signalfd source keeps working.
 * - Threads start on demand (when a request is queued and no thread is
 *   idle), up to the maximum, and a thread idle for 2 seconds exits while
 *   more than the minimum are running. The defaults are 1..4.
 * - Memory: one allocation per request, about 120 bytes plus the copied
 *   path(s), and 8 bytes of id table per request outstanding (the table
 *   grows to the peak number of requests in flight and stays there). There
 *   is no limit on queued requests besides memory.
 * - Exit: a process may exit (return from main(), exit()) with requests
 *   queued or running; the library registers no exit handler and has no
 *   static destructor that waits, so exit never hangs. Requests that did
 *   not complete are simply abandoned (no callback); a write that was
 *   running may be partial.
 * - Fork: a pool belongs to the process that created it. In a forked child
 *   (which has none of the pool's threads), every call on an inherited pool
 *   returns -ECHILD (or 0 / nothing), except vent_aio_free(), which releases
 *   the child's copy without callbacks. A child may create pools of its own.
 * - Callbacks run inside noexcept frames: a C++ callback that throws
 *   terminates the process.
 *
 * Backends. Where the kernel allows it (and the library was built with
 * liburing), a pool also owns an io_uring, which signals the same
 * completion eventfd. The ring runs what it completes without a kernel
 * worker thread: pread of regular files on ext4, xfs and btrfs and of
 * block devices (not O_DIRECT), and close of regular files and
 * directories there. Everything else runs on the threads: io_uring would
 * hand it to a kernel worker, and starting one interrupts the submitting
 * thread, so the loop's epoll_wait() would fail with EINTR (as would end
 * event_loop()). A request also goes to the threads whenever io_uring
 * would answer differently from the syscall (a negative offset, a length
 * over 2 GiB - 4 KiB, a pipe or socket, an fd that is not open). So
 * results, error codes, callbacks and every rule above are the same on
 * both backends; only speed differs, and:
 *
 * - Requests for the ring are handed to the kernel in batches, in one
 *   io_uring_enter() per poll: a request submitted outside the pool's
 *   callbacks starts when the loop next runs the pool (the eventfd is made
 *   readable for that), not at once. At most 1024 are in the kernel; the
 *   rest wait in the pool's memory and can be cancelled until then.
 * - The ring's calls after the first request must come from one thread
 *   (the thread whose poll first submits becomes the ring's only
 *   submitter, IORING_SETUP_SINGLE_ISSUER). vent_aio_free() may still
 *   run on another thread: it then waits for the requests in the kernel
 *   by the completion eventfd, without entering the ring, and reports
 *   them as on the loop thread.
 * - vent_aio_free() takes longer (about 25 ms when idle): closing a ring
 *   makes the kernel notify the closing thread, which would interrupt its
 *   next wait; vent_aio_free() waits for that notification (at most 2 s).
 *   Under load a later notification can still interrupt a wait (-EINTR).
 * - Each pool holds one more fd (the ring) and about 50 KiB of ring memory.
 *
 * See vent_aio_new() for how the backend is chosen.
 */
#ifndef VENT_AIO_H
#define VENT_AIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "defs.h"

VENT_BEGIN_DECLS

struct dispatcher;
struct vent_aio;
struct statx;

/**
 * typedef vent_aio_cb - completion callback of a request
 * @id: the request id that the submit call returned
 * @result: the syscall's return value (a new fd for openat, bytes for
 *          pread/pwrite, 0 for the others), or -errno; -ECANCELED if the
 *          request was cancelled (vent_aio_cancel(), vent_aio_free()) before
 *          it started
 * @arg: the @arg given at submit
 *
 * Runs on the loop thread. It may submit and cancel requests on any pool,
 * and may call vent_aio_free() on its own pool (the remaining requests are
 * reported before that call returns). vent_aio_poll() from a callback
 * returns -EBUSY.
 */
typedef void (*vent_aio_cb)(int id, ssize_t result, void *arg);

/* Backends, for vent_aio_new_backend() and vent_aio_backend(). */
#define VENT_AIO_AUTO 0  /* the library's choice: today the pool (see vent_aio_new()) */
#define VENT_AIO_POOL 1  /* the thread pool only */
#define VENT_AIO_URING 2 /* io_uring, with the pool for what the ring cannot do */

/**
 * vent_aio_new() - create a pool
 * @dsp: the dispatcher that runs the completions, or NULL (then the caller
 *       waits for vent_aio_fd() to become readable and calls vent_aio_poll())
 *
 * Opens one eventfd (non-blocking, close-on-exec) and, with @dsp, adds an
 * event for it to @dsp. No thread is started until the first request.
 * Free the pool with vent_aio_free() before its dispatcher. If the
 * dispatcher is freed (or cleaned up) first, the pool detaches from it and
 * keeps working in the NULL-dispatcher mode.
 *
 * The backend comes from the environment variable VENT_AIO_BACKEND:
 * "pool", "uring" or "auto" (unset or empty: "auto"; ignored in set-user-ID
 * programs), then as for vent_aio_new_backend(). Automatic selection runs
 * the pool alone: io_uring only on request (VENT_AIO_URING), because
 * freeing a ring makes the kernel notify the thread that used it, and on a
 * loaded machine that notification can come late enough to interrupt that
 * thread's next vent_wait() or event_loop() with -EINTR.
 *
 * Return: the pool, or NULL with errno set: ECHILD if @dsp was inherited
 * across fork(), EMFILE or ENFILE when out of fds, ENOMEM when out of
 * memory, EINVAL if VENT_AIO_BACKEND holds another value, what
 * vent_aio_new_backend() reports for VENT_AIO_URING, or what event_add()
 * reports for @dsp.
 */
struct vent_aio *vent_aio_new(struct dispatcher *dsp) VENT_NOEXCEPT;

/**
 * vent_aio_new_backend() - create a pool with a chosen backend
 * @dsp: as for vent_aio_new()
 * @backend: VENT_AIO_AUTO (as vent_aio_new() without the environment
 *           variable), VENT_AIO_POOL (threads only) or VENT_AIO_URING
 *           (io_uring, or fail)
 *
 * With VENT_AIO_URING, the thread that runs the ring's completions may see
 * an -EINTR from vent_wait() or event_loop() after vent_aio_free() (the
 * kernel's teardown notification, see vent_aio_new()): wait again then.
 *
 * Return: the pool, or NULL with errno set as for vent_aio_new(), and:
 * EINVAL for another @backend; with VENT_AIO_URING, ENOSYS if the library
 * was built without liburing or the kernel has no io_uring, or the error
 * of io_uring_setup(2) (EPERM, ENOMEM, ...).
 */
struct vent_aio *vent_aio_new_backend(struct dispatcher *dsp, int backend) VENT_NOEXCEPT;

/**
 * vent_aio_backend() - the backend a pool runs on
 * @aio: the pool
 *
 * Return: VENT_AIO_URING if the pool has an io_uring, VENT_AIO_POOL if it
 * runs everything on threads; -EINVAL if @aio is NULL; -ECHILD in a forked
 * child.
 */
int vent_aio_backend(const struct vent_aio *aio) VENT_NOEXCEPT;

/**
 * vent_aio_free() - complete every request, stop the threads, free the pool
 * @aio: the pool; NULL is a no-op
 *
 * Before it returns, every request not yet reported gets its callback:
 * -ECANCELED for queued ones, the real result for those that were running
 * (it waits for them, however long their syscall blocks) and for those that
 * had finished. Then it joins every thread, removes the event from the
 * dispatcher and frees the pool. No callback runs after it returns.
 * Requests submitted from those callbacks are refused with -EBUSY.
 *
 * May be called from one of the pool's own callbacks: the rest is reported
 * before it returns, and the memory is released when the callback returns
 * to the library. In a forked child, it releases the inherited copy without
 * callbacks and without touching the parent's threads or dispatcher.
 */
void vent_aio_free(struct vent_aio *aio) VENT_NOEXCEPT;

/**
 * vent_aio_set_threads() - set the pool's thread bounds
 * @aio: the pool
 * @min: threads kept alive when idle (0 allowed); not started in advance
 * @max: threads started at most (1 to 1024)
 *
 * Threads start on demand up to @max. An idle thread exits after 2 seconds
 * while more than @min run. Lowering @max below the current number makes
 * idle threads exit at once and busy ones after their current request.
 *
 * Return: 0; -EINVAL if @aio is NULL, @max is 0 or above 1024, or @min >
 * @max; -ECHILD in a forked child.
 */
int vent_aio_set_threads(struct vent_aio *aio, unsigned min, unsigned max) VENT_NOEXCEPT;

/**
 * vent_aio_fd() - the completion fd
 * @aio: the pool
 *
 * Readable (EPOLLIN) while completions wait for vent_aio_poll(). Owned by
 * the pool: do not close or read it. With a dispatcher, the dispatcher
 * already watches it.
 *
 * Return: the fd; -EINVAL if @aio is NULL; -ECHILD in a forked child.
 */
int vent_aio_fd(const struct vent_aio *aio) VENT_NOEXCEPT;

/**
 * vent_aio_poll() - run the callbacks of finished requests
 * @aio: the pool
 *
 * Never blocks. Runs the callbacks of the requests that had finished when
 * it started (requests finishing meanwhile wait for the next call, so a
 * callback that submits cannot starve the loop). With a dispatcher it is
 * called for you.
 *
 * Return: the number of callbacks run (0 if none); -EINVAL if @aio is NULL;
 * -EBUSY from one of the pool's callbacks or during vent_aio_free();
 * -ECHILD in a forked child.
 */
int vent_aio_poll(struct vent_aio *aio) VENT_NOEXCEPT;

/**
 * vent_aio_pending() - count the requests not yet reported
 * @aio: the pool
 *
 * Counts requests submitted whose callback has not run yet (queued,
 * running, or finished and waiting for vent_aio_poll()).
 *
 * Return: the count; 0 if @aio is NULL or in a forked child.
 */
unsigned vent_aio_pending(const struct vent_aio *aio) VENT_NOEXCEPT;

/**
 * vent_aio_cancel() - cancel a request that has not started
 * @aio: the pool
 * @id: a request id returned by a submit call
 *
 * A queued request is taken out of the queue; its callback runs later on
 * the loop thread (never inside this call) with -ECANCELED. A running
 * request cannot be stopped: it completes normally. On the io_uring
 * backend, "queued" means not yet handed to the kernel, and "running"
 * means handed to it.
 *
 * Return: 0 if cancelled; -EINVAL if @aio is NULL; -EBUSY if the request
 * is running; -ENOENT if @id is unknown or the request has finished
 * (including one already cancelled whose callback has not run yet);
 * -ECHILD in a forked child.
 */
int vent_aio_cancel(struct vent_aio *aio, int id) VENT_NOEXCEPT;

/*
 * Requests. Each returns a request id (> 0) or -errno, and then exactly one
 * callback reports the result. Submit errors are about the pool, never
 * about the file system: the syscall's own errors (ENOENT, EBADF, EISDIR,
 * ENAMETOOLONG, ...) arrive in the callback, exactly as the synchronous
 * call would return them.
 */

/**
 * vent_aio_openat() - openat(2) on the pool
 * @aio: the pool
 * @dirfd: directory fd or AT_FDCWD
 * @path: the path, copied (a path of PATH_MAX bytes or more is reported as
 *        -ENAMETOOLONG in the callback, as by the kernel)
 * @flags: open flags, passed unchanged (add O_CLOEXEC yourself)
 * @mode: mode for O_CREAT / O_TMPFILE
 * @cb: the completion callback; its result is the new fd, which belongs to
 *      the caller (if the callback never runs, because the process exits,
 *      the fd stays open)
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio, @path or @cb is NULL; -ENOMEM
 * when out of memory; -EAGAIN if no pool thread exists and none can be
 * created; -EBUSY during vent_aio_free(); -ECHILD in a forked child.
 */
int vent_aio_openat(struct vent_aio *aio, int dirfd, const char *path, int flags, mode_t mode,
		    vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_close() - close(2) on the pool
 * @aio: the pool
 * @fd: the fd to close (at the time the request runs)
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_close(struct vent_aio *aio, int fd, vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_pread() - pread(2) on the pool
 * @aio: the pool
 * @fd: the fd to read
 * @buf: where to read; the caller's until the callback
 * @len: bytes wanted
 * @off: file offset
 * @cb: the completion callback; the result is the byte count (0 at end of
 *      file; one pread(2) call, so it may be short)
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_pread(struct vent_aio *aio, int fd, void *buf, size_t len, int64_t off,
		   vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_pwrite() - pwrite(2) on the pool
 * @aio: the pool
 * @fd: the fd to write
 * @buf: the data; the caller's until the callback
 * @len: bytes to write
 * @off: file offset
 * @cb: the completion callback; the result is the byte count (one
 *      pwrite(2) call, so it may be short)
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_pwrite(struct vent_aio *aio, int fd, const void *buf, size_t len, int64_t off,
		    vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_fstatat() - fstatat(2) on the pool
 * @aio: the pool
 * @dirfd: directory fd or AT_FDCWD
 * @path: the path, copied ("" with AT_EMPTY_PATH stats @dirfd)
 * @st: filled when the result is 0; the caller's until the callback
 * @flags: AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, ...
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio, @path, @st or @cb is NULL;
 * -ENOMEM, -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_fstatat(struct vent_aio *aio, int dirfd, const char *path, struct stat *st,
		     int flags, vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_statx() - statx(2) on the pool
 * @aio: the pool
 * @dirfd: directory fd or AT_FDCWD
 * @path: the path, copied
 * @flags: AT_* flags of statx(2)
 * @mask: STATX_* fields wanted
 * @stx: filled when the result is 0; the caller's until the callback
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio, @path, @stx or @cb is NULL;
 * -ENOMEM, -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_statx(struct vent_aio *aio, int dirfd, const char *path, int flags,
		   unsigned int mask, struct statx *stx, vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_unlinkat() - unlinkat(2) on the pool
 * @aio: the pool
 * @dirfd: directory fd or AT_FDCWD
 * @path: the path, copied
 * @flags: 0 or AT_REMOVEDIR
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio, @path or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_unlinkat(struct vent_aio *aio, int dirfd, const char *path, int flags,
		      vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_renameat() - renameat(2) on the pool
 * @aio: the pool
 * @olddirfd: directory fd or AT_FDCWD for @oldpath
 * @oldpath: the path, copied
 * @newdirfd: directory fd or AT_FDCWD for @newpath
 * @newpath: the path, copied
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio, a path or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_renameat(struct vent_aio *aio, int olddirfd, const char *oldpath, int newdirfd,
		      const char *newpath, vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_mkdirat() - mkdirat(2) on the pool
 * @aio: the pool
 * @dirfd: directory fd or AT_FDCWD
 * @path: the path, copied
 * @mode: permission bits (before umask)
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio, @path or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_mkdirat(struct vent_aio *aio, int dirfd, const char *path, mode_t mode,
		     vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_fsync() - fsync(2) on the pool
 * @aio: the pool
 * @fd: the fd to sync
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_fsync(struct vent_aio *aio, int fd, vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_fdatasync() - fdatasync(2) on the pool
 * @aio: the pool
 * @fd: the fd to sync
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_fdatasync(struct vent_aio *aio, int fd, vent_aio_cb cb, void *arg) VENT_NOEXCEPT;

/**
 * vent_aio_readahead() - readahead(2) on the pool
 * @aio: the pool
 * @fd: the fd
 * @off: start of the range
 * @len: length of the range
 * @cb: the completion callback
 * @arg: passed to @cb
 *
 * Return: the request id; -EINVAL if @aio or @cb is NULL; -ENOMEM,
 * -EAGAIN, -EBUSY, -ECHILD as for vent_aio_openat().
 */
int vent_aio_readahead(struct vent_aio *aio, int fd, int64_t off, size_t len, vent_aio_cb cb,
		       void *arg) VENT_NOEXCEPT;

VENT_END_DECLS

#endif /* VENT_AIO_H */
