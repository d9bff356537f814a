// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ffi-test.c - the C side of vent/ffi.h: heap events, accessors, error
 * codes. The Python and Perl tests (test/ffi/) drive the same functions
 * through dlopen(); this program runs them under ASan and valgrind.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/ffi.h>

#include "util/case.h"
#include "util/nop.h"

struct fixture {
	struct dispatcher *dsp;
	int pipefd[2];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	case_begin();
	f->dsp = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(f->dsp);
	assert_int_equal(pipe2(f->pipefd, O_CLOEXEC | O_NONBLOCK), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free_dispatcher(f->dsp);
	if (f->pipefd[0] >= 0)
		close(f->pipefd[0]);
	if (f->pipefd[1] >= 0)
		close(f->pipefd[1]);
	free(f);
	case_end();
	return 0;
}

/* What the callbacks saw; the callback's return value comes from ->ret. */
struct record {
	int calls;
	int reason;
	uint32_t events;
	int ret;
	int free_self;
	int rearm_ms;
	int64_t when;
};

static int record_cb(struct event *evt, uint32_t events)
{
	struct record *r = vent_event_userdata(evt);

	r->calls++;
	r->reason = vent_event_reason(evt);
	r->events = events;
	r->when = now_ms();
	if (r->free_self) {
		assert_int_equal(vent_event_free(evt), 0);
		return EVENTCB_CONTINUE; /* ignored: the event was removed */
	}
	if (r->rearm_ms)
		assert_int_equal(vent_event_set_timeout_ms(evt, r->rearm_ms), 0);
	return r->ret;
}

static void drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void test_ffi_new_fields(void **state)
{
	struct fixture *f = *state;
	struct record r = { 0 };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_ptr_equal(vent_event_userdata(evt), &r);
	assert_int_equal(vent_event_fd(evt), f->pipefd[0]);
	assert_int_equal(vent_event_reason(evt), REASON_EVENT_OCCURED);
	assert_int_equal(evt->ep.events, EPOLLIN);
	assert_null(evt->dsp);
	assert_int_equal(evt->tmo.tv_sec, 0);
	assert_int_equal(evt->tmo.tv_nsec, 0);
	assert_int_equal(vent_event_free(evt), 0);

	evt = vent_event_new(-1, 0, record_cb, NULL);
	assert_non_null(evt);
	assert_int_equal(vent_event_fd(evt), -1);
	assert_null(vent_event_userdata(evt));
	assert_int_equal(vent_event_free(evt), 0);

	assert_int_equal(vent_event_sizeof(), sizeof(struct event));
}

static void test_ffi_new_einval(void **state)
{
	(void)state;
	errno = 0;
	assert_null(vent_event_new(0, EPOLLIN, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(vent_event_new(-2, EPOLLIN, record_cb, NULL));
	assert_int_equal(errno, EINVAL);
}

static void test_ffi_null_args(void **state)
{
	(void)state;
	assert_int_equal(vent_event_free(NULL), 0);
	assert_null(vent_event_userdata(NULL));
	assert_int_equal(vent_event_fd(NULL), -EINVAL);
	assert_int_equal(vent_event_reason(NULL), -EINVAL);
	assert_int_equal(vent_event_set_events(NULL, EPOLLIN), -EINVAL);
	assert_int_equal(vent_event_set_timeout_ms(NULL, 1), -EINVAL);
}

/* Readiness: reason, mask; EVENTCB_CLEANUP frees without closing the fd. */
static void test_ffi_pipe_cleanup_keeps_fd(void **state)
{
	struct fixture *f = *state;
	struct record r = { .ret = EVENTCB_CLEANUP };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_int_equal(event_add(f->dsp, evt), 0);
	assert_int_equal(event_add(f->dsp, evt), -EEXIST);
	assert_int_equal(vent_wait(f->dsp, 0, NULL), 0);
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.reason, REASON_EVENT_OCCURED);
	assert_true(r.events & EPOLLIN);
	/* The cleanup freed the event (ASan/valgrind see a leak otherwise)
	 * and left the fd open. */
	assert_true(fcntl(f->pipefd[0], F_GETFD) >= 0);
	assert_int_equal(vent_wait(f->dsp, 0, NULL), 0);
	assert_int_equal(r.calls, 1);
}

/* Timeouts set before event_add() count from the add; never early. */
static void test_ffi_timeout_before_add(void **state)
{
	struct fixture *f = *state;
	struct record r = { .ret = EVENTCB_REMOVE };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);
	int64_t start;

	assert_non_null(evt);
	evt->flags = TMO_ABS;
	assert_int_equal(vent_event_set_timeout_ms(evt, 1500), 0);
	assert_int_equal(evt->flags & TMO_ABS, 0);
	assert_int_equal(evt->tmo.tv_sec, 1);
	assert_int_equal(evt->tmo.tv_nsec, 500000000);
	assert_int_equal(vent_event_set_timeout_ms(evt, 30), 0);
	start = now_ms();
	assert_int_equal(event_add(f->dsp, evt), 0);
	while (r.calls == 0)
		assert_true(vent_wait(f->dsp, -1, NULL) >= 0);
	assert_int_equal(r.reason, REASON_TIMEOUT);
	assert_int_equal(r.events, 0);
	assert_true(r.when - start >= 30);
	assert_null(evt->dsp);
	assert_int_equal(vent_event_free(evt), 0);
}

/* Re-arming from the callback makes a periodic timer; 0 cancels. */
static void test_ffi_timeout_rearm_and_cancel(void **state)
{
	struct fixture *f = *state;
	struct record r = { .ret = EVENTCB_CONTINUE, .rearm_ms = 1 };
	struct record c = { .ret = EVENTCB_CONTINUE };
	struct event *tim = vent_event_new(-1, 0, record_cb, &r);
	struct event *cancelled = vent_event_new(-1, 0, record_cb, &c);

	assert_non_null(tim);
	assert_non_null(cancelled);
	assert_int_equal(vent_event_set_timeout_ms(tim, 1), 0);
	assert_int_equal(event_add(f->dsp, tim), 0);
	assert_int_equal(event_add(f->dsp, cancelled), 0);
	assert_int_equal(vent_event_set_timeout_ms(cancelled, 20), 0);
	assert_int_equal(vent_event_set_timeout_ms(cancelled, 0), 0);
	assert_int_equal(vent_event_set_timeout_ms(cancelled, -1), -EINVAL);
	while (r.calls < 3)
		assert_true(vent_wait(f->dsp, -1, NULL) >= 0);
	assert_int_equal(r.reason, REASON_TIMEOUT);
	/* Let 'cancelled' overstay its old deadline: it must stay silent. */
	r.rearm_ms = 0;
	assert_int_equal(vent_event_set_timeout_ms(tim, 60), 0);
	while (r.calls < 4)
		assert_true(vent_wait(f->dsp, -1, NULL) >= 0);
	assert_int_equal(c.calls, 0);
	/* A huge value means "never", not an overflow. */
	assert_int_equal(vent_event_set_timeout_ms(tim, INT64_MAX), 0);
	assert_int_equal(vent_wait(f->dsp, 0, NULL), 0);
	assert_int_equal(vent_event_free(tim), 0);
	assert_int_equal(vent_event_free(cancelled), 0);
}

/* set_events: 0 silences the fd, the mask comes back, the struct follows. */
static void test_ffi_set_events(void **state)
{
	struct fixture *f = *state;
	struct record r = { .ret = EVENTCB_CONTINUE };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_int_equal(vent_event_set_events(evt, 0), 0); /* not added */
	assert_int_equal(evt->ep.events, 0);
	assert_int_equal(event_add(f->dsp, evt), 0);
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	close(f->pipefd[1]); /* hang-up too: still silent */
	f->pipefd[1] = -1;
	assert_int_equal(vent_wait(f->dsp, 50, NULL), 0);
	assert_int_equal(r.calls, 0);
	assert_int_equal(vent_event_set_events(evt, EPOLLIN), 0);
	assert_int_equal(evt->ep.events, EPOLLIN);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(r.calls, 1);
	assert_true(r.events & EPOLLIN);
	assert_int_equal(vent_event_free(evt), 0);
}

/* epoll refuses EPOLLEXCLUSIVE on a modification: mask restored. */
static void test_ffi_set_events_einval(void **state)
{
	struct fixture *f = *state;
	struct record r = { 0 };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_int_equal(event_add(f->dsp, evt), 0);
	assert_int_equal(vent_event_set_events(evt, EPOLLIN | EPOLLEXCLUSIVE), -EINVAL);
	assert_int_equal(evt->ep.events, EPOLLIN);
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(vent_event_free(evt), 0);
}

/* Closed fd (no duplicate): -EBADF, mask restored. */
static void test_ffi_set_events_ebadf(void **state)
{
	struct fixture *f = *state;
	struct record r = { 0 };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_int_equal(event_add(f->dsp, evt), 0);
	close(f->pipefd[0]);
	f->pipefd[0] = -1;
	assert_int_equal(vent_event_set_events(evt, EPOLLIN | EPOLLOUT), -EBADF);
	assert_int_equal(evt->ep.events, EPOLLIN);
	assert_int_equal(vent_event_free(evt), 0);
}

/* Re-enabling an fd that another event took meanwhile: -EEXIST. */
static void test_ffi_set_events_eexist(void **state)
{
	struct fixture *f = *state;
	struct record ra = { 0 }, rb = { 0 };
	struct event *a = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &ra);
	struct event *b = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &rb);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(event_add(f->dsp, a), 0);
	assert_int_equal(event_add(f->dsp, b), -EEXIST);
	assert_int_equal(vent_event_set_events(a, 0), 0);
	assert_int_equal(event_add(f->dsp, b), 0);
	assert_int_equal(vent_event_set_events(a, EPOLLIN), -EEXIST);
	assert_int_equal(a->ep.events, 0);
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(ra.calls, 0);
	assert_int_equal(rb.calls, 1);
	assert_int_equal(vent_event_free(a), 0);
	assert_int_equal(vent_event_free(b), 0);
}

