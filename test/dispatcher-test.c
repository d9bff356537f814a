/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dispatcher-test.c - the core dispatcher (vent/event.h): registration,
 * dispatch, removal from callbacks, teardown from callbacks, disabled
 * events, fork, fd exhaustion, big batches, and every documented error code.
 * The timeout side is in timeout-test.c.
 */
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <vent/event.h>

#include "util/alloc.h"
#include "util/case.h"
#include "util/nop.h"

/* ------------------------------------------------------------------------
 * A recording event
 */

struct tev {
	struct event e; /* first: cleanup_event_on_heap() frees &e */
	int calls;
	int cleanups;
	uint32_t events;       /* mask of the last call */
	unsigned short reason; /* evt->reason seen by the last call */
	int order;             /* value of 'seq' at the last call */
	int ret;               /* what the callback returns */
	int drain;             /* read the fd empty when called */
	int heap;              /* the cleanup frees it */
	int (*hook)(struct tev *t); /* runs in the callback; its value is returned */
	struct tev *peer;
	struct dispatcher *dsp;
	struct dispatcher *dsp_in_cleanup;
	int rc; /* a return code the hook saw */
};

static int seq;        /* callbacks run, in order */
static int g_calls;    /* callbacks of all events (incl. freed ones) */
static int g_cleanups; /* cleanups of all events (incl. freed ones) */

static void drain_fd(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int tev_cb(struct event *evt, uint32_t events)
{
	struct tev *t = (struct tev *)evt;

	t->calls++;
	g_calls++;
	t->events = events;
	t->reason = evt->reason;
	t->order = ++seq;
	if (t->drain && evt->fd >= 0)
		drain_fd(evt->fd);
	if (t->hook)
		return t->hook(t);
	return t->ret;
}

static void tev_cleanup(struct event *evt)
{
	struct tev *t = (struct tev *)evt;

	g_cleanups++;
	t->cleanups++;
	t->dsp_in_cleanup = evt->dsp;
	if (t->heap)
		free(t);
}

static void tev_init(struct tev *t, int fd, uint32_t mask)
{
	memset(t, 0, sizeof(*t));
	t->e = __EVENT_INIT(tev_cb, tev_cleanup, fd, mask, 0, 0);
	t->drain = 1;
}

static struct tev *tev_new(int fd, uint32_t mask)
{
	struct tev *t = malloc(sizeof(*t));

	assert_non_null(t);
	tev_init(t, fd, mask);
	t->heap = 1;
	return t;
}

static void reset_counters(void)
{
	seq = 0;
	g_calls = 0;
	g_cleanups = 0;
}

static void mkpipe(int p[2])
{
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void put(int fd)
{
	assert_int_equal(write(fd, "x", 1), 1);
}

static struct dispatcher *mkdsp(void)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);

	assert_non_null(d);
	return d;
}

/* What epoll_ctl(EPOLL_CTL_ADD) itself says about @fd, as -errno. */
static int raw_epoll_add(int fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	int rc;

	assert_true(ep >= 0);
	rc = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
	close(ep);
	return rc;
}

static int efd_readable(struct dispatcher *d)
{
	struct pollfd pfd = { .fd = dispatcher_get_efd(d), .events = POLLIN };

	return poll(&pfd, 1, 0);
}

/* ------------------------------------------------------------------------
 * Dispatchers
 */

static void test_new_dispatcher_clocks(void **state)
{
	static const int good[] = { CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME };
	static const int bad[] = { -1, 12345, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
				   CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE };
	int base = fd_count();

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct dispatcher *d = new_dispatcher(good[i]);

		assert_non_null(d);
		assert_int_equal(dispatcher_get_clocksource(d), good[i]);
		int efd = dispatcher_get_efd(d);
		assert_true(efd >= 0);
		assert_int_equal(dispatcher_get_efd(d), efd);
		assert_true(fcntl(efd, F_GETFD) & FD_CLOEXEC);
		/* epoll fd, timerfd, eventfd; and the epoll fd that
		 * dispatcher_get_efd() opened, holding the first */
		assert_int_equal(fd_count(), base + 4);
		free_dispatcher(d);
		assert_int_equal(fd_count(), base);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_null(new_dispatcher(bad[i]));
		assert_int_equal(errno, EINVAL);
		assert_int_equal(fd_count(), base);
	}
	free_dispatcher(NULL); /* no-op */
}

/*
 * Alarm clocks: accepted with CAP_WAKE_ALARM if the clock can be read, EPERM
 * without. The test runs the check in a child that drops the capability (if
 * it has it).
 */
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

static int drop_wake_alarm(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	data[CAP_WAKE_ALARM / 32].effective &= ~(1u << (CAP_WAKE_ALARM % 32));
	data[CAP_WAKE_ALARM / 32].permitted &= ~(1u << (CAP_WAKE_ALARM % 32));
	return syscall(SYS_capset, &hdr, data) < 0 ? -1 : 0;
}

static void test_new_dispatcher_alarm_clock_eperm(void **state)
{
	int base = fd_count();

	(void)state;
	/* As the process is, new_dispatcher() agrees with timerfd_create()
	 * and clock_gettime() (which fails on a host without an RTC). */
	errno = 0;
	int tfd = timerfd_create(CLOCK_REALTIME_ALARM, TFD_CLOEXEC);
	int terr = errno;
	struct timespec now;
	errno = 0;
	if (tfd >= 0 && clock_gettime(CLOCK_REALTIME_ALARM, &now) < 0) {
		terr = errno;
		close(tfd);
		tfd = -1;
	}
	errno = 0;
	struct dispatcher *ad = new_dispatcher(CLOCK_REALTIME_ALARM);
	if (tfd >= 0) {
		assert_non_null(ad);
		assert_int_equal(dispatcher_get_clocksource(ad), CLOCK_REALTIME_ALARM);
		free_dispatcher(ad);
		close(tfd);
	} else {
		assert_null(ad);
		assert_int_equal(errno, terr);
	}
	assert_int_equal(fd_count(), base);
	/* Without CAP_WAKE_ALARM: EPERM, nothing leaked. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (drop_wake_alarm() < 0)
			_exit(2);
		base = fd_count(); /* valgrind may hold other fds in the child */
		errno = 0;
		struct dispatcher *d = new_dispatcher(CLOCK_REALTIME_ALARM);
		if (d)
			_exit(3);
		if (errno != EPERM)
			_exit(4);
		if (fd_count() != base)
			_exit(5);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_null_arguments(void **state)
{
	struct tev t;
	struct timespec ts = { 1, 0 };

	(void)state;
	tev_init(&t, -1, 0);
	assert_int_equal(cleanup_dispatcher(NULL), -EINVAL);
	assert_int_equal(dispatcher_get_efd(NULL), -EINVAL);
	assert_int_equal(dispatcher_get_clocksource(NULL), -EINVAL);
	assert_int_equal(event_add(NULL, &t.e), -EINVAL);
	assert_null(t.e.dsp);
	assert_int_equal(event_remove(NULL), -EINVAL);
	assert_int_equal(event_modify(NULL), -EINVAL);
	assert_int_equal(event_mod_timeout(NULL, &ts), -EINVAL);
	assert_int_equal(event_wait(NULL, NULL), -EINVAL);
	assert_int_equal(event_loop(NULL, NULL, NULL), -EINVAL);
	assert_int_equal(vent_wait(NULL, 0, NULL), -EINVAL);
	assert_int_equal(vent_loop_stop(NULL), -EINVAL);
	assert_int_equal(vent_dispatcher_wake(NULL), -EINVAL);
	assert_int_equal(_call_timer_cb(NULL, 0), -EINVAL);
	cleanup_event_on_stack(NULL);
	cleanup_event_on_heap(NULL);
	_event_invoke_callback(NULL, REASON_TIMEOUT, 0, true);

	struct dispatcher *d = mkdsp();
	assert_int_equal(event_add(d, NULL), -EINVAL);
	t.e.callback = NULL;
	assert_int_equal(event_add(d, &t.e), -EINVAL);
	assert_null(t.e.dsp);
	t.e.callback = tev_cb;
	assert_int_equal(event_add(d, &t.e), 0);
	assert_int_equal(event_mod_timeout(&t.e, NULL), -EINVAL);
	assert_int_equal(vent_wait(d, -2, NULL), -EINVAL);
	assert_int_equal(vent_wait(d, INT_MIN, NULL), -EINVAL);
	assert_int_equal(event_remove(&t.e), 0);
	free_dispatcher(d);
	assert_int_equal(t.cleanups, 0);
}

/* ------------------------------------------------------------------------
 * Registration and errors
 */

static void test_fd_callback_gets_mask_and_reason(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev r, w;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&r, p[0], EPOLLIN);
	tev_init(&w, p[1], EPOLLOUT);
	w.drain = 0;
	assert_int_equal(event_add(d, &r.e), 0);
	assert_ptr_equal(r.e.dsp, d);
	assert_int_equal(r.e.tmo.tv_sec, 0);
	assert_int_equal(r.e.tmo.tv_nsec, 0);
	assert_int_equal(event_add(d, &w.e), 0);
	/* The write end is writable at once; the read end is not readable. */
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.events, EPOLLOUT);
	assert_int_equal(w.reason, REASON_EVENT_OCCURED);
	assert_int_equal(r.calls, 0);
	w.e.ep.events = 0;
	assert_int_equal(event_modify(&w.e), 0);

	put(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.events, EPOLLIN);
	assert_int_equal(r.reason, REASON_EVENT_OCCURED);
	/* Drained: level-triggered, nothing more. */
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	put(p[1]);
	assert_int_equal(event_wait(d, NULL), 0);
	assert_int_equal(r.calls, 2);

	/* A hung-up pipe reports EPOLLHUP. */
	assert_int_equal(event_remove(&w.e), 0);
	close(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_true(r.events & EPOLLHUP);
	assert_int_equal(event_remove(&r.e), 0);
	free_dispatcher(d);
	assert_int_equal(g_cleanups, 0);
	close(p[0]);
}

