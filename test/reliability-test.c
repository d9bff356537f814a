/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reliability-test.c - the core under adversarial use: wakeups and stops
 * from many threads and a signal handler, oneshot and edge-triggered re-arm
 * through event_modify(), an orphan purge under an embedding loop, clocks
 * that cannot be read, re-entrancy through _event_invoke_callback(), and
 * evt->fd changed while registered.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <vent/event.h>

#include "core-util.h"
#include "nop-util.h"

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
	int64_t end = mono_ns() + 20 * NS_PER_S * slowdown();

	while (!atomic_load(&l->done)) {
		if (mono_ns() > end)
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
		int64_t end = mono_ns() + 20 * NS_PER_MS;
		while (mono_ns() < end) {
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
	int drain;  /* read the fd empty in the callback */
	int nested; /* vent_wait(dsp, 0) from the callback: its result */
	int depth;
	int max_depth;
};

static int rec_cb(struct event *evt, uint32_t events)
{
	struct rec *r = (struct rec *)evt;

	(void)events;
	r->calls++;
	if (r->drain) {
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
	const int base = epoll_set_size(dispatcher_get_efd(d));
	rec_init(&r, a, EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_get_efd(d)), base + 1);

	/* event_modify() reports the misuse and changes nothing. */
	r.e.fd = b;
	assert_int_equal(event_modify(&r.e), -EINVAL);
	assert_int_equal(epoll_set_size(dispatcher_get_efd(d)), base + 1);
	r.e.ep.events = EPOLLOUT;
	assert_int_equal(event_modify(&r.e), -EINVAL);

	/* event_remove() unregisters what was registered: fd a. */
	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_get_efd(d)), base);
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
	assert_int_equal(epoll_set_size(dispatcher_get_efd(d)), base);
	rec_init(&r, a, EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	r.e.fd = -1;
	assert_int_equal(event_modify(&r.e), -EINVAL);
	assert_int_equal(event_remove(&r.e), 0);
	assert_int_equal(epoll_set_size(dispatcher_get_efd(d)), base);

	/* Teardown too: cleanup_dispatcher() unregisters fd a, not b. */
	rec_init(&r, a, EPOLLIN);
	assert_int_equal(event_add(d, &r.e), 0);
	r.e.fd = b;
	assert_int_equal(cleanup_dispatcher(d), 0);
	assert_int_equal(epoll_set_size(dispatcher_get_efd(d)), base);
	free_dispatcher(d);
	close(a);
	close(b);
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
	};

	return cmocka_run_group_tests_name("reliability", tests, NULL, NULL);
}
