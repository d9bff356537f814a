/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * timeout-list-test.c - what vent's timeout list (vent/timeout.h) promises
 * beyond minivent's contract (test/compat/conformance.c has that): a
 * timeout has no memory of its own, so once a list has held as many
 * timeouts, timeout_add(), timeout_modify(), timeout_cancel() and the
 * expiry path allocate nothing; and the list finds an event by its address
 * through any mix of adds, moves and cancels (checked against a model).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <vent/event.h>
#include <vent/timeout.h>

#include "util/alloc.h"
#include "util/case.h"

/* Timeouts run so far (by the list: reason REASON_TIMEOUT, no epoll mask). */
static int fired;

static int fired_cb(struct event *evt, uint32_t events)
{
	assert_int_equal(evt->reason, REASON_TIMEOUT);
	assert_int_equal(events, 0);
	fired++;
	return EVENTCB_CONTINUE;
}

static void init_events(struct event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		struct event e = {0};

		e.fd = -1;
		e.callback = fired_cb;
		ev[i] = e;
	}
}

static void set_tmo(struct event *e, int i)
{
	e->tmo.tv_sec = 100 + i % 97;
	e->tmo.tv_nsec = (i * 7919L) % 1000000000L;
}

/*
 * Warm-up: N timeouts added and cancelled. Then the same N again, moved,
 * cancelled, and N other events (other addresses): the bytes the process
 * holds do not change, while they are listed or after.
 */
static void test_no_allocation_after_warm_up(void **state)
{
	enum { N = 4096 };
	struct event *list = new_timeout_event(CLOCK_MONOTONIC);
	struct event *a = calloc(N, sizeof(*a));
	struct event *b = calloc(N, sizeof(*b));

	(void)state;
	assert_non_null(list);
	assert_non_null(a);
	assert_non_null(b);
	init_events(a, N);
	init_events(b, N);
	for (int i = 0; i < N; i++) {
		set_tmo(&a[i], i);
		assert_int_equal(timeout_add(list, &a[i]), 0);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(timeout_cancel(list, &a[i]), 0);

	const size_t before = allocated_bytes();
	for (int i = 0; i < N; i++) {
		set_tmo(&a[i], N - i);
		assert_int_equal(timeout_add(list, &a[i]), 0);
	}
	for (int i = 0; i < N; i += 2) {
		struct timespec t = {5 + i % 13, 0};

		assert_int_equal(timeout_modify(list, &a[i], &t), 0);
	}
	const size_t listed = allocated_bytes();
	for (int i = 0; i < N; i++)
		assert_int_equal(timeout_cancel(list, &a[i]), 0);
	for (int i = 0; i < N; i++) {
		struct timespec t = {1 + i % 50, 0};

		/* timeout_modify() on an unlisted event adds it. */
		assert_int_equal(timeout_modify(list, &b[i], &t), 0);
	}
	const size_t other = allocated_bytes();
	assert_int_equal(timeout_reset(list), 0);
	const size_t after = allocated_bytes();
	assert_int_equal(listed, before);
	assert_int_equal(other, before);
	assert_int_equal(after, before);

	free_timeout_event(list);
	free(a);
	free(b);
}

/* Expiry: a round of N timeouts that run and are re-added costs nothing
 * once a first round has run. */
static void run_round(struct dispatcher *d, struct event *list, struct event *ev, int n)
{
	fired = 0;
	for (int i = 0; i < n; i++) {
		ev[i].tmo.tv_sec = 0;
		ev[i].tmo.tv_nsec = 1000L * (1 + i % 100); /* {0, 0} adds nothing */
		assert_int_equal(timeout_add(list, &ev[i]), 0);
	}
	const int64_t give_up = now_ms() + 10000 * slowdown();
	while (fired < n) {
		int rc = vent_wait(d, 100, NULL);

		assert_true(rc >= 0 || rc == -EINTR);
		assert_true(now_ms() < give_up);
	}
}

static void test_no_allocation_on_expiry(void **state)
{
	enum { N = 1024 };
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	struct event *list = new_timeout_event(CLOCK_MONOTONIC);
	struct event *ev = calloc(N, sizeof(*ev));

	(void)state;
	assert_non_null(d);
	assert_non_null(list);
	assert_non_null(ev);
	assert_int_equal(event_add(d, list), 0);
	init_events(ev, N);
	run_round(d, list, ev, N);

	const size_t before = allocated_bytes();
	run_round(d, list, ev, N);
	run_round(d, list, ev, N);
	const size_t after = allocated_bytes();
	assert_int_equal(after, before);

	free_timeout_event(list);
	free_dispatcher(d);
	free(ev);
}

/*
 * Random adds, moves and cancels of events from one array (neighbouring
 * addresses, the hard case for an index by address): every call's result
 * says whether the list held the event, and that must match the model.
 */
static void test_index_against_model(void **state)
{
	enum { N = 3000, OPS = 200000 };
	struct event *list = new_timeout_event(CLOCK_MONOTONIC);
	struct event *ev = calloc(N, sizeof(*ev));
	bool *listed = calloc(N, sizeof(*listed));
	unsigned seed = 12345;
	int nlisted = 0;

	(void)state;
	assert_non_null(list);
	assert_non_null(ev);
	assert_non_null(listed);
	init_events(ev, N);
	for (int op = 0; op < OPS; op++) {
		/* Bias the population towards half full, then towards full
		 * and empty in turn, so the index grows, shrinks and churns. */
		const int phase = op / (OPS / 4);
		const int i = (int)(rand_r(&seed) % N);
		const unsigned r = rand_r(&seed) % 100;
		const unsigned add_pct = phase == 1 ? 80 : phase == 2 ? 20 : 50;

		if (r < add_pct / 2) {
			set_tmo(&ev[i], op);
			int rc = timeout_add(list, &ev[i]);

			assert_int_equal(rc, listed[i] ? -EEXIST : 0);
			if (!listed[i])
				nlisted++;
			listed[i] = true;
		} else if (r < add_pct) {
			struct timespec t = {1 + op % 1000, op % 1000000000};

			assert_int_equal(timeout_modify(list, &ev[i], &t), 0);
			if (!listed[i])
				nlisted++;
			listed[i] = true;
		} else {
			int rc = timeout_cancel(list, &ev[i]);

			assert_int_equal(rc, listed[i] ? 0 : -ENOENT);
			if (listed[i])
				nlisted--;
			listed[i] = false;
		}
		if (op % 50000 == 49999) {
			/* Every listed event is found, every other one is not. */
			for (int j = 0; j < N; j++) {
				struct event probe = ev[j];

				set_tmo(&probe, j);
				int rc = timeout_add(list, &probe);

				/* A copy has another address: never listed. */
				assert_int_equal(rc, 0);
				assert_int_equal(timeout_cancel(list, &probe), 0);
				set_tmo(&ev[j], j);
				if (listed[j])
					assert_int_equal(timeout_add(list, &ev[j]), -EEXIST);
			}
		}
	}
	for (int j = 0; j < N; j++)
		assert_int_equal(timeout_cancel(list, &ev[j]), listed[j] ? 0 : -ENOENT);
	assert_true(nlisted >= 0);
	free_timeout_event(list);
	free(ev);
	free(listed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_no_allocation_after_warm_up),
		CASE(test_no_allocation_on_expiry),
		CASE(test_index_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