static void test_add_errors(void **state)
{
	struct dispatcher *d = mkdsp();
	struct dispatcher *d2 = mkdsp();
	struct tev a, b, c;
	int p[2];
	int base;

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, p[0], EPOLLIN);
	assert_int_equal(event_add(d, &a.e), 0);

	/* Already added: same dispatcher, another dispatcher. */
	assert_int_equal(event_add(d, &a.e), -EEXIST);
	assert_int_equal(event_add(d2, &a.e), -EEXIST);
	assert_ptr_equal(a.e.dsp, d);

	/* Same fd twice: -EEXIST, the first event unharmed. */
	assert_int_equal(event_add(d, &b.e), -EEXIST);
	assert_null(b.e.dsp);
	assert_int_equal(event_remove(&b.e), -EINVAL);
	put(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);

	/* Bad fds: the epoll_ctl error; nothing stays registered. The
	 * dispatcher's epoll fd first: its first call opens it. */
	assert_true(dispatcher_get_efd(d) >= 0);
	int reg = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int closed = dup(p[0]);
	int other_ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	assert_true(reg >= 0 && dir >= 0 && closed >= 0 && other_ep >= 0);
	close(closed);
	/* other_ep watches this dispatcher: adding it would make a loop. */
	assert_int_equal(epoll_ctl(other_ep, EPOLL_CTL_ADD, dispatcher_get_efd(d), &ev), 0);

	struct {
		int fd;
		int want;
	} cases[] = {
		{ closed, -EBADF },
		{ -2, -EBADF },
		{ INT_MIN, -EBADF },
		{ INT_MAX, -EBADF },
		{ 1 << 24, -EBADF },
		{ reg, -EPERM },
		{ dir, raw_epoll_add(dir) },
		{ dispatcher_get_efd(d), -EINVAL },
		{ other_ep, -ELOOP },
	};
	assert_int_equal(cases[6].want < 0, 1); /* directories cannot be polled */
	base = fd_count();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tev_init(&c, cases[i].fd, EPOLLIN);
		c.e.tmo.tv_sec = 1;
		int rc = event_add(d, &c.e);
		if (rc != cases[i].want)
			print_error("case %zu: fd %d: %d, want %d\n", i, cases[i].fd, rc,
				    cases[i].want);
		assert_int_equal(rc, cases[i].want);
		assert_null(c.e.dsp);
		assert_int_equal(event_remove(&c.e), -EINVAL);
		/* The same struct can be added again on a valid fd. */
		int q[2];
		mkpipe(q);
		c.e.fd = q[0];
		assert_int_equal(event_add(d, &c.e), 0);
		assert_int_equal(event_remove(&c.e), 0);
		close(q[0]);
		close(q[1]);
	}
	assert_int_equal(fd_count(), base);

	/* Negative relative timeout. */
	tev_init(&c, p[1], EPOLLOUT);
	c.e.tmo.tv_sec = -1;
	assert_int_equal(event_add(d, &c.e), -EINVAL);
	assert_null(c.e.dsp);
	c.e.tmo.tv_sec = 0;
	c.e.tmo.tv_nsec = -1;
	assert_int_equal(event_add(d, &c.e), -EINVAL);
	/* Nothing of it stayed: the fd can be taken by another event. */
	tev_init(&b, p[1], EPOLLOUT);
	assert_int_equal(event_add(d, &b.e), 0);
	assert_int_equal(event_remove(&b.e), 0);

	/* a is still served after all these failures. */
	put(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 2);
	assert_int_equal(g_calls, 2);

	close(reg);
	close(dir);
	close(other_ep);
	assert_int_equal(event_remove(&a.e), 0);
	free_dispatcher(d);
	free_dispatcher(d2);
	assert_int_equal(g_cleanups, 0);
	close(p[0]);
	close(p[1]);
}

static void test_remove_errors(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	assert_int_equal(event_remove(&a.e), -EINVAL);
	assert_int_equal(event_modify(&a.e), -EINVAL);
	struct timespec ts = { 1, 0 };
	assert_int_equal(event_mod_timeout(&a.e, &ts), -EINVAL);
	assert_int_equal(event_add(d, &a.e), 0);
	put(p[1]);
	assert_int_equal(event_remove(&a.e), 0);
	assert_null(a.e.dsp);
	assert_int_equal(event_remove(&a.e), -EINVAL);
	assert_int_equal(event_modify(&a.e), -EINVAL);
	assert_int_equal(event_mod_timeout(&a.e, &ts), -EINVAL);
	/* Readable, but removed: no callback, no wakeup. */
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_int_equal(efd_readable(d), 0);
	assert_int_equal(a.calls, 0);
	/* A stale dsp left by vent does not block a new add. */
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 1);
	free_dispatcher(d);
	assert_int_equal(a.cleanups, 1);
	assert_null(a.dsp_in_cleanup);
	close(p[0]);
	close(p[1]);
}

static void test_modify(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a, b;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[1], EPOLLIN);
	a.drain = 0;
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	a.e.ep.events = EPOLLOUT;
	assert_int_equal(event_modify(&a.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.events, EPOLLOUT);

	/* Unchanged mask: accepted, still served. */
	assert_int_equal(event_modify(&a.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 2);

	/* epoll rejects the mask: -EINVAL, the old registration stays. */
	a.e.ep.events = EPOLLOUT | EPOLLEXCLUSIVE;
	assert_int_equal(event_modify(&a.e), -EINVAL);
	a.e.ep.events = EPOLLOUT;
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 3);
	assert_int_equal(a.events, EPOLLOUT);

	/* Disabled while another event takes the fd; re-enabling is -EEXIST. */
	a.e.ep.events = 0;
	assert_int_equal(event_modify(&a.e), 0);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	tev_init(&b, p[1], EPOLLOUT);
	b.drain = 0;
	assert_int_equal(event_add(d, &b.e), 0);
	a.e.ep.events = EPOLLOUT;
	assert_int_equal(event_modify(&a.e), -EEXIST);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.calls, 3);
	/* Once b is gone, a can come back. */
	assert_int_equal(event_remove(&b.e), 0);
	assert_int_equal(event_modify(&a.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 4);

	/* A pure timer has no fd: modify is accepted and does nothing. */
	struct tev t;
	tev_init(&t, -1, 0);
	t.e.tmo.tv_sec = 100;
	assert_int_equal(event_add(d, &t.e), 0);
	t.e.ep.events = EPOLLIN;
	assert_int_equal(event_modify(&t.e), 0);
	assert_int_equal(vent_wait(d, 0, NULL), 1); /* a only */
	assert_int_equal(t.calls, 0);

	free_dispatcher(d);
	assert_int_equal(a.cleanups, 1);
	assert_int_equal(t.cleanups, 1);
	assert_int_equal(b.cleanups, 0);
	close(p[0]);
	close(p[1]);
}

/*
 * An unchanged mask makes no syscall: with the fd closed under it, a real
 * epoll_ctl(EPOLL_CTL_MOD) would fail with EBADF, the no-op returns 0.
 * A changed mask does reach the kernel and reports -EBADF, and the
 * registration stays as it was.
 */