/* vent_event_free() removes an added event; the fd can be reused. */
static void test_ffi_free_removes(void **state)
{
	struct fixture *f = *state;
	struct record r = { 0 };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_int_equal(vent_event_set_timeout_ms(evt, 10), 0);
	assert_int_equal(event_add(f->dsp, evt), 0);
	assert_int_equal(vent_event_free(evt), 0);
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	assert_int_equal(vent_wait(f->dsp, 50, NULL), 0);
	assert_int_equal(r.calls, 0);
	evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);
	assert_non_null(evt);
	assert_int_equal(event_add(f->dsp, evt), 0);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(vent_event_free(evt), 0);
}

/* vent_event_free() from the event's own callback. */
static void test_ffi_free_in_callback(void **state)
{
	struct fixture *f = *state;
	struct record r = { .free_self = 1 };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);

	assert_non_null(evt);
	assert_int_equal(vent_event_set_timeout_ms(evt, 1), 0);
	assert_int_equal(event_add(f->dsp, evt), 0);
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(r.calls, 1);
	/* The timeout died with the event. */
	assert_int_equal(vent_wait(f->dsp, 30, NULL), 0);
	assert_int_equal(r.calls, 1);
	drain(f->pipefd[0]);
}

/* free_dispatcher()/cleanup_dispatcher() run the default cleanup, which
 * frees (the leak checkers verify it) and keeps the fd open. */
