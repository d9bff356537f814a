/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * loop-test.c - loop control: vent_wait() bounds and counts,
 * vent_loop_stop() from threads and signal handlers, vent_dispatcher_wake(),
 * embedding in a foreign poll() loop, vent_version(), error codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include <vent/event.h>
#include <vent/version.h>

#include "util/case.h"

#define MS 1000000LL

static int ncalls;

static int count_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	ncalls++;
	return EVENTCB_CONTINUE;
}

static int drain_cb(struct event *evt, uint32_t events)
{
	char buf[64];

	(void)events;
	ncalls++;
	while (read(evt->fd, buf, sizeof(buf)) > 0)
		;
	return EVENTCB_CONTINUE;
}

static void test_loop_wait_zero_never_blocks(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event later = TIMER_EVENT_ON_STACK(count_cb, 10000000); /* 10 s */
	int p[2];

	(void)state;
	ncalls = 0;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	struct event rd = EVENT_ON_STACK(drain_cb, p[0], EPOLLIN);
	assert_int_equal(event_add(dsp, &later), 0);
	assert_int_equal(event_add(dsp, &rd), 0);
	int64_t t0 = now_ns();
	for (int i = 0; i < 100; i++)
		assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	/* 100 polls: far below the 10 s timer (generous bound). */
	assert_true(now_ns() - t0 < 5000 * MS);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(vent_wait(dsp, 0, NULL), 1);
	assert_int_equal(ncalls, 1);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	free_dispatcher(dsp); /* closes p[0] */
	close(p[1]);
}

static void test_loop_wait_bounded(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);

	(void)state;
	int64_t t0 = now_ns();
	assert_int_equal(vent_wait(dsp, 50, NULL), 0);
	int64_t dt = now_ns() - t0;
	assert_true(dt >= 50 * MS);
	assert_true(dt < 10000 * MS);
	free_dispatcher(dsp);
}

static void test_loop_wait_counts_callbacks(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event t[3] = {
		TIMER_EVENT_ON_STACK(count_cb, 0),
		TIMER_EVENT_ON_STACK(count_cb, 0),
		TIMER_EVENT_ON_STACK(count_cb, 0),
	};

	(void)state;
	ncalls = 0;
	for (int i = 0; i < 3; i++)
		assert_int_equal(event_add(dsp, &t[i]), 0);
	int n = 0;
	while (n < 3) {
		int rc = vent_wait(dsp, 5000, NULL);
		assert_true(rc > 0);
		n += rc;
	}
	assert_int_equal(n, 3);
	assert_int_equal(ncalls, 3);
	free_dispatcher(dsp);
}

struct delayed {
	struct dispatcher *dsp;
	int ms;
	int (*fn)(struct dispatcher *);
	int rc;
};

static void *delayed_call(void *arg)
{
	struct delayed *d = arg;

	sleep_ms(d->ms);
	d->rc = d->fn(d->dsp);
	return NULL;
}

static void test_loop_stop_from_thread(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct delayed d = { dsp, 50, vent_loop_stop, -1 };
	pthread_t t;

	(void)state;
	int64_t t0 = now_ns();
	assert_int_equal(pthread_create(&t, NULL, delayed_call, &d), 0);
	assert_int_equal(event_loop(dsp, NULL, NULL), 0);
	assert_true(now_ns() - t0 >= 50 * MS);
	pthread_join(t, NULL);
	assert_int_equal(d.rc, 0);
	free_dispatcher(dsp);
}

static struct dispatcher *sig_dsp;
static volatile sig_atomic_t sig_rc = 1;

static void stop_handler(int sig)
{
	(void)sig;
	sig_rc = vent_loop_stop(sig_dsp);
}

static void test_loop_stop_from_signal_handler(void **state)
{
	struct sigaction sa = { .sa_handler = stop_handler }, old;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { { 0, 0 }, { 0, 50 * MS } };
	timer_t timer;

	(void)state;
	sig_dsp = new_dispatcher(CLOCK_MONOTONIC);
	sig_rc = 1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
	assert_int_equal(timer_settime(timer, 0, &its, NULL), 0);
	/* No error handler: an EINTR would be returned, but the stop wins. */
	assert_int_equal(event_loop(sig_dsp, NULL, NULL), 0);
	assert_int_equal(sig_rc, 0);
	timer_delete(timer);
	sigaction(SIGUSR1, &old, NULL);
	free_dispatcher(sig_dsp);
}