static void test_modify_same_mask_no_syscall_and_ebadf(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	assert_int_equal(event_add(d, &a.e), 0);
	close(p[0]);
	assert_int_equal(event_modify(&a.e), 0);
	a.e.ep.events = EPOLLIN | EPOLLRDHUP;
	assert_int_equal(event_modify(&a.e), -EBADF);
	assert_ptr_equal(a.e.dsp, d);
	assert_int_equal(event_remove(&a.e), 0);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	assert_int_equal(a.calls, 0);
	free_dispatcher(d);
	assert_int_equal(a.cleanups, 0);
	close(p[1]);
}

/* ------------------------------------------------------------------------
 * Nesting and teardown
 */

static struct dispatcher *nest_dsp;

static int nest_hook(struct tev *t)
{
	int bad = 0;

	bad |= event_wait(nest_dsp, NULL) != -EBUSY;
	bad |= (event_loop(nest_dsp, NULL, NULL) != -EBUSY) << 1;
	bad |= (vent_wait(nest_dsp, 0, NULL) != -EBUSY) << 2;
	bad |= (vent_wait(nest_dsp, -1, NULL) != -EBUSY) << 3;
	t->rc = bad;
	return EVENTCB_CONTINUE;
}

static void test_nested_wait_ebusy(void **state)
{
	struct tev a, tm;
	int p[2];

	(void)state;
	reset_counters();
	nest_dsp = mkdsp();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	a.hook = nest_hook;
	assert_int_equal(event_add(nest_dsp, &a.e), 0);
	put(p[1]);
	assert_int_equal(vent_wait(nest_dsp, 5000, NULL), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, 0);
	/* From a timeout callback too. */
	tev_init(&tm, -1, 0);
	tm.hook = nest_hook;
	tm.rc = -1;
	tm.e.tmo.tv_nsec = 1;
	assert_int_equal(event_add(nest_dsp, &tm.e), 0);
	assert_int_equal(vent_wait(nest_dsp, 5000, NULL), 1);
	assert_int_equal(tm.calls, 1);
	assert_int_equal(tm.rc, 0);
	/* And the dispatcher still works afterwards. */
	put(p[1]);
	assert_int_equal(event_wait(nest_dsp, NULL), 0);
	assert_int_equal(a.calls, 2);
	free_dispatcher(nest_dsp);
	close(p[0]);
	close(p[1]);
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

static int handler_ret;
static int handler_calls;
static struct dispatcher *handler_dsp;

static int err_handler(int err)
{
	handler_calls++;
	assert_int_equal(err, -EINTR);
	if (handler_ret == ELOOP_CONTINUE)
		vent_loop_stop(handler_dsp);
	return handler_ret;
}

/* -EINTR: SIGUSR1 is blocked and pending; the wait's sigmask unblocks it. */
static void test_wait_eintr_and_err_handler(void **state)
{
	struct dispatcher *d = mkdsp();
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t block, old, waitmask;

	(void)state;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	sigemptyset(&waitmask);
	handler_dsp = d;

	got_usr1 = 0;
	raise(SIGUSR1);
	assert_int_equal(event_wait(d, &waitmask), -EINTR);
	assert_int_equal(got_usr1, 1);

	raise(SIGUSR1);
	assert_int_equal(vent_wait(d, -1, &waitmask), -EINTR);
	assert_int_equal(got_usr1, 2);

	/* event_loop: no handler returns the error. */
	raise(SIGUSR1);
	assert_int_equal(event_loop(d, &waitmask, NULL), -EINTR);
	/* ELOOP_QUIT: 0. */
	raise(SIGUSR1);
	handler_ret = ELOOP_QUIT;
	handler_calls = 0;
	assert_int_equal(event_loop(d, &waitmask, err_handler), 0);
	assert_int_equal(handler_calls, 1);
	/* A negative code is returned. */
	raise(SIGUSR1);
	handler_ret = -ENOTCONN;
	handler_calls = 0;
	assert_int_equal(event_loop(d, &waitmask, err_handler), -ENOTCONN);
	assert_int_equal(handler_calls, 1);
	/* ELOOP_CONTINUE goes on (the handler stops the loop for us). */
	raise(SIGUSR1);
	handler_ret = ELOOP_CONTINUE;
	handler_calls = 0;
	assert_int_equal(event_loop(d, &waitmask, err_handler), 0);
	assert_int_equal(handler_calls, 1);
	assert_int_equal(got_usr1, 6);

	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	signal(SIGUSR1, SIG_DFL);
	free_dispatcher(d);
}

static struct dispatcher *td_dsp;
static struct tev *td_victim;
static int td_bad;

/* A cleanup callback that tries everything while the dispatcher is torn down. */
static void busy_cleanup(struct event *evt)
{
	struct tev *t = (struct tev *)evt;
	struct tev x;
	struct timespec ts = { 1, 0 };
	int bad = 0;

	g_cleanups++;
	t->cleanups++;
	tev_init(&x, -1, 0);
	x.e.tmo.tv_sec = 1;
	bad |= event_add(td_dsp, &x.e) != -EBUSY;
	bad |= (x.e.dsp != NULL) << 1;
	if (td_victim && td_victim->e.dsp) {
		/* Not cleaned up yet: busy for anything but removal. */
		bad |= (event_modify(&td_victim->e) != -EBUSY) << 2;
		bad |= (event_mod_timeout(&td_victim->e, &ts) != -EBUSY) << 3;
	}
	bad |= (event_wait(td_dsp, NULL) != -EBUSY) << 4;
	bad |= (event_loop(td_dsp, NULL, NULL) != -EBUSY) << 5;
	bad |= (vent_wait(td_dsp, 0, NULL) != -EBUSY) << 6;
	bad |= (cleanup_dispatcher(td_dsp) != -EBUSY) << 7;
	td_bad |= bad;
}

static void run_teardown_busy(int use_free)
{
	struct tev a, b;
	int p[2];

	reset_counters();
	td_dsp = mkdsp();
	td_bad = 0;
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, p[1], EPOLLOUT);
	a.e.cleanup = busy_cleanup;
	b.e.cleanup = busy_cleanup;
	a.e.tmo.tv_sec = 10;
	b.e.tmo.tv_sec = 10;
	assert_int_equal(event_add(td_dsp, &a.e), 0);
	assert_int_equal(event_add(td_dsp, &b.e), 0);
	td_victim = &b; /* whichever runs first sees the other still added */
	if (use_free) {
		free_dispatcher(td_dsp);
	} else {
		assert_int_equal(cleanup_dispatcher(td_dsp), 0);
	}
	assert_int_equal(td_bad, 0);
	assert_int_equal(a.cleanups, 1);
	assert_int_equal(b.cleanups, 1);
	assert_null(a.e.dsp);
	assert_null(b.e.dsp);
	if (!use_free) {
		/* Usable again: add and serve. */
		assert_int_equal(event_add(td_dsp, &a.e), 0);
		assert_int_equal(vent_wait(td_dsp, 0, NULL), 0);
		put(p[1]);
		assert_int_equal(vent_wait(td_dsp, 5000, NULL), 1);
		assert_int_equal(a.calls, 1);
		a.e.cleanup = tev_cleanup;
		free_dispatcher(td_dsp);
		assert_int_equal(a.cleanups, 2);
	}
	close(p[0]);
	close(p[1]);
	td_victim = NULL;
}

static void test_teardown_ebusy_cleanup(void **state)
{
	(void)state;
	run_teardown_busy(0);
}

static void test_teardown_ebusy_free(void **state)
{
	(void)state;
	run_teardown_busy(1);
}

static void test_cleanup_dispatcher(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a, off, tm;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&off, p[1], 0);
	tev_init(&tm, -1, 0);
	tm.e.tmo.tv_nsec = 1000000; /* 1 ms */
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(event_add(d, &off.e), 0);
	assert_int_equal(event_add(d, &tm.e), 0);
	put(p[1]);
	int efd = dispatcher_get_efd(d);
	assert_int_equal(cleanup_dispatcher(d), 0);
	assert_int_equal(dispatcher_get_efd(d), efd);
	assert_int_equal(a.cleanups + off.cleanups + tm.cleanups, 3);
	assert_int_equal(a.cleanups * off.cleanups * tm.cleanups, 1);
	assert_null(a.dsp_in_cleanup);
	assert_null(tm.e.dsp);
	/* No fd registered and no timer armed any more. */
	struct timespec pause = { 0, 20 * NS_PER_MS };
	nanosleep(&pause, NULL);
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_int_equal(g_calls, 0);
	/* Twice is fine. */
	assert_int_equal(cleanup_dispatcher(d), 0);
	assert_int_equal(g_cleanups, 3);
	/* Still usable. */
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 1);
	free_dispatcher(d);
	assert_int_equal(a.cleanups, 2);
	assert_int_equal(g_cleanups, 4);
	close(p[0]);
	close(p[1]);
}