static void test_ffi_dispatcher_cleanup_frees(void **state)
{
	struct fixture *f = *state;
	struct record r = { 0 };
	struct event *a = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);
	struct event *b = vent_event_new(-1, 0, record_cb, &r);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(vent_event_set_timeout_ms(b, 100000), 0);
	assert_int_equal(event_add(f->dsp, a), 0);
	assert_int_equal(event_add(f->dsp, b), 0);
	assert_int_equal(cleanup_dispatcher(f->dsp), 0);
	assert_true(fcntl(f->pipefd[0], F_GETFD) >= 0);
	a = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);
	assert_non_null(a);
	assert_int_equal(event_add(f->dsp, a), 0);
	/* teardown's free_dispatcher() frees a */
	assert_int_equal(r.calls, 0);
}

/* A cleanup callback running during teardown gets -EBUSY. */
static struct event *busy_target;
static int busy_events_rc, busy_timeout_rc;

static void busy_cleanup(struct event *evt)
{
	(void)evt;
	busy_events_rc = vent_event_set_events(busy_target, EPOLLIN | EPOLLOUT);
	busy_timeout_rc = vent_event_set_timeout_ms(busy_target, 10);
}

static void test_ffi_teardown_ebusy(void **state)
{
	struct fixture *f = *state;
	/* Slots are cleaned in registration order: first's cleanup runs while
	 * target is still registered. */
	struct event first = EVENT_ON_STACK(nop_cb, -1, 0);
	struct event target = EVENT_ON_STACK(nop_cb, f->pipefd[0], EPOLLIN);

	first.cleanup = busy_cleanup;
	first.tmo.tv_sec = 100;
	target.cleanup = NULL;
	busy_target = &target;
	assert_int_equal(event_add(f->dsp, &first), 0);
	assert_int_equal(event_add(f->dsp, &target), 0);
	assert_int_equal(cleanup_dispatcher(f->dsp), 0);
	assert_int_equal(busy_events_rc, -EBUSY);
	assert_int_equal(busy_timeout_rc, -EBUSY);
	assert_int_equal(target.ep.events, EPOLLIN);
	assert_null(target.dsp);
}

