/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errno-test.c - "every documented error code has a test that provokes it":
 * the codes that the kernel alone produces, injected with
 * test/harden/failsys.so (LD_PRELOAD), and a few argument checks that no
 * other test asserted.
 *
 *   errno-test         the plain cases (no interposer needed)
 *   errno-test sys     the injected cases; needs failsys.so preloaded
 *                      (meson sets LD_PRELOAD), exits 77 with a reason if
 *                      the wrappers cannot be interposed in this build
 *
 * Each injected case checks three things: the exact documented code comes
 * back, nothing leaked (fd count and signal mask back to the baseline, the
 * event unchanged and addable again), and the dispatcher still works
 * afterwards (an eventfd event fires).
 *
 * Coverage: every (function, documented code) pair of the headers in include/vent/ and
 * the test that provokes and asserts it. "(file:case)" is a test function;
 * "-" marks a code no test can reach (see the note).
 *
 * event.h
 *  new_dispatcher     EINVAL   dispatcher-test: test_new_dispatcher_clocks, all-api
 *                     EPERM    dispatcher-test: test_new_dispatcher_alarm_clock_eperm
 *                     EMFILE   dispatcher-test: test_new_dispatcher_emfile, harden/fd-scenario
 *                     ENFILE   errno-test sys: new_dispatcher_enfile (each of
 *                              timerfd_create, epoll_create1, eventfd)
 *                     ENOMEM   harden/fault-scenario (heap); errno-test sys:
 *                              new_dispatcher_kernel_enomem (epoll_create1,
 *                              epoll_ctl)
 *  cleanup_dispatcher EINVAL   dispatcher-test: null args
 *                     EBUSY    dispatcher-test: teardown case, fuzz/vent-model
 *                     ECHILD   dispatcher-test: fork case
 *  dispatcher_get_efd / dispatcher_get_clocksource
 *                     EINVAL, ECHILD   dispatcher-test: null args, fork case
 *  dispatcher_get_efd EMFILE   reliability-test: test_get_efd_emfile
 *                     ENFILE, ENOMEM   errno-test sys: get_efd_errors
 *                              (epoll_create1, epoll_ctl)
 *  event_add          EINVAL   dispatcher-test (NULLs, no callback, negative
 *                              timeout, own epoll fd)
 *                     EEXIST   dispatcher-test, ffi-test, all-api
 *                     EBADF    dispatcher-test (bad fd table)
 *                     EPERM    dispatcher-test (regular file)
 *                     ELOOP    dispatcher-test (epoll fd watching us)
 *                     ENOMEM   harden/fault-scenario (heap); errno-test sys:
 *                              event_add_epoll_errors (kernel)
 *                     ENOSPC   errno-test sys: event_add_epoll_errors
 *                     EBUSY    dispatcher-test teardown, fuzz/vent-model;
 *                              signal-test (second source of a signal)
 *                     ECHILD   dispatcher-test: fork case
 *  event_remove       EINVAL, ECHILD   dispatcher-test
 *  event_modify       EINVAL   dispatcher-test (not added, bad mask)
 *                     EBADF    dispatcher-test (closed fd)
 *                     EEXIST   dispatcher-test (fd taken while disabled)
 *                     ENOMEM   errno-test sys: event_modify_epoll_errors
 *                     ENOSPC   errno-test sys: event_modify_epoll_errors
 *                     EBUSY, ECHILD   dispatcher-test
 *  event_mod_timeout  EINVAL, EBUSY, ECHILD   dispatcher-test
 *  event_wait         EINTR    dispatcher-test: sigmask case
 *                     EINVAL, EBUSY, ECHILD   dispatcher-test
 *                     other epoll_pwait errors   errno-test sys: wait_epoll_error
 *                     (vent_wait() too: errno-test sys: wait_epoll_error)
 *  event_loop         EINTR, EBUSY, ECHILD: dispatcher-test; err_handler's
 *                     code: errno-test sys: wait_epoll_error
 *  _call_timer_cb     EINVAL   dispatcher-test: null args
 *  vent_wait          EINVAL   dispatcher-test (NULL, -2, INT_MIN)
 *                     EINTR    dispatcher-test, loop-test
 *                     EBUSY, ECHILD   dispatcher-test, loop-test
 *  vent_loop_stop / vent_dispatcher_wake
 *                     EINVAL, ECHILD   dispatcher-test, loop-test
 * sources.h
 *  vent_signal_init   EINVAL   signal-test
 *                     EMFILE   signal-test, harden/fd-scenario
 *                     ENFILE   errno-test sys: sources_kernel_errors
 *                     ENOMEM   harden/fault-scenario (heap); errno-test sys
 *                              (signalfd)
 *  vent_signal_read   EINVAL   signal-test; errno-test: sources_args
 *  vent_signal_saved_mask EINVAL  signal-test; errno-test: sources_args
 *  vent_pid_init      EINVAL   child-test (and a thread id:
 *                              test_child_thread_id_einval)
 *                     ESRCH    child-test
 *                     ENOSYS   child-test (seccomp), errno-test sys
 *                     EMFILE   child-test, harden/fd-scenario
 *                     ENFILE   errno-test sys: sources_kernel_errors
 *                     ENOMEM   harden/fault-scenario; errno-test sys
 *  vent_pid_init_fd   EINVAL   child-test; EBADF child-test (pipe, /proc/<pid>);
 *                     ENOSYS child-test
 *  vent_pid_wait      EAGAIN, ECHILD, EINVAL, EBADF   child-test
 *  vent_wakeup_init   EINVAL   wakeup-test
 *                     EMFILE   wakeup-test, harden/fd-scenario
 *                     ENFILE   errno-test sys: sources_kernel_errors
 *                     ENOMEM   harden/fault-scenario; errno-test sys
 *  vent_wakeup_signal EINVAL   wakeup-test; EBADF wakeup-test
 * watch.h
 *  vent_add_handle    EINVAL   watch-test (NULLs, fd < 0, bad bits)
 *                     EBADF, EPERM   watch-test
 *                     ENOSPC   ids exhausted: watch-ids (note 1)
 *                     ENOMEM   harden/fault-scenario (heap)
 *                     EBUSY    errno-test: watch_busy_in_teardown
 *                     ECHILD   watch-test: fork cases
 *                     (the first call opens no fd and makes no epoll call:
 *                     errno-test sys: watch_attach_no_kernel_calls)
 *  vent_add_timeout   as vent_add_handle (EINVAL: watch-test, < -1; EINVAL
 *                     for an unreadable clock: watch-clock)
 *  vent_update_handle / vent_remove_handle / vent_update_timeout /
 *  vent_remove_timeout
 *                     EINVAL   watch-test; ENOENT watch-test; ECHILD watch-test
 *                     (vent_update_timeout: EINVAL for an unreadable clock:
 *                     watch-clock)
 *                     ENOMEM   -  unreachable (note 2)
 * libvirt.h
 *  vent_libvirt_register  EINVAL, EBUSY, ECHILD   errno-libvirt
 *                     ENOMEM   harden/fault-scenario (the same first add);
 *                              errno-libvirt sys: no kernel call to fail
 * ffi.h
 *  vent_event_new     EINVAL   ffi-test; ENOMEM harden/fault-scenario
 *  vent_event_free    ECHILD   ffi-test
 *  vent_event_fd / vent_event_reason  EINVAL  ffi-test
 *  vent_event_set_events  EINVAL, EBADF, EEXIST, EBUSY, ECHILD  ffi-test
 *                     ENOMEM, ENOSPC   errno-test sys: set_events_epoll_errors
 *  vent_event_set_timeout_ms  EINVAL, EBUSY, ECHILD  ffi-test
 * aio.h
 *  vent_aio_new       ECHILD   aio-test; ENOMEM aio-test faults
 *                     EMFILE, ENFILE   errno-test sys: aio_new_errors
 *                     event_add's codes   errno-test sys: aio_new_errors (ENOSPC)
 *  vent_aio_set_threads, vent_aio_fd, vent_aio_poll, vent_aio_cancel and the
 *  12 submit calls: EINVAL (each NULL argument), EBUSY, ENOENT, ECHILD,
 *  EAGAIN  aio-test; ENOMEM aio-test faults
 * timeout.h (all in compat/conformance, built against libvent and libminivent.so)
 *  new_timeout_event  EINVAL   compat/conformance: test_new_and_free (bad clock)
 *                     EMFILE   compat/conformance: test_new_and_free (RLIMIT_NOFILE)
 *                     ENOMEM   harden/timeout-faults (failalloc.so)
 *                     EPERM, ENFILE (and ENOMEM from the kernel)   errno-test
 *                              sys: new_timeout_event_kernel_errors
 *  timeout_add        EINVAL, EEXIST, ECHILD   compat/conformance
 *                     ENOMEM   harden/timeout-faults
 *                     the clock's error   timeout-clock-test
 *  timeout_modify     EINVAL, ENOENT, ECHILD   compat/conformance
 *                     ENOMEM   harden/timeout-faults
 *                     the clock's error   timeout-clock-test
 *  timeout_cancel     EINVAL, ENOENT, ECHILD   compat/conformance
 *  timeout_reset / timeout_get_clocksource  EINVAL, ECHILD  compat/conformance
 * ts-util.h / tv-util.h
 *  ts_search / tv_search  EINVAL   ts-util-test, minivent-conformance
 *  ts_insert / tv_insert  EINVAL, EOVERFLOW   ts-util-test, minivent-conformance
 *
 * Not a documented code, but found here: errno-test sys:
 * rebuild_keeps_live_events (an epoll_ctl failure while purging an orphaned
 * registration used to drop live events).
 *
 * Note 1: the watch id counter is process-wide and stops at INT_MAX; no test
 * can make 2^31 registrations in its time budget, so watch-ids-test (C++,
 * linked against the internal objects) starts the counter near INT_MAX.
 * Note 2: update and remove never allocate (noexcept, no container growth):
 * -ENOMEM cannot happen; the headers could drop it.
 * Note 3: watch fds themselves reach epoll later, on the loop thread: if
 * that event_add() fails with anything but ENOMEM (which is retried), the
 * watch's callback is told VENT_HANDLE_ERROR: errno-test sys:
 * watch_loop_add_error.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include <vent/aio.h>