static void test_loop_stop_before_loop(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);

	(void)state;
	assert_int_equal(vent_loop_stop(dsp), 0);
	assert_int_equal(event_loop(dsp, NULL, NULL), 0);
	free_dispatcher(dsp);
}

static int stop_cb(struct event *evt, uint32_t events)
{
	(void)events;
	ncalls++;
	assert_int_equal(vent_loop_stop(evt->dsp), 0);
	return EVENTCB_CONTINUE;
}

static void test_loop_stop_from_callback(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event t = TIMER_EVENT_ON_STACK(stop_cb, 1000);

	(void)state;
	ncalls = 0;
	assert_int_equal(event_add(dsp, &t), 0);
	assert_int_equal(event_loop(dsp, NULL, NULL), 0);
	assert_int_equal(ncalls, 1);
	free_dispatcher(dsp);
}

static void test_loop_wake_interrupts_wait(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct delayed d = { dsp, 50, vent_dispatcher_wake, -1 };
	pthread_t t;

	(void)state;
	int64_t t0 = now_ns();
	assert_int_equal(pthread_create(&t, NULL, delayed_call, &d), 0);
	/* Blocks forever unless woken: the case's alarm is the bound. */
	assert_int_equal(vent_wait(dsp, -1, NULL), 0);
	assert_true(now_ns() - t0 >= 50 * MS);
	pthread_join(t, NULL);
	assert_int_equal(d.rc, 0);

	/* event_wait() too. */
	d.rc = -1;
	assert_int_equal(pthread_create(&t, NULL, delayed_call, &d), 0);
	assert_int_equal(event_wait(dsp, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(d.rc, 0);

	/* A wake before the wait is not lost; wakes coalesce. */
	assert_int_equal(vent_dispatcher_wake(dsp), 0);
	assert_int_equal(vent_dispatcher_wake(dsp), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 0);
	t0 = now_ns();
	assert_int_equal(vent_wait(dsp, 50, NULL), 0);
	assert_true(now_ns() - t0 >= 50 * MS);
	free_dispatcher(dsp);
}

static int fired_timer, fired_fd, fired_late;

static int embed_timer(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	fired_timer++;
	return EVENTCB_CONTINUE;
}

static int embed_late(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	fired_late++;
	return EVENTCB_CONTINUE;
}

static int embed_fd(struct event *evt, uint32_t events)
{
	char c;

	(void)events;
	fired_fd++;
	assert_int_equal(read(evt->fd, &c, 1), 1);
	return EVENTCB_CONTINUE;
}

/* A foreign loop: poll() on the dispatcher's fd and on a fd of its own. */
static void test_loop_embed_foreign_poll(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event timer = TIMER_EVENT_ON_STACK(embed_timer, 30000); /* 30 ms */
	struct event late = TIMER_EVENT_ON_STACK(embed_late, 20000);
	int p[2], own[2], own_seen = 0;

	(void)state;
	fired_timer = fired_fd = fired_late = 0;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(pipe2(own, O_CLOEXEC | O_NONBLOCK), 0);
	struct event rd = EVENT_ON_STACK(embed_fd, p[0], EPOLLIN);
	/* Before the add: the deadline counts from inside event_add(). */
	int64_t t0 = now_ns();
	assert_int_equal(event_add(dsp, &timer), 0);
	assert_int_equal(event_add(dsp, &rd), 0);
	assert_int_equal(write(p[1], "a", 1), 1);
	assert_int_equal(write(own[1], "b", 1), 1);

	struct pollfd pfd[2] = {
		{ .fd = dispatcher_get_efd(dsp), .events = POLLIN },
		{ .fd = own[0], .events = POLLIN },
	};
	while (fired_timer == 0 || fired_fd == 0 || own_seen == 0) {
		/* Never times out: the epoll fd must become readable. */
		int n = poll(pfd, 2, 10000);
		assert_true(n > 0);
		if (pfd[1].revents & POLLIN) {
			char c;
			assert_int_equal(read(own[0], &c, 1), 1);
			own_seen++;
		}
		if (pfd[0].revents & POLLIN)
			assert_true(vent_wait(dsp, 0, NULL) >= 0);
	}
	assert_true(now_ns() - t0 >= 30 * MS);
	assert_int_equal(fired_fd, 1);
	assert_int_equal(fired_timer, 1);

	/* A timer added between two polls (outside any wait) is seen too. */
	t0 = now_ns();
	assert_int_equal(event_add(dsp, &late), 0);
	while (fired_late == 0) {
		int n = poll(pfd, 1, 10000);
		assert_int_equal(n, 1);
		assert_true(vent_wait(dsp, 0, NULL) >= 0);
	}
	assert_true(now_ns() - t0 >= 20 * MS);
	assert_int_equal(fired_timer, 1);
	assert_int_equal(fired_fd, 1);
	free_dispatcher(dsp);
	close(p[1]);
	close(own[0]);
	close(own[1]);
}

static int nested_rc;

static int nested_cb(struct event *evt, uint32_t events)
{
	(void)events;
	nested_rc = vent_wait(evt->dsp, 0, NULL);
	return EVENTCB_CONTINUE;
}

static struct dispatcher *teardown_dsp;

static void nested_cleanup(struct event *evt)
{
	(void)evt;
	nested_rc = vent_wait(teardown_dsp, 0, NULL);
}

static void noop_handler(int sig)
{
	(void)sig;
}

static void test_loop_errors(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event t = TIMER_EVENT_ON_STACK(nested_cb, 0);
	struct event c = TIMER_EVENT_ON_STACK(nested_cb, 10000000);

	(void)state;
	assert_int_equal(vent_wait(NULL, 0, NULL), -EINVAL);
	assert_int_equal(vent_wait(dsp, -2, NULL), -EINVAL);
	assert_int_equal(vent_loop_stop(NULL), -EINVAL);
	assert_int_equal(vent_dispatcher_wake(NULL), -EINVAL);

	/* From a callback: nested wait. */
	nested_rc = 1;
	assert_int_equal(event_add(dsp, &t), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(nested_rc, -EBUSY);

	/* During teardown (from a cleanup callback). */
	nested_rc = 1;
	teardown_dsp = dsp;
	c.cleanup = nested_cleanup;
	assert_int_equal(event_add(dsp, &c), 0);
	assert_int_equal(cleanup_dispatcher(dsp), 0);
	assert_int_equal(nested_rc, -EBUSY);

	/* Interrupted by a signal with a handler. */
	struct sigaction sa = { .sa_handler = noop_handler }, old;
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	struct itimerspec its = { { 0, 0 }, { 0, 20 * MS } };
	timer_t timer;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, &old);
	assert_int_equal(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
	assert_int_equal(timer_settime(timer, 0, &its, NULL), 0);
	assert_int_equal(vent_wait(dsp, -1, NULL), -EINTR);
	timer_delete(timer);
	sigaction(SIGUSR2, &old, NULL);

	/* In a forked child. */
	pid_t pid = fork();
	if (pid == 0) {
		int ok = vent_wait(dsp, 0, NULL) == -ECHILD && vent_loop_stop(dsp) == -ECHILD &&
			 vent_dispatcher_wake(dsp) == -ECHILD;
		free_dispatcher(dsp);
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent's dispatcher is unharmed. */
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	free_dispatcher(dsp);
}

static void test_loop_version(void **state)
{
	(void)state;
	assert_non_null(vent_version());
	assert_string_equal(vent_version(), VENT_VERSION_STRING);
	assert_ptr_equal(vent_version(), vent_version());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_loop_wait_zero_never_blocks),
		CASE(test_loop_wait_bounded),
		CASE(test_loop_wait_counts_callbacks),
		CASE(test_loop_stop_from_thread),
		CASE(test_loop_stop_from_signal_handler),
		CASE(test_loop_stop_before_loop),
		CASE(test_loop_stop_from_callback),
		CASE(test_loop_wake_interrupts_wait),
		CASE(test_loop_embed_foreign_poll),
		CASE(test_loop_errors),
		CASE(test_loop_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