/* In a forked child the calls on an inherited event fail with -ECHILD and
 * vent_event_free() leaves the memory to free_dispatcher(). */
static void test_ffi_forked_child_echild(void **state)
{
	struct fixture *f = *state;
	struct record r = { 0 };
	struct event *evt = vent_event_new(f->pipefd[0], EPOLLIN, record_cb, &r);
	int status;
	pid_t pid;

	assert_non_null(evt);
	assert_int_equal(event_add(f->dsp, evt), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = 0;

		bad |= vent_event_set_events(evt, EPOLLOUT) != -ECHILD;
		bad |= vent_event_set_timeout_ms(evt, 5) != -ECHILD;
		bad |= vent_event_free(evt) != -ECHILD;
		bad |= evt->ep.events != EPOLLIN;
		free_dispatcher(f->dsp); /* runs the cleanup: frees evt */
		_exit(bad ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent's registration is intact. */
	assert_int_equal(write(f->pipefd[1], "x", 1), 1);
	assert_int_equal(vent_wait(f->dsp, 5000, NULL), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(vent_event_free(evt), 0);
}

static void test_ffi_strerror(void **state)
{
	(void)state;
	assert_string_equal(vent_strerror(-EINVAL), "Invalid argument");
	assert_string_equal(vent_strerror(EINVAL), "Invalid argument");
	assert_string_equal(vent_strerror(-EEXIST), "File exists");
	assert_string_equal(vent_strerror(-ECHILD), "No child processes");
	assert_string_equal(vent_strerror(0), "Success");
	assert_string_equal(vent_strerror(-99999), "Unknown error");
	assert_string_equal(vent_strerror(INT_MIN), "Unknown error");
	assert_string_equal(vent_strerror(INT_MAX), "Unknown error");
	/* Static: the pointer stays the same across calls. */
	assert_ptr_equal(vent_strerror(-EBUSY), vent_strerror(-EBUSY));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ffi_new_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_new_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_null_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_pipe_cleanup_keeps_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_timeout_before_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_timeout_rearm_and_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_set_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_set_events_einval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_set_events_ebadf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_set_events_eexist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_free_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_free_in_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_dispatcher_cleanup_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_teardown_ebusy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_forked_child_echild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ffi_strerror, setup, teardown),
	};

	return cmocka_run_group_tests_name("ffi", tests, NULL, NULL);
}