#include <vent/event.h>
#include <vent/ffi.h>
#include <vent/sources.h>
#include <vent/timeout.h>
#include <vent/watch.h>

#include "util/case.h"
#include "util/nop.h"

static int (*fs_arm)(const char *name, long nth, int err, long times);
static long (*fs_disarm)(void);

/* Arms failsys: the @nth call of @name fails once with @err. */
static void arm(const char *name, long nth, int err)
{
	assert_int_equal(fs_arm(name, nth, err, 1), 0);
}

/* Disarms and checks that exactly one failure was injected. */
#define disarm_fired_once() disarm_fired_once_at(__LINE__)
static void disarm_fired_once_at(int line)
{
	long fired = fs_disarm();
	if (fired != 1)
		fail_msg("line %d: %ld failures injected, want 1", line, fired);
}

static int hits;
static uint32_t last_events;

static int count_cb(struct event *evt, uint32_t events)
{
	uint64_t v;

	hits++;
	last_events = events;
	if (evt->fd >= 0 && (events & EPOLLIN) && read(evt->fd, &v, sizeof(v)) < 0) {
		/* nothing pending: fine */
	}
	return EVENTCB_CONTINUE;
}

/* The dispatcher still works: a fresh eventfd event fires once. */
static void check_dispatcher_works(struct dispatcher *d)
{
	struct event e = __EVENT_INIT(count_cb, NULL, -1, EPOLLIN, 0, 0);
	uint64_t one = 1;

	e.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(e.fd >= 0);
	assert_int_equal(event_add(d, &e), 0);
	assert_int_equal(write(e.fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	hits = 0;
	/* Internal events (the watch adapter's) may run in the same wait. */
	for (int i = 0; i < 10 && !hits; i++)
		assert_true(vent_wait(d, 1000, NULL) >= 1);
	assert_int_equal(hits, 1);
	assert_int_equal(event_remove(&e), 0);
	close(e.fd);
}

static int make_efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(fd >= 0);
	return fd;
}

static void kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* ---- injected cases ------------------------------------------------- */

/* new_dispatcher(): ENFILE from each of its three fd-creating calls. */
static void new_dispatcher_enfile(void **state)
{
	static const char *const calls[] = {"timerfd_create", "epoll_create1", "eventfd"};
	const int base = fd_count();

	(void)state;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		arm(calls[i], 1, ENFILE);
		errno = 0;
		struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
		int err = errno;
		disarm_fired_once();
		if (d)
			fail_msg("new_dispatcher succeeded with %s failing", calls[i]);
		assert_int_equal(err, ENFILE);
		assert_int_equal(fd_count(), base);
	}
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(d);
	check_dispatcher_works(d);
	free_dispatcher(d);
	assert_int_equal(fd_count(), base);
}

