/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rebuild-test.c - reproducer found by the API fuzzer (issue 7).
 *
 * Event A's fd is closed while A is still added (no dup: the kernel drops
 * the registration). The number is reused by an unrelated pipe that vent
 * does not watch yet. Then an orphaned registration elsewhere makes the
 * dispatcher rebuild its epoll set: the rebuild re-registers every fd number
 * in its owner table, including A's stale number, which now names the new
 * pipe. Result: A gets callbacks for a file it never watched, and adding the
 * new pipe's own event fails with -EEXIST.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include <vent/event.h>

#include "../util/case.h"

static int a_calls, b_calls;

static int count_a(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	a_calls++;
	return EVENTCB_CONTINUE;
}

static int count_b(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	b_calls++;
	return EVENTCB_CONTINUE;
}

static void test_harden_rebuild_reused_fd_number(void **state)
{
	(void)state;
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	assert_non_null(d);
	int p1[2], p2[2], p3[2];
	assert_int_equal(pipe2(p1, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(pipe2(p2, O_CLOEXEC | O_NONBLOCK), 0);

	struct event a = __EVENT_INIT(count_a, NULL, p1[0], EPOLLIN, 0, 0);
	struct event c = __EVENT_INIT(count_a, NULL, p2[0], EPOLLIN, 0, 0);
	assert_int_equal(event_add(d, &a), 0);
	assert_int_equal(event_add(d, &c), 0);

	/* C: closed before removed while a dup keeps the file: an orphan. */
	int keep = dup(p2[0]);
	assert_true(keep >= 0);
	close(p2[0]);
	assert_int_equal(event_remove(&c), 0);
	assert_int_equal(write(p2[1], "x", 1), 1);

	/* A: closed while still added; its number goes to a new pipe. */
	int stale = p1[0];
	close(p1[0]);
	assert_int_equal(pipe2(p3, O_CLOEXEC | O_NONBLOCK), 0);
	if (p3[0] != stale) {
		/* Make the new pipe's read end take A's old number. */
		assert_int_equal(dup3(p3[0], stale, O_CLOEXEC), stale);
		close(p3[0]);
		p3[0] = stale;
	}

	/* The orphan reports: vent rebuilds its epoll set. */
	assert_true(vent_wait(d, 0, NULL) >= 0);

	/* Readiness of the new pipe must not reach A, and the new pipe's
	 * own event must be addable. */
	assert_int_equal(write(p3[1], "y", 1), 1);
	a_calls = 0;
	assert_true(vent_wait(d, 0, NULL) >= 0);
	assert_int_equal(a_calls, 0);
	struct event b = __EVENT_INIT(count_b, NULL, p3[0], EPOLLIN, 0, 0);
	assert_int_equal(event_add(d, &b), 0);
	assert_true(vent_wait(d, 0, NULL) >= 0);
	assert_int_equal(b_calls, 1);

	event_remove(&a);
	event_remove(&b);
	free_dispatcher(d);
	close(keep);
	close(p1[1]);
	close(p2[1]);
	close(p3[0]);
	close(p3[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_harden_rebuild_reused_fd_number),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
