/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reliability-test.c - the core under adversarial use: wakeups and stops
 * from many threads and a signal handler, oneshot and edge-triggered re-arm
 * through event_modify(), an orphan purge under an embedding loop, clocks
 * that cannot be read, re-entrancy through _event_invoke_callback(), and
 * evt->fd changed while registered.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>

#include <vent/event.h>

#include "util/case.h"
#include "util/epoll.h"
#include "util/nop.h"

/* ------------------------------------------------------------------------
 * Wakeups and stops from many threads (issue 15, item 1)
 */

struct waker {
	struct dispatcher *dsp;
	atomic_bool *go;
};

static void *waker_main(void *arg)
{
	struct waker *w = arg;

	while (atomic_load(w->go))
		assert_int_equal(vent_dispatcher_wake(w->dsp), 0);
	return NULL;
}

struct looper {
	struct dispatcher *dsp;
	atomic_int done;
	int rc;
};

/* A signal interrupting the wait (-EINTR) is not a reason to stop. */
static int keep_looping(int err)
{
	(void)err;
	return ELOOP_CONTINUE;
}

static void *loop_main(void *arg)
{
	struct looper *l = arg;

	l->rc = event_loop(l->dsp, NULL, keep_looping);
	atomic_store(&l->done, 1);
	return NULL;
}

/*
 * Waits until @l's loop returned; a lost wakeup leaves it blocked for good,
 * so any generous bound tells the two apart. Keeps calling stop meanwhile,
 * as a user would: once a wakeup is lost, none of these help.
 */
static bool loop_returns(struct looper *l)
{
	int64_t end = now_ns() + 20 * NS_PER_S * slowdown();

	while (!atomic_load(&l->done)) {
		if (now_ns() > end)
			return false;
		assert_int_equal(vent_loop_stop(l->dsp), 0);
		usleep(1000);
	}
	return true;
}

static void test_wake_stop_threads(void **state)
{
	enum { kWakers = 3 };
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int rounds = (int)scaled(60, 10);

	(void)state;
	assert_non_null(d);
	for (int round = 0; round < rounds; round++) {
		atomic_bool go = true;
		struct waker w = { d, &go };
		struct looper l = { .dsp = d };
		pthread_t lt, wt[kWakers];

		assert_int_equal(pthread_create(&lt, NULL, loop_main, &l), 0);
		for (int i = 0; i < kWakers; i++)
			assert_int_equal(pthread_create(&wt[i], NULL, waker_main, &w), 0);
		usleep(20000);
		assert_int_equal(vent_loop_stop(d), 0);
		atomic_store(&go, false);
		for (int i = 0; i < kWakers; i++)
			pthread_join(wt[i], NULL);
		if (!loop_returns(&l)) {
			fprintf(stderr, "round %d: event_loop() never returned after "
					"vent_loop_stop(): a wakeup was lost\n", round);
			fail();
		}
		pthread_join(lt, NULL);
		assert_int_equal(l.rc, 0);
	}
	/* And a plain wake still makes a blocking wait return. */
	assert_int_equal(vent_dispatcher_wake(d), 0);
	assert_int_equal(vent_wait(d, 20000 * (int)slowdown(), NULL), 0);
	free_dispatcher(d);
}

/* The same with the wakes coming from a signal handler on the loop thread,
 * which may interrupt the loop anywhere, including inside its own drain. */
static struct dispatcher *sig_dsp;

static void on_sigusr1(int sig)
{
	(void)sig;
	vent_dispatcher_wake(sig_dsp);
}

static void test_wake_from_signal_handler(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	const int rounds = (int)scaled(60, 10);
	struct sigaction sa = { .sa_handler = on_sigusr1, .sa_flags = SA_RESTART };
	struct sigaction old;

	(void)state;
	assert_non_null(d);
	sig_dsp = d;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	for (int round = 0; round < rounds; round++) {
		struct looper l = { .dsp = d };
		pthread_t lt;

		assert_int_equal(pthread_create(&lt, NULL, loop_main, &l), 0);
		int64_t end = now_ns() + 20 * NS_PER_MS;
		while (now_ns() < end) {
			pthread_kill(lt, SIGUSR1);
			vent_dispatcher_wake(d);
		}
		assert_int_equal(vent_loop_stop(d), 0);
		if (!loop_returns(&l)) {
			fprintf(stderr, "round %d: event_loop() never returned after "
					"vent_loop_stop(): a wakeup was lost\n", round);
			fail();
		}
		pthread_join(lt, NULL);
		assert_int_equal(l.rc, 0);
	}
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	free_dispatcher(d);
}