/* new_timeout_event(): timerfd_create's codes come back in errno, and
 * nothing is left open. */
static void new_timeout_event_kernel_errors(void **state)
{
	static const int codes[] = {ENFILE, EPERM, ENOMEM};
	const int base = fd_count();

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		arm("timerfd_create", 1, codes[i]);
		errno = 0;
		struct event *t = new_timeout_event(CLOCK_MONOTONIC);
		int err = errno;
		disarm_fired_once();
		if (t)
			fail_msg("new_timeout_event succeeded with timerfd_create failing");
		assert_int_equal(err, codes[i]);
		assert_int_equal(fd_count(), base);
	}
	struct event *t = new_timeout_event(CLOCK_MONOTONIC);
	assert_non_null(t);
	free_timeout_event(t);
	assert_int_equal(fd_count(), base);
}

/* new_dispatcher(): ENOMEM from the kernel (epoll_create1, or either
 * epoll_ctl of its own timerfd and eventfd). */
static void new_dispatcher_kernel_enomem(void **state)
{
	const int base = fd_count();

	(void)state;
	for (int step = 0; step < 3; step++) {
		if (step == 0)
			arm("epoll_create1", 1, ENOMEM);
		else
			arm("epoll_ctl_add", step, ENOMEM);
		errno = 0;
		struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
		int err = errno;
		disarm_fired_once();
		assert_null(d);
		assert_int_equal(err, ENOMEM);
		assert_int_equal(fd_count(), base);
	}
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(d);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* dispatcher_get_efd(): its first call opens the epoll set it returns;
 * that call's failures are reported, and the next call tries again. */
static void get_efd_errors(void **state)
{
	static const struct {
		const char *call;
		int err;
	} cases[] = {
		{"epoll_create1", ENFILE},
		{"epoll_create1", ENOMEM},
		{"epoll_ctl_add", ENOMEM},
	};
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int base = fd_count();

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		arm(cases[i].call, 1, cases[i].err);
		int rc = dispatcher_get_efd(d);
		disarm_fired_once();
		assert_int_equal(rc, -cases[i].err);
		assert_int_equal(fd_count(), base);
	}
	int efd = dispatcher_get_efd(d);
	assert_true(efd >= 0);
	assert_int_equal(dispatcher_get_efd(d), efd);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* event_add(): -ENOSPC (max_user_watches) and -ENOMEM from epoll_ctl:
 * nothing registered, no timeout armed, the event can be added again. */
static void event_add_epoll_errors(void **state)
{
	static const int errs[] = {ENOSPC, ENOMEM};
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int base = fd_count();

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < 2; i++) {
		int fd = make_efd();
		struct event e = __EVENT_INIT(count_cb, NULL, fd, EPOLLIN, 0, 1000000);

		arm("epoll_ctl_add", 1, errs[i]);
		assert_int_equal(event_add(d, &e), -errs[i]);
		disarm_fired_once();
		assert_null(e.dsp);
		/* Nothing stayed behind: neither the fd nor the 1 ms timeout. */
		kick(fd);
		hits = 0;
		assert_int_equal(vent_wait(d, 20, NULL), 0);
		assert_int_equal(hits, 0);
		/* Added again, it works. */
		e.tmo.tv_sec = 0;
		e.tmo.tv_nsec = 0;
		assert_int_equal(event_add(d, &e), 0);
		assert_int_equal(vent_wait(d, 1000, NULL), 1);
		assert_int_equal(hits, 1);
		assert_int_equal(event_remove(&e), 0);
		close(fd);
		/* A disabled event is validated with an ADD too. */
		fd = make_efd();
		e = __EVENT_INIT(count_cb, NULL, fd, 0, 0, 0);
		arm("epoll_ctl_add", 1, errs[i]);
		assert_int_equal(event_add(d, &e), -errs[i]);
		disarm_fired_once();
		assert_null(e.dsp);
		assert_int_equal(event_add(d, &e), 0);
		assert_int_equal(event_remove(&e), 0);
		close(fd);
	}
	assert_int_equal(fd_count(), base);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* event_modify(): re-enabling a disabled event adds the fd again, which
 * may fail with -ENOSPC/-ENOMEM; changing an enabled mask is a MOD, which
 * may fail with -ENOMEM. The previous registration stays in force. */
static void event_modify_epoll_errors(void **state)
{
	static const int errs[] = {ENOSPC, ENOMEM};
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int base = fd_count();

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < 2; i++) {
		int fd = make_efd();
		struct event e = __EVENT_INIT(count_cb, NULL, fd, EPOLLIN, 0, 0);

		assert_int_equal(event_add(d, &e), 0);
		e.ep.events = 0;
		assert_int_equal(event_modify(&e), 0);
		kick(fd);
		e.ep.events = EPOLLIN;
		arm("epoll_ctl_add", 1, errs[i]);
		assert_int_equal(event_modify(&e), -errs[i]);
		disarm_fired_once();
		/* Still disabled: the pending count is not reported. */
		hits = 0;
		assert_int_equal(vent_wait(d, 20, NULL), 0);
		assert_int_equal(hits, 0);
		assert_ptr_equal(e.dsp, d);
		/* Retried, it takes effect. */
		assert_int_equal(event_modify(&e), 0);
		assert_int_equal(vent_wait(d, 1000, NULL), 1);
		assert_int_equal(hits, 1);
		assert_int_equal(event_remove(&e), 0);
		close(fd);
	}
	/* MOD of an enabled mask: EPOLLOUT -> EPOLLIN fails, EPOLLOUT stays. */
	int fd = make_efd();
	struct event e = __EVENT_INIT(count_cb, NULL, fd, EPOLLOUT, 0, 0);

	assert_int_equal(event_add(d, &e), 0);
	e.ep.events = EPOLLIN;
	arm("epoll_ctl_mod", 1, ENOMEM);
	assert_int_equal(event_modify(&e), -ENOMEM);
	disarm_fired_once();
	hits = 0;
	last_events = 0;
	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	assert_int_equal(hits, 1);
	assert_int_equal(last_events, EPOLLOUT);
	assert_int_equal(event_modify(&e), 0);
	hits = 0;
	assert_int_equal(vent_wait(d, 20, NULL), 0); /* not readable */
	assert_int_equal(event_remove(&e), 0);
	close(fd);
	assert_int_equal(fd_count(), base);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* vent_event_set_events(): the same two paths; the mask is restored. */
static void set_events_epoll_errors(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int base = fd_count();
	int fd = make_efd();

	(void)state;
	assert_non_null(d);
	struct event *e = vent_event_new(fd, EPOLLIN, count_cb, NULL);
	assert_non_null(e);
	assert_int_equal(event_add(d, e), 0);
	assert_int_equal(vent_event_set_events(e, 0), 0);
	arm("epoll_ctl_add", 1, ENOSPC);
	assert_int_equal(vent_event_set_events(e, EPOLLIN), -ENOSPC);
	disarm_fired_once();
	assert_int_equal(e->ep.events, 0);
	assert_int_equal(vent_event_set_events(e, EPOLLOUT), 0);
	arm("epoll_ctl_mod", 1, ENOMEM);
	assert_int_equal(vent_event_set_events(e, EPOLLIN), -ENOMEM);
	disarm_fired_once();
	assert_int_equal(e->ep.events, EPOLLOUT);
	hits = 0;
	last_events = 0;
	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	assert_int_equal(last_events, EPOLLOUT);
	assert_int_equal(vent_event_free(e), 0);
	close(fd);
	assert_int_equal(fd_count(), base);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

static int sig_blocked(int sig)
{
	sigset_t cur;

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, sig);
}

/* sources.h constructors: ENFILE / kernel ENOMEM / ENOSYS from the
 * signalfd, pidfd_open and eventfd calls; @evt unchanged, mask unchanged. */
static void sources_kernel_errors(void **state)
{
	static const int errs[] = {ENFILE, ENOMEM};
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int base = fd_count();
	struct event e, orig;
	sigset_t ss;

	(void)state;
	assert_non_null(d);
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR2);
	assert_false(sig_blocked(SIGUSR2));
	memset(&orig, 0xa5, sizeof(orig));
	for (size_t i = 0; i < 2; i++) {
		e = orig;
		arm("signalfd", 1, errs[i]);
		assert_int_equal(vent_signal_init(&e, &ss, count_cb), -errs[i]);
		disarm_fired_once();
		assert_memory_equal(&e, &orig, sizeof(e));
		assert_false(sig_blocked(SIGUSR2));

		arm("pidfd_open", 1, errs[i]);
		assert_int_equal(vent_pid_init(&e, getpid(), count_cb), -errs[i]);
		disarm_fired_once();
		assert_memory_equal(&e, &orig, sizeof(e));

		arm("eventfd", 1, errs[i]);
		assert_int_equal(vent_wakeup_init(&e, count_cb), -errs[i]);
		disarm_fired_once();
		assert_memory_equal(&e, &orig, sizeof(e));
		assert_int_equal(fd_count(), base);
	}
	/* Linux < 5.3: no pidfd_open. */
	assert_int_equal(fs_arm("pidfd_open", 1, ENOSYS, -1), 0);
	assert_int_equal(vent_pid_init(&e, getpid(), count_cb), -ENOSYS);
	assert_true(fs_disarm() >= 1);
	assert_memory_equal(&e, &orig, sizeof(e));

	/* Afterwards each works, on the same dispatcher. */
	assert_int_equal(vent_signal_init(&e, &ss, count_cb), 0);
	assert_true(sig_blocked(SIGUSR2));
	assert_int_equal(event_add(d, &e), 0);
	vent_signal_release(&e);
	assert_false(sig_blocked(SIGUSR2));
	assert_int_equal(vent_wakeup_init(&e, count_cb), 0);
	assert_int_equal(event_add(d, &e), 0);
	assert_int_equal(vent_wakeup_signal(&e, 3), 0);
	hits = 0;
	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	assert_int_equal(event_remove(&e), 0);
	e.cleanup(&e);
	assert_int_equal(fd_count(), base);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* watch.h: the first call attaches an eventfd; EMFILE/ENFILE from it and
 * ENOSPC/ENOMEM from its event_add() come back, and the next call works. */
/*
 * The first add on a dispatcher attaches vent's watch machinery without a
 * kernel call of its own (it rides on the dispatcher's wakeup): failures
 * armed for eventfd() and epoll_ctl() are never reached, the call succeeds
 * and opens no fd. The loop adds the machinery's event later, with no fd.
 */
static void watch_attach_no_kernel_calls(void **state)
{
	static const struct {
		const char *call;
		int err;
	} inj[] = {
		{"eventfd", EMFILE},
		{"eventfd", ENFILE},
		{"epoll_ctl_add", ENOSPC},
		{"epoll_ctl_add", ENOMEM},
	};
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	for (size_t i = 0; i < sizeof(inj) / sizeof(inj[0]); i++) {
		struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
		const int base = fd_count();

		assert_non_null(d);
		assert_int_equal(fs_arm(inj[i].call, 1, inj[i].err, 1000), 0);
		int t = vent_add_timeout(d, 5, nop_timeout, NULL, NULL);
		assert_true(t > 0);
		assert_int_equal(fd_count(), base);
		assert_int_equal(vent_remove_timeout(d, t), 0);
		assert_int_equal(fs_disarm(), 0);
		assert_int_equal(cleanup_dispatcher(d), 0);
		arm(inj[i].call, 1, inj[i].err);
		int w = vent_add_handle(d, p[0], VENT_HANDLE_READABLE, nop_handle, NULL, NULL);
		assert_true(w > 0);
		assert_int_equal(fd_count(), base);
		assert_int_equal(fs_disarm(), 0);
		assert_int_equal(vent_remove_handle(d, w), 0);
		check_dispatcher_works(d);
		free_dispatcher(d);
	}
	close(p[0]);
	close(p[1]);
}

static int told_calls, told_events;

static void record_handle(int watch, int fd, int events, void *opaque)
{
	(void)watch;
	(void)fd;
	(void)opaque;
	told_calls++;
	told_events |= events;
}

/*
 * A watch's fd reaches epoll later, on the loop thread (note 3). When epoll
 * refuses it there (ENOSPC: its watch limit; EBADF: the caller closed the fd
 * before the loop got to it), the watch is told VENT_HANDLE_ERROR once
 * instead of staying silent; an update makes the loop try again.
 */
static void watch_loop_add_error(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	int p[2];

	(void)state;
	assert_non_null(d);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	/* Attach the adapter (its control eventfd) before injecting. */
	int t = vent_add_timeout(d, -1, nop_timeout, NULL, NULL);
	assert_true(t > 0);
	assert_true(vent_wait(d, 0, NULL) >= 0);

	told_calls = told_events = 0;
	int w = vent_add_handle(d, p[0], VENT_HANDLE_READABLE, record_handle, NULL, NULL);
	assert_true(w > 0);
	arm("epoll_ctl_add", 1, ENOSPC);
	assert_true(vent_wait(d, 1000, NULL) >= 1);
	disarm_fired_once();
	assert_int_equal(told_calls, 1);
	assert_int_equal(told_events, VENT_HANDLE_ERROR);
	/* Once, not in a loop; and not in epoll, so data goes unnoticed. */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_true(vent_wait(d, 50, NULL) >= 0);
	assert_int_equal(told_calls, 1);
	/* An update with the same events tries again, and now it works. */
	told_calls = told_events = 0;
	assert_int_equal(vent_update_handle(d, w, VENT_HANDLE_READABLE), 0);
	for (int i = 0; i < 10 && told_calls == 0; i++)
		assert_true(vent_wait(d, 100, NULL) >= 0);
	assert_int_equal(told_events, VENT_HANDLE_READABLE);
	assert_int_equal(vent_remove_handle(d, w), 0);
	assert_true(vent_wait(d, 0, NULL) >= 0);

	/* The same with changed events. */
	told_calls = told_events = 0;
	w = vent_add_handle(d, p[0], VENT_HANDLE_READABLE, record_handle, NULL, NULL);
	assert_true(w > 0);
	arm("epoll_ctl_add", 1, ENOSPC);
	assert_true(vent_wait(d, 1000, NULL) >= 1);
	disarm_fired_once();
	assert_int_equal(told_events, VENT_HANDLE_ERROR);
	told_calls = told_events = 0;
	assert_int_equal(vent_update_handle(d, w, VENT_HANDLE_READABLE | VENT_HANDLE_WRITABLE), 0);
	for (int i = 0; i < 10 && told_calls == 0; i++)
		assert_true(vent_wait(d, 100, NULL) >= 0);
	assert_int_equal(told_events, VENT_HANDLE_READABLE);
	assert_int_equal(vent_remove_handle(d, w), 0);

	/* The caller closed the fd before the loop added it: EBADF. */
	int q = dup(p[0]);
	assert_true(q >= 0);
	told_calls = told_events = 0;
	w = vent_add_handle(d, q, VENT_HANDLE_READABLE, record_handle, NULL, NULL);
	assert_true(w > 0);
	close(q);
	assert_true(vent_wait(d, 1000, NULL) >= 1);
	assert_int_equal(told_calls, 1);
	assert_int_equal(told_events, VENT_HANDLE_ERROR);
	assert_int_equal(vent_remove_handle(d, w), 0);

	assert_int_equal(vent_remove_timeout(d, t), 0);
	check_dispatcher_works(d);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
}

/* vent_aio_new(): EMFILE/ENFILE from its eventfd; with a dispatcher, what
 * event_add() reports (here ENOSPC from epoll). */
static void aio_new_errors(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int base = fd_count();
	static const int errs[] = {EMFILE, ENFILE};

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < 2; i++) {
		arm("eventfd", 1, errs[i]);
		errno = 0;
		struct vent_aio *aio = vent_aio_new(d);
		int err = errno;
		disarm_fired_once();
		assert_null(aio);
		assert_int_equal(err, errs[i]);
		assert_int_equal(fd_count(), base);
	}
	arm("epoll_ctl_add", 1, ENOSPC);
	errno = 0;
	struct vent_aio *aio = vent_aio_new(d);
	int err = errno;
	disarm_fired_once();
	assert_null(aio);
	assert_int_equal(err, ENOSPC);
	assert_int_equal(fd_count(), base);
	aio = vent_aio_new(d);
	assert_non_null(aio);
	vent_aio_free(aio);
	assert_int_equal(fd_count(), base);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

static int handler_calls;

static int quit_on_eio(int err)
{
	handler_calls++;
	return err == -EIO ? -EPROTO : ELOOP_QUIT;
}

/* event_wait(): "other epoll_pwait(2) errors as -errno"; event_loop()
 * passes them to err_handler and returns what it returns. */
static void wait_epoll_error(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);

	(void)state;
	assert_non_null(d);
	arm("epoll_pwait", 1, EIO);
	assert_int_equal(event_wait(d, NULL), -EIO);
	disarm_fired_once();
	arm("epoll_pwait", 1, EIO);
	assert_int_equal(vent_wait(d, -1, NULL), -EIO);
	disarm_fired_once();
	arm("epoll_pwait", 1, EIO);
	assert_int_equal(event_loop(d, NULL, NULL), -EIO);
	disarm_fired_once();
	arm("epoll_pwait", 1, EIO);
	handler_calls = 0;
	assert_int_equal(event_loop(d, NULL, quit_on_eio), -EPROTO);
	disarm_fired_once();
	assert_int_equal(handler_calls, 1);
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* The purge of an orphaned registration (event_remove() after the fd was
 * closed while a dup kept the file open) rebuilds the epoll set; an
 * epoll_ctl() failure there (ENOSPC, ENOMEM) must not drop a live event. */
static void rebuild_keeps_live_events(void **state)
{
	static const int errs[] = {ENOSPC, ENOMEM};
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);

	(void)state;
	assert_non_null(d);
	for (size_t i = 0; i < 2; i++) {
		int live_fd = make_efd();
		struct event live = __EVENT_INIT(count_cb, NULL, live_fd, EPOLLIN, 0, 0);
		int fd = make_efd();
		struct event orphan = __EVENT_INIT(count_cb, NULL, fd, EPOLLIN, 0, 0);

		assert_int_equal(event_add(d, &live), 0);
		assert_int_equal(event_add(d, &orphan), 0);
		int dup_fd = dup(fd);
		assert_true(dup_fd >= 0);
		close(fd);
		assert_int_equal(event_remove(&orphan), 0);
		/* The orphan reports; the rebuild after the batch re-adds the
		 * timerfd, the eventfd and then the live event: fail that. */
		kick(dup_fd);
		arm("epoll_ctl_add", 3, errs[i]);
		hits = 0;
		vent_wait(d, 100, NULL);
		disarm_fired_once();
		assert_int_equal(hits, 0);
		/* The live event must still be registered. */
		kick(live_fd);
		for (int n = 0; n < 5 && !hits; n++)
			vent_wait(d, 100, NULL);
		if (hits != 1)
			fail_msg("%s in the epoll rebuild lost a live event", strerror(errs[i]));
		assert_int_equal(event_remove(&live), 0);
		close(live_fd);
		close(dup_fd);
		/* With the orphan's file gone, the loop is quiet again. */
		hits = 0;
		assert_true(vent_wait(d, 0, NULL) >= 0);
	}
	check_dispatcher_works(d);
	free_dispatcher(d);
}

