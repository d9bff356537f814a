/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wakeup-test.c - wakers (vent_wakeup_*): coalescing, many threads, a
 * signal handler, a saturated counter, error codes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <vent/event.h>
#include <vent/sources.h>

#include "util/case.h"

static uint64_t total;
static unsigned long ncalls;

static int on_wake(struct event *evt, uint32_t events)
{
	(void)events;
	ncalls++;
	total += vent_wakeup_drain(evt);
	return EVENTCB_CONTINUE;
}

static void reset(void)
{
	total = 0;
	ncalls = 0;
}

static void test_wakeup_coalesce(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event w;

	(void)state;
	reset();
	assert_int_equal(vent_wakeup_init(&w, on_wake), 0);
	assert_int_equal(w.ep.events, EPOLLIN);
	assert_ptr_equal(w.cleanup, cleanup_event_on_stack);
	assert_int_equal(event_add(dsp, &w), 0);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(vent_wakeup_signal(&w, 1), 0);
	assert_int_equal(vent_wakeup_signal(&w, 5), 0);
	/* 0 adds nothing and wakes nobody. */
	assert_int_equal(vent_wakeup_signal(&w, 0), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(ncalls, 1);
	assert_int_equal(total, 15);
	assert_int_equal(vent_wakeup_drain(&w), 0);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	assert_int_equal(vent_wakeup_signal(&w, 0), 0);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	free_dispatcher(dsp);
}

#define NTHREADS 8

static struct event tw;
static atomic_int running;
static unsigned long per_thread;

static void *signaller(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < per_thread; i++)
		if (vent_wakeup_signal(&tw, 1) != 0)
			abort();
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static void test_wakeup_threads(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	pthread_t t[NTHREADS];

	(void)state;
	reset();
	/* 100k per thread; fewer under valgrind, which runs one thread at a
	 * time and makes each syscall ~50x slower. */
	per_thread = scaled(100000, 5000);
	const uint64_t want = (uint64_t)NTHREADS * per_thread;
	assert_int_equal(vent_wakeup_init(&tw, on_wake), 0);
	assert_int_equal(event_add(dsp, &tw), 0);
	atomic_store(&running, NTHREADS);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, signaller, NULL), 0);
	/* The loop works while the threads signal. */
	while (atomic_load(&running) > 0)
		assert_true(vent_wait(dsp, 100, NULL) >= 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	/* Nothing lost after the last signal: every wait that finds the sum
	 * incomplete must have had a callback. */
	while (total < want)
		assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(total, want);
	assert_true(ncalls >= 1);
	assert_true(ncalls <= want);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	free_dispatcher(dsp);
}

static struct event hw;
static atomic_ulong handled;
static volatile sig_atomic_t handler_failed;

static void on_tick(int sig)
{
	int saved = errno;

	(void)sig;
	/* vent_wakeup_signal() must leave errno alone. */
	errno = 12345;
	if (vent_wakeup_signal(&hw, 1) != 0 || errno != 12345)
		handler_failed = 1;
	atomic_fetch_add(&handled, 1);
	errno = saved;
}

static int on_eintr(int err)
{
	return err == -EINTR ? ELOOP_CONTINUE : err;
}

static int on_stop_timer(struct event *evt, uint32_t events)
{
	(void)events;
	vent_loop_stop(evt->dsp);
	return EVENTCB_REMOVE;
}

static void test_wakeup_from_signal_handler(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct sigaction sa = { .sa_handler = on_tick }, old;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	struct itimerspec its = { { 0, 1000000 }, { 0, 1000000 } }; /* every 1 ms */
	struct event stop = TIMER_EVENT_ON_STACK(on_stop_timer, 2000000); /* 2 s */
	timer_t timer;

	(void)state;
	reset();
	atomic_store(&handled, 0);
	handler_failed = 0;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, &old);
	assert_int_equal(vent_wakeup_init(&hw, on_wake), 0);
	assert_int_equal(event_add(dsp, &hw), 0);
	assert_int_equal(event_add(dsp, &stop), 0);
	assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
	assert_int_equal(timer_settime(timer, 0, &its, NULL), 0);
	/* epoll waits are never restarted: EINTR is routine here. */
	assert_int_equal(event_loop(dsp, NULL, on_eintr), 0);
	timer_delete(timer);
	sigaction(SIGUSR2, &old, NULL);
	const unsigned long n = atomic_load(&handled);
	assert_false(handler_failed);
	assert_true(n > 0);
	assert_true(ncalls >= 1);
	while (total < n)
		assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(total, n);
	free_dispatcher(dsp);
}

static void test_wakeup_saturated(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	const uint64_t max = UINT64_MAX - 1;
	struct event w;

	(void)state;
	reset();
	assert_int_equal(vent_wakeup_init(&w, on_wake), 0);
	assert_int_equal(event_add(dsp, &w), 0);
	/* Saturate the counter behind vent's back. */
	assert_int_equal(write(w.fd, &max, sizeof(max)), sizeof(max));
	/* Never blocks, and counts as signalled. */
	assert_int_equal(vent_wakeup_signal(&w, 1), 0);
	assert_int_equal(vent_wakeup_signal(&w, UINT64_MAX), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(total, max);
	/* UINT64_MAX itself is clamped to the eventfd maximum. */
	assert_int_equal(vent_wakeup_signal(&w, UINT64_MAX), 0);
	assert_int_equal(vent_wakeup_drain(&w), max);
	free_dispatcher(dsp);
}

static void test_wakeup_errors(void **state)
{
	struct event w;

	(void)state;
	assert_int_equal(vent_wakeup_init(NULL, on_wake), -EINVAL);
	assert_int_equal(vent_wakeup_init(&w, NULL), -EINVAL);
	assert_int_equal(vent_wakeup_signal(NULL, 1), -EINVAL);
	assert_int_equal(vent_wakeup_drain(NULL), 0);
	assert_int_equal(vent_wakeup_init(&w, on_wake), 0);
	/* Released by its cleanup: the fd is gone. */
	w.cleanup(&w);
	assert_int_equal(vent_wakeup_signal(&w, 1), -EBADF);
	assert_int_equal(vent_wakeup_drain(&w), 0);
	w.fd = -1;
	assert_int_equal(vent_wakeup_signal(&w, 1), -EBADF);
	assert_int_equal(vent_wakeup_drain(&w), 0);

	/* Out of fds (in a child, with RLIMIT_NOFILE 0). */
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = 0;
		setrlimit(RLIMIT_NOFILE, &rl);
		_exit(vent_wakeup_init(&w, on_wake) == -EMFILE ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_wakeup_coalesce),
		CASE(test_wakeup_threads),
		CASE(test_wakeup_from_signal_handler),
		CASE(test_wakeup_saturated),
		CASE(test_wakeup_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