/* ------------------------------------------------------------------------
 * Oneshot and edge-triggered re-arm through event_modify() (item 3)
 */

struct rec {
	struct event e;
	int calls;
	int drain;  /* read the fd empty in the callback (if it reported) */
	int nested; /* vent_wait(dsp, 0) from the callback: its result */
	int depth;
	int max_depth;
};

static int rec_cb(struct event *evt, uint32_t events)
{
	struct rec *r = (struct rec *)evt;

	r->calls++;
	if (r->drain && events) {
		uint64_t v;

		assert_int_equal(read(evt->fd, &v, sizeof(v)), sizeof(v));
	}
	return EVENTCB_CONTINUE;
}

static void rec_init(struct rec *r, int fd, uint32_t mask)
{
	memset(r, 0, sizeof(*r));
	r->e.fd = fd;
	r->e.ep.events = mask;
	r->e.callback = rec_cb;
}

static void put(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* A bound that only a missing callback reaches. */
static int long_ms(void)
{
	return 5000 * (int)slowdown();
}

static void test_oneshot_rearm(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct rec r;

	(void)state;
	assert_non_null(d);
	rec_init(&r, fd, EPOLLIN | EPOLLONESHOT);
	r.drain = 1;
	assert_int_equal(event_add(d, &r.e), 0);
	for (int i = 1; i <= 3; i++) {
		put(fd);
		assert_int_equal(vent_wait(d, long_ms(), NULL), 1);
		assert_int_equal(r.calls, i);
		/* Disarmed by the kernel: a new write is not reported ... */
		put(fd);
		assert_int_equal(vent_wait(d, 0, NULL), 0);
		/* ... until event_modify() with the same mask re-arms it. */
		assert_int_equal(event_modify(&r.e), 0);
		assert_int_equal(vent_wait(d, long_ms(), NULL), 1);
		assert_int_equal(r.calls, i + 1);
		r.calls = i;
		assert_int_equal(event_modify(&r.e), 0);
	}
	assert_int_equal(event_remove(&r.e), 0);
	free_dispatcher(d);
	close(fd);
}

static void test_edge_triggered_recheck(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct rec r;

	(void)state;
	assert_non_null(d);
	rec_init(&r, fd, EPOLLIN | EPOLLET);
	assert_int_equal(event_add(d, &r.e), 0);
	put(fd);
	assert_int_equal(vent_wait(d, long_ms(), NULL), 1);
	/* Not drained, but edge-triggered: silent until the next edge ... */
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	/* ... or until event_modify() asks the kernel to look again. */
	assert_int_equal(event_modify(&r.e), 0);
	assert_int_equal(vent_wait(d, long_ms(), NULL), 1);
	assert_int_equal(r.calls, 2);
	/* A level-triggered event with an unchanged mask: nothing to re-arm. */
	struct rec l;
	int fd2 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	rec_init(&l, fd2, EPOLLIN);
	assert_int_equal(event_add(d, &l.e), 0);
	assert_int_equal(event_modify(&l.e), 0);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	assert_int_equal(l.calls, 0);
	assert_int_equal(event_remove(&l.e), 0);
	assert_int_equal(event_remove(&r.e), 0);
	free_dispatcher(d);
	close(fd);
	close(fd2);
}

/* ------------------------------------------------------------------------
 * Re-entrancy through _event_invoke_callback() (item 6)
 */

static int nesting_cb(struct event *evt, uint32_t events)
{
	struct rec *r = (struct rec *)evt;

	(void)events;
	r->calls++;
	r->depth++;
	if (r->depth > r->max_depth)
		r->max_depth = r->depth;
	if (r->depth == 1)
		r->nested = vent_wait(evt->dsp, 0, NULL);
	r->depth--;
	return EVENTCB_CONTINUE;
}

static int loop_in_cb(struct event *evt, uint32_t events)
{
	struct rec *r = (struct rec *)evt;

	(void)events;
	r->calls++;
	r->nested = event_loop(evt->dsp, NULL, NULL);
	return EVENTCB_CONTINUE;
}

static void test_invoke_callback_not_reentrant(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct rec r;

	(void)state;
	assert_non_null(d);
	rec_init(&r, fd, EPOLLIN);
	r.e.callback = nesting_cb;
	assert_int_equal(event_add(d, &r.e), 0);
	put(fd); /* readable: a nested wait would run the callback again */
	_event_invoke_callback(&r.e, REASON_EVENT_OCCURED, EPOLLIN, true);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.max_depth, 1);
	assert_int_equal(r.nested, -EBUSY);
	/* event_loop() too. */
	r.e.callback = loop_in_cb;
	_event_invoke_callback(&r.e, REASON_EVENT_OCCURED, EPOLLIN, true);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.nested, -EBUSY);
	/* Afterwards the dispatcher waits normally. */
	r.e.callback = rec_cb;
	r.drain = 1;
	assert_int_equal(vent_wait(d, long_ms(), NULL), 1);
	assert_int_equal(r.calls, 3);
	assert_int_equal(event_remove(&r.e), 0);
	free_dispatcher(d);
	close(fd);
}