/* ---- plain cases ---------------------------------------------------- */

static void sources_args(void **state)
{
	struct event plain = __EVENT_INIT(count_cb, NULL, -1, 0, 0, 0);
	struct signalfd_siginfo si;
	sigset_t m;

	(void)state;
	assert_int_equal(vent_signal_read(NULL, &si, 1), -EINVAL);
	assert_int_equal(vent_signal_read(&plain, NULL, 1), -EINVAL);
	assert_int_equal(vent_signal_read(&plain, &si, 1), -EINVAL);
	assert_int_equal(vent_signal_saved_mask(NULL, &m), -EINVAL);
	assert_int_equal(vent_signal_saved_mask(&plain, NULL), -EINVAL);
	assert_int_equal(vent_signal_saved_mask(&plain, &m), -EINVAL);
}

static int busy_add_rc[2];
static int busy_fd = -1;
static struct dispatcher *busy_dsp;

static void busy_cleanup(struct event *evt)
{
	(void)evt;
	busy_add_rc[0] = vent_add_handle(busy_dsp, busy_fd, VENT_HANDLE_READABLE, nop_handle, NULL,
					 NULL);
	busy_add_rc[1] = vent_add_timeout(busy_dsp, 5, nop_timeout, NULL, NULL);
}

/* vent_add_handle()/vent_add_timeout(): -EBUSY while the dispatcher is
 * being freed (from a cleanup callback that free_dispatcher() runs). */