#define NTEAR 4

struct tear {
	struct dispatcher *d;
	int use_free;
	int efd;
	int efd_closed;
	int rc;
};
static struct tear tear;

static int tear_hook(struct tev *t)
{
	(void)t;
	if (tear.use_free) {
		free_dispatcher(tear.d);
		tear.efd_closed = !fd_is_open(tear.efd);
	} else {
		tear.rc = cleanup_dispatcher(tear.d);
	}
	/* Moot: the event is already cleaned up. */
	return EVENTCB_CLEANUP;
}

/*
 * cleanup_dispatcher()/free_dispatcher() from a callback: every cleanup runs
 * once (including the running event's), the rest of the batch (fds and
 * timeouts) is dropped. Events are on the heap and freed by their cleanup:
 * any later touch is a use-after-free for ASan and valgrind.
 */
static void run_teardown_from_callback(int use_free, int from_timer, int in_loop)
{
	struct tev *ev[NTEAR], *tm[NTEAR];
	int p[NTEAR][2];

	reset_counters();
	memset(&tear, 0, sizeof(tear));
	tear.d = mkdsp();
	tear.use_free = use_free;
	tear.efd = dispatcher_get_efd(tear.d);
	for (int i = 0; i < NTEAR; i++) {
		mkpipe(p[i]);
		ev[i] = tev_new(p[i][0], EPOLLIN);
		ev[i]->e.cleanup = cleanup_event_on_heap; /* closes p[i][0] */
		ev[i]->hook = from_timer ? NULL : tear_hook;
		assert_int_equal(event_add(tear.d, &ev[i]->e), 0);
		put(p[i][1]);
		tm[i] = tev_new(-1, 0);
		tm[i]->e.tmo.tv_nsec = 1;
		tm[i]->hook = from_timer ? tear_hook : NULL;
		assert_int_equal(event_add(tear.d, &tm[i]->e), 0);
	}
	/* Let the timers expire so fds and timers share one batch. */
	struct timespec pause = { 0, 5 * NS_PER_MS };
	nanosleep(&pause, NULL);
	if (in_loop) {
		assert_int_equal(event_loop(tear.d, NULL, NULL), 0);
	} else {
		int rc = vent_wait(tear.d, 5000, NULL);
		if (use_free)
			assert_true(rc >= 0);
		else
			assert_int_equal(rc, 1 + (from_timer ? NTEAR : 0));
	}
	/* fd callbacks run first: with a timer hook, all fds ran before. */
	assert_int_equal(g_calls, 1 + (from_timer ? NTEAR : 0));
	assert_int_equal(g_cleanups, NTEAR); /* the timers' (tev_cleanup) */
	for (int i = 0; i < NTEAR; i++) {
		assert_false(fd_is_open(p[i][0]));
		close(p[i][1]);
	}
	if (use_free) {
		assert_int_equal(tear.efd_closed, 1);
	} else {
		assert_int_equal(tear.rc, 0);
		/* Usable. */
		struct tev a;
		int q[2];
		mkpipe(q);
		tev_init(&a, q[0], EPOLLIN);
		assert_int_equal(event_add(tear.d, &a.e), 0);
		put(q[1]);
		assert_int_equal(vent_wait(tear.d, 5000, NULL), 1);
		assert_int_equal(a.calls, 1);
		free_dispatcher(tear.d);
		assert_int_equal(a.cleanups, 1);
		close(q[0]);
		close(q[1]);
	}
}

static void test_cleanup_dispatcher_from_fd_callback(void **state)
{
	(void)state;
	run_teardown_from_callback(0, 0, 0);
}

static void test_cleanup_dispatcher_from_timer_callback(void **state)
{
	(void)state;
	run_teardown_from_callback(0, 1, 0);
}

static void test_free_dispatcher_from_fd_callback(void **state)
{
	(void)state;
	run_teardown_from_callback(1, 0, 0);
}

static void test_free_dispatcher_from_timer_callback(void **state)
{
	(void)state;
	run_teardown_from_callback(1, 1, 0);
}

static void test_free_dispatcher_from_loop_callback(void **state)
{
	(void)state;
	run_teardown_from_callback(1, 0, 1);
}

/* ------------------------------------------------------------------------
 * Removal and re-adding from callbacks
 */

static struct tev *survivor;

/* Removes the peer (whose readiness is in this batch) and frees it. */
static int remove_peer_hook(struct tev *t)
{
	struct tev *o = t->peer;

	if (o) {
		t->rc = event_remove(&o->e);
		free(o);
		t->peer = NULL;
		survivor = t;
	}
	return EVENTCB_CONTINUE;
}

