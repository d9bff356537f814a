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

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_wake_stop_threads),
		CASE(test_wake_from_signal_handler),
	};

	return cmocka_run_group_tests_name("reliability", tests, NULL, NULL);
}