static void watch_busy_in_teardown(void **state)
{
	struct event e = __EVENT_INIT(count_cb, busy_cleanup, -1, 0, 100, 0);

	(void)state;
	busy_fd = make_efd();
	busy_dsp = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(busy_dsp);
	assert_true(vent_add_timeout(busy_dsp, -1, nop_timeout, NULL, NULL) > 0);
	assert_int_equal(event_add(busy_dsp, &e), 0);
	busy_add_rc[0] = busy_add_rc[1] = 0;
	free_dispatcher(busy_dsp);
	assert_int_equal(busy_add_rc[0], -EBUSY);
	assert_int_equal(busy_add_rc[1], -EBUSY);
	close(busy_fd);
}

/* Is failsys.so loaded, and does it reach the wrappers in this build? */
static int failsys_ready(void)
{
	fs_arm = __extension__(int (*)(const char *, long, int, long))dlsym(RTLD_DEFAULT,
									     "failsys_arm");
	fs_disarm = __extension__(long (*)(void))dlsym(RTLD_DEFAULT, "failsys_disarm");
	if (!fs_arm || !fs_disarm) {
		printf("SKIP: failsys.so is not preloaded (meson sets LD_PRELOAD for errno-sys)\n");
		return 0;
	}
	fs_arm("eventfd", 1, ENFILE, 1);
	int fd = eventfd(0, EFD_CLOEXEC);
	long fired = fs_disarm();
	if (fd >= 0)
		close(fd);
	if (fd >= 0 || fired != 1) {
		printf("SKIP: failsys.so is loaded but eventfd() does not reach it here\n");
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest plain[] = {
		CASE(sources_args),
		CASE(watch_busy_in_teardown),
	};
	const struct CMUnitTest sys[] = {
		CASE(new_dispatcher_enfile),
		CASE(new_dispatcher_kernel_enomem),
		CASE(get_efd_errors),
		CASE(new_timeout_event_kernel_errors),
		CASE(event_add_epoll_errors),
		CASE(event_modify_epoll_errors),
		CASE(set_events_epoll_errors),
		CASE(sources_kernel_errors),
		CASE(watch_attach_no_kernel_calls),
		CASE(watch_loop_add_error),
		CASE(aio_new_errors),
		CASE(wait_epoll_error),
		CASE(rebuild_keeps_live_events),
	};

	if (argc > 1 && strcmp(argv[1], "sys") == 0) {
		if (!failsys_ready())
			return 77;
		return cmocka_run_group_tests_name("errno-sys", sys, NULL, NULL);
	}
	return cmocka_run_group_tests_name("errno", plain, NULL, NULL);
}