static void test_remove_other_in_batch_then_free(void **state)
{
	struct dispatcher *d = mkdsp();
	int p[2], q[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	mkpipe(q);
	struct tev *a = tev_new(p[0], EPOLLIN);
	struct tev *b = tev_new(q[0], EPOLLIN);
	survivor = NULL;
	a->hook = b->hook = remove_peer_hook;
	a->peer = b;
	b->peer = a;
	assert_int_equal(event_add(d, &a->e), 0);
	assert_int_equal(event_add(d, &b->e), 0);
	put(p[1]);
	put(q[1]);
	/* Both are ready in one batch; whichever runs first frees the other. */
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(g_calls, 1);
	assert_true(survivor == a || survivor == b);
	assert_int_equal(survivor->calls, 1);
	assert_int_equal(survivor->rc, 0);
	/* The freed one's fd is still readable, but it is gone. */
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_int_equal(g_calls, 1);
	free_dispatcher(d);
	assert_int_equal(g_cleanups, 1);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

static int remove_self_hook(struct tev *t)
{
	int fd = t->e.fd;

	t->rc = event_remove(&t->e);
	if (t->rc == 0) {
		g_cleanups += 100; /* marks the free; a cleanup now would be wrong */
		free(t);
	}
	(void)fd;
	/* Ignored: the event removed itself. */
	return EVENTCB_CLEANUP;
}

static void test_remove_self_and_free_from_callback(void **state)
{
	struct dispatcher *d = mkdsp();
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	struct tev *a = tev_new(p[0], EPOLLIN);
	a->hook = remove_self_hook;
	a->e.tmo.tv_nsec = 1; /* its timeout is in this very batch too */
	assert_int_equal(event_add(d, &a->e), 0);
	put(p[1]);
	struct timespec pause = { 0, 5 * NS_PER_MS };
	nanosleep(&pause, NULL);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(g_calls, 1);
	assert_int_equal(g_cleanups, 100);
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_int_equal(g_calls, 1);
	free_dispatcher(d);
	assert_int_equal(g_cleanups, 100);
	close(p[0]);
	close(p[1]);
}

/* Removes the peer and adds it again on fd t->rc (or its own fd if -1). */
static int readd_peer_fd;

static int readd_peer_hook(struct tev *t)
{
	struct tev *o = t->peer;

	if (o && o->calls == 0 && t->peer) {
		int rc = event_remove(&o->e);
		if (readd_peer_fd >= 0)
			o->e.fd = readd_peer_fd;
		rc |= event_add(t->dsp, &o->e);
		t->rc = rc;
		t->peer->peer = NULL;
		t->peer = NULL;
	}
	return EVENTCB_CONTINUE;
}

/*
 * Remove + re-add of the same struct inside a batch that already holds its
 * readiness: the old record is stale (generation) and must not reach it.
 */
static void run_readd_in_batch(int same_fd)
{
	struct dispatcher *d = mkdsp();
	struct tev a, b;
	int p[2], q[2], idle[2];

	reset_counters();
	mkpipe(p);
	mkpipe(q);
	mkpipe(idle);
	readd_peer_fd = same_fd ? -1 : idle[0];
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, q[0], EPOLLIN);
	a.hook = b.hook = readd_peer_hook;
	a.peer = &b;
	b.peer = &a;
	a.dsp = b.dsp = d;
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(event_add(d, &b.e), 0);
	put(p[1]);
	put(q[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	struct tev *first = a.calls ? &a : &b;
	struct tev *second = a.calls ? &b : &a;
	assert_int_equal(first->calls, 1);
	assert_int_equal(first->rc, 0);
	assert_int_equal(second->calls, 0);
	assert_ptr_equal(second->e.dsp, d);
	if (same_fd) {
		/* Its fd is still readable: served on the next wait. */
		assert_int_equal(vent_wait(d, 5000, NULL), 1);
		assert_int_equal(second->calls, 1);
	} else {
		/* Its new fd is idle: nothing, ever. */
		assert_int_equal(vent_wait(d, 50, NULL), 0);
		put(idle[1]);
		assert_int_equal(vent_wait(d, 5000, NULL), 1);
		assert_int_equal(second->calls, 1);
		assert_int_equal(second->e.fd, idle[0]);
	}
	free_dispatcher(d);
	assert_int_equal(a.cleanups + b.cleanups, 2);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	close(idle[0]);
	close(idle[1]);
}

static void test_readd_other_in_batch_same_fd(void **state)
{
	(void)state;
	run_readd_in_batch(1);
}

static void test_readd_other_in_batch_new_fd(void **state)
{
	(void)state;
	run_readd_in_batch(0);
}

/* Disables the peer (mask 0) and enables it again, before it is served. */
static int toggle_peer_hook(struct tev *t)
{
	struct tev *o = t->peer;

	if (o && o->calls == 0) {
		o->e.ep.events = 0;
		t->rc = event_modify(&o->e);
		o->e.ep.events = EPOLLIN;
		t->rc |= event_modify(&o->e);
		t->peer->peer = NULL;
		t->peer = NULL;
	}
	return EVENTCB_CONTINUE;
}

/*
 * Disabled and enabled again inside a batch that already holds its
 * readiness: the event keeps its registration's identity, so the record
 * fetched before is still delivered in the same wait (event_modify():
 * readiness fetched under the old mask is delivered unless the new mask
 * is 0).
 */
static void test_reenable_in_batch_keeps_readiness(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a, b;
	int p[2], q[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	mkpipe(q);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, q[0], EPOLLIN);
	a.hook = b.hook = toggle_peer_hook;
	a.peer = &b;
	b.peer = &a;
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(event_add(d, &b.e), 0);
	put(p[1]);
	put(q[1]);
	/* Both readable before the wait: one batch serves both. */
	assert_int_equal(vent_wait(d, 5000, NULL), 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(a.rc | b.rc, 0);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* Runs the peer's callback through _event_invoke_callback(). */
static int invoke_peer_hook(struct tev *t)
{
	if (t->peer)
		_event_invoke_callback(&t->peer->e, REASON_EVENT_OCCURED, EPOLLIN, false);
	return t->ret;
}

/* Removes the peer and adds it again. */
static int readd_peer_now_hook(struct tev *t)
{
	t->rc = event_remove(&t->peer->e);
	t->rc |= event_add(t->dsp, &t->peer->e);
	return EVENTCB_CONTINUE;
}

/*
 * A callback run through _event_invoke_callback() from another callback
 * removes the outer event and adds it again: the outer callback's return
 * value no longer applies to it (it is a new registration), however deep
 * the nesting.
 */
static void test_nested_invoke_readds_outer(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a, b;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, -1, 0);
	b.e.tmo.tv_sec = 100;
	a.hook = invoke_peer_hook;
	a.peer = &b;
	a.ret = EVENTCB_CLEANUP;
	b.hook = readd_peer_now_hook;
	b.peer = &a;
	b.dsp = d;
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(event_add(d, &b.e), 0);
	put(p[1]);
	/* Two callbacks ran in this wait: a's, and b's inside it. */
	assert_int_equal(vent_wait(d, 5000, NULL), 2);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.rc, 0);
	/* a's EVENTCB_CLEANUP was moot: still added, not cleaned up. */
	assert_ptr_equal(a.e.dsp, d);
	assert_int_equal(a.cleanups, 0);
	/* And served again, as the new registration it is. */
	a.ret = EVENTCB_CONTINUE;
	a.peer = NULL;
	put(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 2);
	free_dispatcher(d);
	assert_int_equal(a.cleanups + b.cleanups, 2);
	close(p[0]);
	close(p[1]);
}

static int readd_self_hook(struct tev *t)
{
	t->rc = event_remove(&t->e);
	t->rc |= event_add(t->dsp, &t->e);
	/* Ignored: the event removed itself (and came back). */
	return t->calls == 1 ? EVENTCB_CLEANUP : EVENTCB_REMOVE;
}

static void test_readd_self_from_callback(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a, tm;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&a, p[0], EPOLLIN);
	a.drain = 0; /* stays readable: served on every wait */
	a.hook = readd_self_hook;
	a.dsp = d;
	assert_int_equal(event_add(d, &a.e), 0);
	put(p[1]);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(vent_wait(d, 5000, NULL), 1);
		assert_int_equal(a.calls, i);
		assert_int_equal(a.rc, 0);
		assert_ptr_equal(a.e.dsp, d);
		assert_int_equal(a.cleanups, 0);
	}
	assert_int_equal(event_remove(&a.e), 0);

	/* A timer re-adding itself from its timeout callback. */
	tev_init(&tm, -1, 0);
	tm.hook = readd_self_hook;
	tm.dsp = d;
	tm.e.tmo.tv_nsec = 1;
	assert_int_equal(event_add(d, &tm.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(tm.calls, 1);
	assert_int_equal(tm.rc, 0);
	assert_ptr_equal(tm.e.dsp, d);
	/* Re-added with tmo {0,0} (expired): no timeout any more. */
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_int_equal(tm.calls, 1);
	free_dispatcher(d);
	assert_int_equal(tm.cleanups, 1);
	assert_int_equal(a.cleanups, 0);
	close(p[0]);
	close(p[1]);
}

static void test_return_remove_vs_cleanup(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a;
	int p[2], q[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	mkpipe(q);
	tev_init(&a, p[0], EPOLLIN);
	a.ret = EVENTCB_REMOVE;
	a.e.tmo.tv_sec = 100;
	assert_int_equal(event_add(d, &a.e), 0);
	put(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.cleanups, 0);
	assert_null(a.e.dsp);
	assert_int_equal(event_remove(&a.e), -EINVAL);
	assert_true(fd_is_open(p[0]));
	put(p[1]);
	assert_int_equal(vent_wait(d, 50, NULL), 0);

	/* EVENTCB_CLEANUP: cleanup once, after removal; it frees the event. */
	struct tev *h = tev_new(q[0], EPOLLIN);
	h->ret = EVENTCB_CLEANUP;
	h->e.tmo.tv_sec = 100;
	assert_int_equal(event_add(d, &h->e), 0);
	put(q[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(g_calls, 2);
	assert_int_equal(g_cleanups, 1);

	/* EVENTCB_CLEANUP with cleanup_event_on_heap: fd closed, memory freed. */
	int r[2];
	mkpipe(r);
	struct tev *hh = tev_new(r[0], EPOLLIN);
	hh->ret = EVENTCB_CLEANUP;
	hh->e.cleanup = cleanup_event_on_heap;
	assert_int_equal(event_add(d, &hh->e), 0);
	put(r[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_false(fd_is_open(r[0]));
	close(r[1]);

	/* EVENTCB_CLEANUP without a cleanup function: just removed. */
	tev_init(&a, p[0], EPOLLIN);
	a.e.cleanup = NULL;
	a.ret = EVENTCB_CLEANUP;
	assert_int_equal(event_add(d, &a.e), 0);
	put(p[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_null(a.e.dsp);

	/* Nothing is left to clean up. */
	free_dispatcher(d);
	assert_int_equal(g_cleanups, 1);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* cleanup_event_on_stack closes the fd (unless -1), does not free. */
static void test_cleanup_helpers(void **state)
{
	int p[2];
	struct event e;

	(void)state;
	mkpipe(p);
	e = EVENT_ON_STACK(tev_cb, p[0], EPOLLIN);
	assert_ptr_equal(e.cleanup, cleanup_event_on_stack);
	cleanup_event_on_stack(&e);
	assert_false(fd_is_open(p[0]));
	e.fd = -1;
	cleanup_event_on_stack(&e); /* no close(-1) surprises */
	struct event *h = malloc(sizeof(*h));
	assert_non_null(h);
	*h = EVENT_ON_HEAP(tev_cb, p[1], EPOLLOUT);
	assert_ptr_equal(h->cleanup, cleanup_event_on_heap);
	cleanup_event_on_heap(h);
	assert_false(fd_is_open(p[1]));
}

/* ------------------------------------------------------------------------
 * Disabled events are silent
 */

static void test_disabled_silent_on_hup_and_err(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev hup, err, late;
	int p[2], q[2], r[2];
	const int rounds = 5, ms = 40;

	(void)state;
	reset_counters();
	mkpipe(p);
	mkpipe(q);
	mkpipe(r);
	/* Read end with the writer gone: EPOLLHUP, always. */
	close(p[1]);
	tev_init(&hup, p[0], 0);
	/* Write end with the reader gone: EPOLLERR, always. */
	close(q[0]);
	tev_init(&err, q[1], 0);
	/* Enabled, then disabled after the hang-up is already pending. */
	tev_init(&late, r[0], EPOLLIN);
	assert_int_equal(event_add(d, &hup.e), 0);
	assert_int_equal(event_add(d, &err.e), 0);
	assert_int_equal(event_add(d, &late.e), 0);
	close(r[1]);
	late.e.ep.events = 0;
	assert_int_equal(event_modify(&late.e), 0);

	/*
	 * No callback and no wakeup: each bounded wait runs its full length
	 * (a spinning loop would return at once) and the epoll fd is quiet.
	 */
	int64_t t0 = now_ns();
	for (int i = 0; i < rounds; i++)
		assert_int_equal(vent_wait(d, ms, NULL), 0);
	assert_true(now_ns() - t0 >= rounds * (ms - 1) * NS_PER_MS);
	assert_int_equal(efd_readable(d), 0);
	assert_int_equal(g_calls, 0);

	/* A disabled event keeps its timeout. */
	struct timespec ts = { 0, 10 * NS_PER_MS };
	assert_int_equal(event_mod_timeout(&hup.e, &ts), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(hup.calls, 1);
	assert_int_equal(hup.reason, REASON_TIMEOUT);
	assert_int_equal(hup.events, 0);

	/* Re-enabled: the hang-up is reported. */
	hup.drain = 0;
	hup.e.ep.events = EPOLLIN;
	assert_int_equal(event_modify(&hup.e), 0);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(hup.calls, 2);
	assert_true(hup.events & EPOLLHUP);
	/* Disabled again: silent again. */
	hup.e.ep.events = 0;
	assert_int_equal(event_modify(&hup.e), 0);
	assert_int_equal(vent_wait(d, ms, NULL), 0);
	assert_int_equal(efd_readable(d), 0);

	free_dispatcher(d);
	assert_int_equal(g_cleanups, 3);
	close(p[0]);
	close(q[1]);
	close(r[0]);
}

/*
 * A mask change from an earlier callback of the same batch: 0 silences the
 * peer at once; another non-zero mask still delivers what was fetched.
 */
static uint32_t peer_new_mask;

static int disable_peer_hook(struct tev *t)
{
	if (t->peer) {
		t->peer->e.ep.events = peer_new_mask;
		t->rc = event_modify(&t->peer->e);
		t->peer->peer = NULL;
		t->peer = NULL;
	}
	return EVENTCB_CONTINUE;
}

static void run_modify_other_in_batch(uint32_t mask)
{
	struct dispatcher *d = mkdsp();
	struct tev a, b;
	int p[2], q[2];

	reset_counters();
	peer_new_mask = mask;
	mkpipe(p);
	mkpipe(q);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, q[0], EPOLLIN);
	a.drain = b.drain = 0;
	a.hook = b.hook = disable_peer_hook;
	a.peer = &b;
	b.peer = &a;
	assert_int_equal(event_add(d, &a.e), 0);
	assert_int_equal(event_add(d, &b.e), 0);
	put(p[1]);
	put(q[1]);
	if (mask == 0) {
		assert_int_equal(vent_wait(d, 5000, NULL), 1);
		assert_int_equal(g_calls, 1);
		struct tev *off = a.calls ? &b : &a;
		assert_int_equal(off->calls, 0);
		assert_int_equal(vent_wait(d, 5000, NULL), 1); /* the enabled one again */
		assert_int_equal(off->calls, 0);
	} else {
		assert_int_equal(vent_wait(d, 5000, NULL), 2);
		struct tev *second = a.order > b.order ? &a : &b;
		assert_int_equal(second->calls, 1);
		assert_int_equal(second->events, EPOLLIN);
		assert_int_equal(second->e.ep.events, mask);
		/* Under the new mask from now on. */
		assert_int_equal(vent_wait(d, 5000, NULL), 2);
	}
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

static void test_disable_other_in_batch(void **state)
{
	(void)state;
	run_modify_other_in_batch(0);
}

static void test_modify_other_in_batch_still_delivered(void **state)
{
	(void)state;
	run_modify_other_in_batch(EPOLLIN | EPOLLRDHUP);
}

/* ------------------------------------------------------------------------
 * Dispatch order and the fd/timeout interplay
 */

static void test_fd_before_timeouts_and_fd_keeps_timeout(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev f, t;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&t, -1, 0);
	t.e.tmo.tv_nsec = 1;
	tev_init(&f, p[0], EPOLLIN);
	/* Long enough that a stalled machine cannot make it due in wait 1. */
	f.e.tmo.tv_sec = 1;
	f.e.tmo.tv_nsec = 0;
	assert_int_equal(event_add(d, &t.e), 0);
	assert_int_equal(event_add(d, &f.e), 0);
	put(p[1]);
	struct timespec pause = { 0, 5 * NS_PER_MS };
	nanosleep(&pause, NULL);
	/* Both ready in one wait: fd callbacks first. */
	assert_int_equal(vent_wait(d, 5000, NULL), 2);
	assert_int_equal(f.calls, 1);
	assert_int_equal(t.calls, 1);
	assert_true(f.order < t.order);
	assert_int_equal(f.reason, REASON_EVENT_OCCURED);
	assert_int_equal(t.reason, REASON_TIMEOUT);
	assert_int_equal(t.events, 0);
	/* The fd event did not cancel f's timeout. */
	assert_false(f.e.tmo.tv_sec == 0 && f.e.tmo.tv_nsec == 0);
	int64_t deadline = ts_ns(&f.e.tmo);
	while (f.calls < 2)
		assert_true(vent_wait(d, 5000, NULL) >= 1);
	assert_true(now_ns() >= deadline);
	assert_int_equal(f.reason, REASON_TIMEOUT);
	assert_int_equal(f.events, 0);
	/* Oneshot: gone after firing. */
	assert_int_equal(f.e.tmo.tv_sec, 0);
	assert_int_equal(f.e.tmo.tv_nsec, 0);
	assert_int_equal(t.e.tmo.tv_sec, 0);
	assert_int_equal(t.e.tmo.tv_nsec, 0);
	assert_int_equal(vent_wait(d, 60, NULL), 0);
	assert_int_equal(f.calls, 2);
	assert_int_equal(t.calls, 1);
	free_dispatcher(d);
	close(p[0]);
	close(p[1]);
}

/* ------------------------------------------------------------------------
 * _event_invoke_callback (binary compatibility)
 */

static int reenter_hook(struct tev *t)
{
	/* Must not run the callback again while it runs. */
	if (t->calls == 1)
		_event_invoke_callback(&t->e, REASON_TIMEOUT, 7, false);
	return t->ret;
}

static void test_invoke_callback(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a;

	(void)state;
	reset_counters();
	/* Not added: runs the callback; reset_reason puts reason back to 0. */
	tev_init(&a, -1, 0);
	_event_invoke_callback(&a.e, REASON_TIMEOUT, 5, true);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.reason, REASON_TIMEOUT);
	assert_int_equal(a.events, 5);
	assert_int_equal(a.e.reason, REASON_EVENT_OCCURED);
	_event_invoke_callback(&a.e, REASON_TIMEOUT, 0, false);
	assert_int_equal(a.e.reason, REASON_TIMEOUT);

	/* Added, returning EVENTCB_REMOVE: removed, no cleanup. */
	tev_init(&a, -1, 0);
	a.e.tmo.tv_sec = 100;
	a.ret = EVENTCB_REMOVE;
	assert_int_equal(event_add(d, &a.e), 0);
	_event_invoke_callback(&a.e, REASON_EVENT_OCCURED, EPOLLIN, true);
	assert_int_equal(a.calls, 1);
	assert_null(a.e.dsp);
	assert_int_equal(a.cleanups, 0);

	/* EVENTCB_CLEANUP: removed and cleaned up once. */
	struct tev *h = tev_new(-1, 0);
	h->e.tmo.tv_sec = 100;
	h->ret = EVENTCB_CLEANUP;
	assert_int_equal(event_add(d, &h->e), 0);
	_event_invoke_callback(&h->e, REASON_TIMEOUT, 0, true);
	assert_int_equal(g_cleanups, 1);

	/* Never re-entrant for the same event. */
	tev_init(&a, -1, 0);
	a.hook = reenter_hook;
	a.e.tmo.tv_sec = 100;
	assert_int_equal(event_add(d, &a.e), 0);
	_event_invoke_callback(&a.e, REASON_EVENT_OCCURED, EPOLLIN, true);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.events, EPOLLIN);
	tev_init(&a, -1, 0);
	a.hook = reenter_hook;
	_event_invoke_callback(&a.e, REASON_EVENT_OCCURED, EPOLLIN, true);
	assert_int_equal(a.calls, 1);

	free_dispatcher(d);
	assert_int_equal(g_cleanups, 2);
}

/* ------------------------------------------------------------------------
 * Closed before removed: orphaned kernel registrations
 */

/*
 * An add that epoll refuses (a regular file: -EPERM) from a callback, in a
 * batch that also brings an orphaned registration's record: the failed add
 * counts as no removal, so the orphan is still recognised as one and purged
 * after that very batch (a removal in the batch would excuse its record as
 * a stale one of that removal).
 */
static struct {
	struct dispatcher *d;
	int regfd;
	int rc;
	int calls;
} failadd;

static int failadd_cb(struct event *e, uint32_t events)
{
	uint64_t v;
	struct event r = __EVENT_INIT(nop_cb, NULL, failadd.regfd, EPOLLIN, 0, 0);

	(void)events;
	assert_int_equal(read(e->fd, &v, sizeof(v)), (ssize_t)sizeof(v));
	failadd.calls++;
	failadd.rc = event_add(failadd.d, &r);
	return EVENTCB_CONTINUE;
}

static void test_failed_add_in_batch_is_no_removal(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev o;
	int q[2];

	(void)state;
	memset(&failadd, 0, sizeof(failadd));
	failadd.d = d;
	failadd.regfd = memfd_create("vent-regular", MFD_CLOEXEC);
	assert_true(failadd.regfd >= 0);
	int x = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(x >= 0);
	struct event ex = __EVENT_INIT(failadd_cb, NULL, x, EPOLLIN, 0, 0);
	assert_int_equal(event_add(d, &ex), 0);
	/* The orphan: closed before its removal, a dup keeps the file. */
	mkpipe(q);
	int keep = dup(q[0]);
	assert_true(keep >= 0);
	tev_init(&o, q[0], EPOLLIN);
	o.drain = 0;
	assert_int_equal(event_add(d, &o.e), 0);
	close(q[0]);
	assert_int_equal(event_remove(&o.e), 0);
	/* Ready in this order: the failing add runs before the orphan's record. */
	assert_int_equal(eventfd_write(x, 1), 0);
	put(q[1]);
	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	assert_int_equal(failadd.calls, 1);
	assert_int_equal(failadd.rc, -EPERM);
	assert_int_equal(o.calls, 0);
	/* Purged after that batch: nothing in the set reports any more. */
	assert_int_equal(efd_readable(d), 0);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	/* The failed add's slot is free again: the dispatcher still works. */
	assert_int_equal(eventfd_write(x, 1), 0);
	assert_int_equal(vent_wait(d, 1000, NULL), 1);
	assert_int_equal(failadd.calls, 2);
	assert_int_equal(event_remove(&ex), 0);
	free_dispatcher(d);
	close(keep);
	close(q[1]);
	close(x);
	close(failadd.regfd);
}


static void test_closed_before_removed(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev a, f, g;
	int p[2], q[2];

	(void)state;
	reset_counters();
	int efd = dispatcher_get_efd(d);
	mkpipe(p);
	int keep = dup(p[0]);
	assert_true(keep >= 0);
	tev_init(&a, p[0], EPOLLIN);
	a.drain = 0;
	assert_int_equal(event_add(d, &a.e), 0);
	close(p[0]); /* the dup keeps the file and its registration alive */
	assert_int_equal(event_remove(&a.e), 0);
	put(p[1]);
	/* The orphan may wake the loop once; then it is purged. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(vent_wait(d, 0, NULL), 0);
	assert_int_equal(a.calls, 0);
	assert_int_equal(efd_readable(d), 0);
	int64_t t0 = now_ns();
	assert_int_equal(vent_wait(d, 50, NULL), 0);
	assert_true(now_ns() - t0 >= 50 * NS_PER_MS);
	assert_int_equal(dispatcher_get_efd(d), efd);

	/* Same fd number and file again before any wait: the orphan's EEXIST
	 * does not block the new event. */
	mkpipe(q);
	int keep2 = dup(q[0]);
	assert_true(keep2 >= 0);
	tev_init(&f, q[0], EPOLLIN);
	assert_int_equal(event_add(d, &f.e), 0);
	int num = q[0];
	close(q[0]);
	assert_int_equal(event_remove(&f.e), 0);
	assert_int_equal(dup2(keep2, num), num);
	tev_init(&g, num, EPOLLIN);
	assert_int_equal(event_add(d, &g.e), 0);
	put(q[1]);
	assert_int_equal(vent_wait(d, 5000, NULL), 1);
	assert_int_equal(g.calls, 1);
	assert_int_equal(f.calls, 0);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	assert_int_equal(event_remove(&g.e), 0);

	free_dispatcher(d);
	assert_int_equal(g_cleanups, 0);
	close(keep);
	close(keep2);
	close(num);
	close(p[1]);
	close(q[1]);
}

/* ------------------------------------------------------------------------
 * Fork
 */

static int child_checks(struct dispatcher *d, struct tev *r, struct tev *t)
{
	struct tev x;
	struct timespec ts = { 1, 0 };
	sigset_t none;

	sigemptyset(&none);
	tev_init(&x, -1, 0);
	x.e.tmo.tv_sec = 1;
	if (dispatcher_get_efd(d) != -ECHILD)
		return 10;
	if (dispatcher_get_clocksource(d) != -ECHILD)
		return 11;
	if (event_add(d, &x.e) != -ECHILD || x.e.dsp)
		return 12;
	if (event_remove(&r->e) != -ECHILD)
		return 13;
	if (event_modify(&r->e) != -ECHILD)
		return 14;
	if (event_mod_timeout(&t->e, &ts) != -ECHILD)
		return 15;
	if (event_wait(d, &none) != -ECHILD)
		return 16;
	if (event_loop(d, NULL, NULL) != -ECHILD)
		return 17;
	if (vent_wait(d, 0, NULL) != -ECHILD)
		return 18;
	if (cleanup_dispatcher(d) != -ECHILD)
		return 19;
	if (vent_loop_stop(d) != -ECHILD)
		return 20;
	if (vent_dispatcher_wake(d) != -ECHILD)
		return 21;
	/* The only call that works: cleanups run once each, nothing else. */
	free_dispatcher(d);
	if (r->cleanups != 1 || t->cleanups != 1)
		return 22;
	if (r->calls || t->calls)
		return 23;
	return 0;
}

static void test_fork_echild(void **state)
{
	struct dispatcher *d = mkdsp();
	struct tev r, t;
	int p[2];

	(void)state;
	reset_counters();
	mkpipe(p);
	tev_init(&r, p[0], EPOLLIN);
	tev_init(&t, -1, 0);
	t.e.tmo.tv_nsec = 200 * NS_PER_MS;
	assert_int_equal(event_add(d, &r.e), 0);
	assert_int_equal(event_add(d, &t.e), 0);
	int64_t deadline = ts_ns(&t.e.tmo);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks(d, &r, &t));
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/*
	 * The parent's kernel objects are untouched: the child's
	 * free_dispatcher() made no epoll_ctl(DEL) (the shared epoll set still
	 * holds the pipe) and no timerfd_settime() (the shared timerfd still
	 * fires for t).
	 */
	put(p[1]);
	assert_true(vent_wait(d, 5000, NULL) >= 1); /* t may be due already */
	assert_int_equal(r.calls, 1);
	for (int i = 0; i < 10 && t.calls == 0; i++)
		assert_true(vent_wait(d, 5000, NULL) >= 0);
	assert_int_equal(t.calls, 1);
	assert_true(now_ns() >= deadline);
	assert_int_equal(r.cleanups + t.cleanups, 0);
	free_dispatcher(d);
	assert_int_equal(r.cleanups, 1);
	assert_int_equal(t.cleanups, 1);
	close(p[0]);
	close(p[1]);
}

/*
 * The fork-then-exit pattern: a callback forks, the child frees the
 * inherited dispatcher from inside that callback (cleanups run, fds close;
 * the memory is never released because the child exits) and exits. The
 * parent's dispatcher is untouched.
 */
static struct dispatcher *fx_dsp;
static int fx_efd;

static int fork_exit_hook(struct tev *t)
{
	if (t->rc)
		return EVENTCB_CONTINUE;
	pid_t pid = fork();
	if (pid == 0) {
		int efd = dispatcher_get_efd(fx_dsp);
		int before = g_cleanups;
		free_dispatcher(fx_dsp);
		/* Each of the two events cleaned up once; the fds are closed. */
		int ok = g_cleanups == before + 2 && efd == -ECHILD && !fd_is_open(fx_efd);
		_exit(ok ? 0 : 1);
	}
	t->rc = pid;
	return EVENTCB_CONTINUE;
}

static void test_fork_then_exit_from_callback(void **state)
{
	struct tev a, b;
	int p[2], q[2];

	(void)state;
	reset_counters();
	fx_dsp = mkdsp();
	fx_efd = dispatcher_get_efd(fx_dsp);
	mkpipe(p);
	mkpipe(q);
	tev_init(&a, p[0], EPOLLIN);
	tev_init(&b, q[0], EPOLLIN);
	a.hook = fork_exit_hook;
	b.e.tmo.tv_sec = 100;
	assert_int_equal(event_add(fx_dsp, &a.e), 0);
	assert_int_equal(event_add(fx_dsp, &b.e), 0);
	put(p[1]);
	assert_int_equal(vent_wait(fx_dsp, 5000, NULL), 1);
	assert_true(a.rc > 0);
	int status;
	assert_int_equal(waitpid(a.rc, &status, 0), a.rc);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent's set and timer are intact. */
	put(p[1]);
	put(q[1]);
	assert_int_equal(vent_wait(fx_dsp, 5000, NULL), 2);
	assert_int_equal(a.calls, 2);
	assert_int_equal(b.calls, 1);
	assert_int_equal(g_cleanups, 0);
	free_dispatcher(fx_dsp);
	assert_int_equal(g_cleanups, 2);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
}

/* ------------------------------------------------------------------------
 * Out of fds
 */

static void test_new_dispatcher_emfile(void **state)
{
	struct rlimit old, low;
	int *fill;
	int n = 0, highest = -1, cap;
	int base = fd_count();

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	assert_non_null(dir);
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] != '.' && fd > highest && (rlim_t)fd < old.rlim_cur)
			highest = fd;
	}
	closedir(dir);
	low = old;
	low.rlim_cur = (rlim_t)highest + 1 + 16;
	assert_true(low.rlim_cur <= old.rlim_cur);
	/* Enough room for every free number below the limit, plus one. */
	cap = (int)low.rlim_cur + 1;
	fill = calloc((size_t)cap, sizeof(*fill));
	assert_non_null(fill);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	for (;;) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			assert_int_equal(errno, EMFILE);
			break;
		}
		if (n == cap) {
			/* The limit is not enforced (valgrind emulates it). */
			close(fd);
			break;
		}
		fill[n++] = fd;
	}
	if (n == cap) {
		assert_true(under_valgrind());
		print_message("rlimit not enforced here: -EMFILE part not checked\n");
	} else {
		/* 0, 1 or 2 fds free: new_dispatcher() needs 3. */
		for (int k = 0; k < 3; k++) {
			for (int i = 0; i < k; i++)
				close(fill[--n]);
			int before = fd_count();
			errno = 0;
			assert_null(new_dispatcher(CLOCK_MONOTONIC));
			assert_int_equal(errno, EMFILE);
			assert_int_equal(fd_count(), before);
			for (int i = 0; i < k; i++) {
				fill[n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
				assert_true(fill[n] >= 0);
				n++;
			}
		}
		for (int i = 0; i < 3; i++)
			close(fill[--n]);
		struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
		assert_non_null(d);
		/* Still works at the edge. */
		struct tev t;
		tev_init(&t, -1, 0);
		t.e.tmo.tv_nsec = 1;
		assert_int_equal(event_add(d, &t.e), 0);
		assert_int_equal(vent_wait(d, 5000, NULL), 1);
		free_dispatcher(d);
	}
	while (n > 0)
		close(fill[--n]);
	free(fill);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(fd_count(), base);
}

/* ------------------------------------------------------------------------
 * A batch bigger than the epoll buffer
 */

static void test_huge_batch(void **state)
{
	enum { N = 300 };
	struct dispatcher *d = mkdsp();
	static struct tev ev[N];
	static int p[N][2];
	int waits = 0;

	(void)state;
	reset_counters();
	for (int i = 0; i < N; i++) {
		mkpipe(p[i]);
		tev_init(&ev[i], p[i][0], EPOLLIN);
		assert_int_equal(event_add(d, &ev[i].e), 0);
		put(p[i][1]);
	}
	while (g_calls < N && waits < 20) {
		int rc = vent_wait(d, 5000, NULL);
		assert_true(rc > 0);
		waits++;
	}
	assert_int_equal(g_calls, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(ev[i].calls, 1);
	/* At least 64 records per wait. */
	assert_true(waits <= (N + 63) / 64);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	free_dispatcher(d);
	assert_int_equal(g_cleanups, N);
	for (int i = 0; i < N; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

/* ------------------------------------------------------------------------
 * Memory
 */

/*
 * Library memory per registered event: a 24-byte slot (the timeout's own
 * key lives there, so a deadline moved later does not touch the heap), plus
 * a 16-byte heap entry for a timeout. 65536 timer-only events fill both
 * tables to their capacity (each grows by doubling from a power of two), so
 * no growth slack blurs the figure: 40 bytes per event and the blocks' own
 * overhead.
 */
static void test_memory_per_timer(void **state)
{
	enum { N = 65536 };
	struct dispatcher *d = mkdsp();
	struct event *ev = calloc(N, sizeof(*ev));

	(void)state;
	assert_non_null(ev);
	size_t before = allocated_bytes();
	for (int i = 0; i < N; i++) {
		struct event init = TIMER_EVENT_ON_STACK(nop_cb, 0);

		ev[i] = init;
		ev[i].tmo.tv_sec = 100 + i % 1000;
		assert_int_equal(event_add(d, &ev[i]), 0);
	}
	size_t used = allocated_bytes() - before;
	print_message("%.2f library bytes per timer-only event\n", (double)used / N);
	assert_true(used >= (size_t)N * 40);
	assert_true(used <= (size_t)N * 40 + 16384);
	for (int i = 0; i < N; i++)
		assert_int_equal(event_remove(&ev[i]), 0);
	free_dispatcher(d);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_new_dispatcher_clocks),
		CASE(test_new_dispatcher_alarm_clock_eperm),
		CASE(test_null_arguments),
		CASE(test_fd_callback_gets_mask_and_reason),
		CASE(test_add_errors),
		CASE(test_remove_errors),
		CASE(test_modify),
		CASE(test_modify_same_mask_no_syscall_and_ebadf),
		CASE(test_nested_wait_ebusy),
		CASE(test_wait_eintr_and_err_handler),
		CASE(test_teardown_ebusy_cleanup),
		CASE(test_teardown_ebusy_free),
		CASE(test_cleanup_dispatcher),
		CASE(test_cleanup_dispatcher_from_fd_callback),
		CASE(test_cleanup_dispatcher_from_timer_callback),
		CASE(test_free_dispatcher_from_fd_callback),
		CASE(test_free_dispatcher_from_timer_callback),
		CASE(test_free_dispatcher_from_loop_callback),
		CASE(test_remove_other_in_batch_then_free),
		CASE(test_remove_self_and_free_from_callback),
		CASE(test_readd_other_in_batch_same_fd),
		CASE(test_readd_other_in_batch_new_fd),
		CASE(test_reenable_in_batch_keeps_readiness),
		CASE(test_nested_invoke_readds_outer),
		CASE(test_readd_self_from_callback),
		CASE(test_return_remove_vs_cleanup),
		CASE(test_cleanup_helpers),
		CASE(test_disabled_silent_on_hup_and_err),
		CASE(test_disable_other_in_batch),
		CASE(test_modify_other_in_batch_still_delivered),
		CASE(test_fd_before_timeouts_and_fd_keeps_timeout),
		CASE(test_invoke_callback),
		CASE(test_closed_before_removed),
		CASE(test_failed_add_in_batch_is_no_removal),
		CASE(test_fork_echild),
		CASE(test_fork_then_exit_from_callback),
		CASE(test_new_dispatcher_emfile),
		CASE(test_huge_batch),
		CASE(test_memory_per_timer),
	};

	return cmocka_run_group_tests_name("dispatcher", tests, NULL, NULL);
}