/* ------------------------------------------------------------------------
 * evt->fd changed while registered (item 9)
 */

/* The number of fds the kernel has in epoll set @epfd. */
static int epoll_set_size(int epfd)
{
	char path[64], line[256];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "tfd:", 4) == 0)
			n++;
	fclose(f);
	return n;
}

static void test_fd_changed_while_added(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct rec r, s;

	(void)state;
	assert_non_null(d);
	const int base = epoll_set_size(dispatcher_inner_epfd(d));
	rec_init(&r, a, EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_inner_epfd(d)), base + 1);

	/* event_modify() reports the misuse and changes nothing. */
	r.e.fd = b;
	assert_int_equal(event_modify(&r.e), -EINVAL);
	assert_int_equal(epoll_set_size(dispatcher_inner_epfd(d)), base + 1);
	r.e.ep.events = EPOLLOUT;
	assert_int_equal(event_modify(&r.e), -EINVAL);

	/* event_remove() unregisters what was registered: fd a. */
	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_inner_epfd(d)), base);
	put(a);
	assert_int_equal(vent_wait(d, 0, NULL), 0);
	/* Both numbers are free for other events. */
	rec_init(&s, a, EPOLLIN);
	s.drain = 1;
	assert_int_equal(event_add(d, &s.e), 0);
	assert_int_equal(vent_wait(d, long_ms(), NULL), 1);
	assert_int_equal(event_remove(&s.e), 0);
	rec_init(&s, b, EPOLLIN);
	assert_int_equal(event_add(d, &s.e), 0);
	assert_int_equal(event_remove(&s.e), 0);

	/* A timer given an fd after its add, and an fd event set to -1. */
	rec_init(&r, -1, 0);
	r.e.tmo.tv_sec = 100;
	assert_int_equal(event_add(d, &r.e), 0);
	r.e.fd = a;
	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_inner_epfd(d)), base);
	rec_init(&r, a, EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	r.e.fd = -1;
	assert_int_equal(event_modify(&r.e), -EINVAL);
	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_inner_epfd(d)), base);

	/* Teardown too: cleanup_dispatcher() unregisters fd a, not b. */
	rec_init(&r, a, EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	r.e.fd = b;
	assert_int_equal(cleanup_dispatcher(d), 0);
	assert_int_equal(epoll_set_size(dispatcher_inner_epfd(d)), base);
	free_dispatcher(d);
	close(a);
	close(b);
}

/* ------------------------------------------------------------------------
 * The orphan purge under an embedding loop (item 4)
 */

/*
 * Leaves an orphaned registration in @d: an fd closed before its removal
 * while a duplicate (returned) keeps the file open, then made readable so
 * that it reports. Returns the duplicate; *@wr is the write end.
 */
static int make_orphan(struct dispatcher *d, int *wr)
{
	int p[2];
	struct rec r;

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	int keep = dup(p[0]);
	assert_true(keep >= 0);
	rec_init(&r, p[0], EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	close(p[0]);
	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	*wr = p[1];
	return keep;
}

static void test_embedded_purge_outer_epoll(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	int outer = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN }, got;

	(void)state;
	assert_non_null(d);
	const int efd = dispatcher_get_efd(d);
	assert_true(efd >= 0);
	assert_int_equal(epoll_ctl(outer, EPOLL_CTL_ADD, efd, &ev), 0);

	int wr, keep = make_orphan(d, &wr);
	/* The orphan wakes the outer loop; vent_wait() purges it. */
	assert_int_equal(epoll_wait(outer, &got, 1, long_ms()), 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(vent_wait(d, 0, NULL), 0);
	assert_int_equal(epoll_wait(outer, &got, 1, 0), 0);
	assert_int_equal(dispatcher_get_efd(d), efd);

	/* The outer loop still sees the dispatcher: an event and a timeout. */
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct rec r;

	rec_init(&r, fd, EPOLLIN);
	r.drain = 1;
	assert_int_equal(event_add(d, &r.e), 0);
	put(fd);
	assert_int_equal(epoll_wait(outer, &got, 1, long_ms()), 1);
	assert_int_equal(vent_wait(d, 0, NULL), 1);
	assert_int_equal(r.calls, 1);
	struct timespec soon = { 0, 1000000 };
	assert_int_equal(event_mod_timeout(&r.e, &soon), 0);
	assert_int_equal(epoll_wait(outer, &got, 1, long_ms()), 1);
	assert_int_equal(vent_wait(d, 0, NULL), 1);
	assert_int_equal(r.calls, 2);
	/* And a wake. */
	assert_int_equal(vent_dispatcher_wake(d), 0);
	assert_int_equal(epoll_wait(outer, &got, 1, long_ms()), 1);
	assert_int_equal(vent_wait(d, 0, NULL), 0);

	assert_int_equal(event_remove(&r.e), 0);
	free_dispatcher(d);
	close(outer);
	close(fd);
	close(keep);
	close(wr);
}

/* The first dispatcher_get_efd() opens an fd: -EMFILE when none is left. */
static void test_get_efd_emfile(void **state)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	struct rlimit old, low;

	(void)state;
	assert_non_null(d);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* Every fd number below the limit in use: fill the gaps first. */
	low = old;
	low.rlim_cur = (rlim_t)fd_count() + 8;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int fill[16], n = 0;
	while (n < 16 && (fill[n] = dup(0)) >= 0)
		n++;
	assert_true(n < 16);
	assert_int_equal(dispatcher_get_efd(d), -EMFILE);
	while (n > 0)
		close(fill[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_true(dispatcher_get_efd(d) >= 0);
	free_dispatcher(d);
}

/* A vent dispatcher nested in another: the inner one's purge. */
static struct dispatcher *inner_dsp;

static int inner_cb(struct event *evt, uint32_t events)
{
	struct rec *r = (struct rec *)evt;

	(void)events;
	r->calls++;
	r->nested = vent_wait(inner_dsp, 0, NULL);
	return EVENTCB_CONTINUE;
}

static void test_nested_dispatcher_purge(void **state)
{
	struct dispatcher *outer = new_dispatcher(CLOCK_MONOTONIC);
	struct dispatcher *inner = new_dispatcher(CLOCK_MONOTONIC);
	struct rec link, r;

	(void)state;
	assert_non_null(outer);
	assert_non_null(inner);
	rec_init(&link, dispatcher_get_efd(inner), EPOLLIN);
	link.e.callback = inner_cb;
	inner_dsp = inner;
	assert_int_equal(event_add(outer, &link.e), 0);

	int wr, keep = make_orphan(inner, &wr);
	assert_int_equal(vent_wait(outer, long_ms(), NULL), 1);
	assert_int_equal(link.nested, 0);
	for (int i = 0; i < 3; i++)
		vent_wait(outer, 0, NULL);
	link.calls = 0;

	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rec_init(&r, fd, EPOLLIN);
	r.drain = 1;
	assert_int_equal(event_add(inner, &r.e), 0);
	put(fd);
	assert_int_equal(vent_wait(outer, long_ms(), NULL), 1);
	assert_int_equal(link.calls, 1);
	assert_int_equal(link.nested, 1);
	assert_int_equal(r.calls, 1);

	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(event_remove(&link.e), 0);
	free_dispatcher(inner);
	free_dispatcher(outer);
	close(fd);
	close(keep);
	close(wr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_wake_stop_threads),
		CASE(test_wake_from_signal_handler),
		CASE(test_oneshot_rearm),
		CASE(test_edge_triggered_recheck),
		CASE(test_invoke_callback_not_reentrant),
		CASE(test_fd_changed_while_added),
		CASE(test_embedded_purge_outer_epoll),
		CASE(test_get_efd_emfile),
		CASE(test_nested_dispatcher_purge),
	};

	return cmocka_run_group_tests_name("reliability", tests, NULL, NULL);
}
