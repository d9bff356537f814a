/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * timeout-faults.c - the timeout list of vent/timeout.h under failalloc.so
 * (LD_PRELOAD), with the Nth allocation failing (FAILALLOC_N=N; fault-driver
 * runs N = 1, 2, ... until a run injects nothing).
 *
 * One scripted run: create a list, add it to a dispatcher, add, modify and
 * cancel entries (also from the callbacks), let them expire, reset and free.
 * Every call that can allocate either succeeds or returns -ENOMEM (NULL and
 * ENOMEM for new_timeout_event()) while an injected failure fired during
 * it; then it changed nothing (the event is not listed, no fd is left) and a
 * retry succeeds. After the run every entry must have run exactly as often
 * as the script says (a failure swallowed by the library would lose one),
 * and the fd count and the interposer's live-allocation count are back to
 * their baseline.
 *
 * Exit: 0 = checks passed and a failure was injected, 3 = passed, nothing
 * injected (N is past the last allocation), 4 = the allocator cannot be
 * interposed in this build, 1 = a check failed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/timeout.h>

#include "harden-util.h"
#include "../util/clock.h"
#include "../util/fd.h"

#define NENT 200

struct entry {
	struct event ev;
	int runs;
	bool readd; /* re-arm itself once from its callback */
};

static struct entry ent[NENT];
static struct event *list;
static int total_runs;

/* timeout_add() until it succeeds: at most one -ENOMEM, injected, and the
 * event not listed after it. */
static void add_checked(struct entry *e, long long rel_ns)
{
	for (int try = 0;; try++) {
		long f0 = fa_fired();
		e->ev.tmo.tv_sec = rel_ns / 1000000000LL;
		e->ev.tmo.tv_nsec = rel_ns % 1000000000LL;
		int rc = timeout_add(list, &e->ev);
		if (rc == 0)
			return;
		EXPECT(rc == -ENOMEM, "timeout_add: %d", rc);
		EXPECT(fa_fired() > f0, "timeout_add: -ENOMEM without an injected failure");
		EXPECT(try == 0, "timeout_add failed twice");
		EXPECT(timeout_cancel(list, &e->ev) == -ENOENT, "listed after a failed add");
	}
}

static int entry_cb(struct event *evt, uint32_t events)
{
	struct entry *e = (struct entry *)evt;
	(void)events;
	EXPECT(evt->reason == REASON_TIMEOUT, "reason %d", evt->reason);
	e->runs++;
	total_runs++;
	if (e->readd) {
		e->readd = false;
		add_checked(e, 1000000); /* 1 ms */
	}
	/* Cancel a later entry from here (never allocates). */
	struct entry *other = &ent[(e - ent + 1) % NENT];
	if ((e - ent) % 10 == 0)
		timeout_cancel(list, &other->ev);
	return EVENTCB_CONTINUE;
}

static void run_scenario(bool armed, long n)
{
	memset(ent, 0, sizeof(ent));
	total_runs = 0;
	const int base_fds = fd_count();
	const long base_live = fa.live ? fa.live() : 0;
	if (armed)
		fa.arm(n);

	struct dispatcher *d = NULL;
	for (int try = 0;; try++) {
		long f0 = fa_fired();
		d = new_dispatcher(CLOCK_MONOTONIC);
		if (d)
			break;
		EXPECT(errno == ENOMEM && fa_fired() > f0 && try == 0, "new_dispatcher: %s",
		       strerror(errno));
	}
	for (int try = 0;; try++) {
		long f0 = fa_fired();
		int fds0 = fd_count();
		list = new_timeout_event(CLOCK_MONOTONIC);
		if (list)
			break;
		EXPECT(errno == ENOMEM, "new_timeout_event: %s", strerror(errno));
		EXPECT(fa_fired() > f0, "new_timeout_event: ENOMEM without an injected failure");
		EXPECT(fd_count() == fds0, "new_timeout_event left an fd");
		EXPECT(try == 0, "new_timeout_event failed twice");
	}
	for (int try = 0;; try++) {
		long f0 = fa_fired();
		int rc = event_add(d, list);
		if (rc == 0)
			break;
		EXPECT(rc == -ENOMEM && fa_fired() > f0 && try == 0, "event_add(list): %d", rc);
	}

	/* Entries 0..NENT-1 at 1..20 ms; every 7th re-arms once from its
	 * callback; every 10th cancels the next one when it runs. */
	int want_runs = 0;
	for (int i = 0; i < NENT; i++) {
		ent[i].ev.fd = -1;
		ent[i].ev.callback = entry_cb;
		ent[i].readd = i % 7 == 0;
		add_checked(&ent[i], 1000000LL + (i % 20) * 1000000LL);
	}
	/* Modify: a listed entry moves (no allocation), an unlisted one is
	 * added (may fail like an add). */
	struct timespec later = {0, 25000000};
	EXPECT(timeout_modify(list, &ent[5].ev, &later) == 0, "modify listed");
	EXPECT(timeout_cancel(list, &ent[6].ev) == 0, "cancel");
	for (int try = 0;; try++) {
		long f0 = fa_fired();
		int rc = timeout_modify(list, &ent[6].ev, &later);
		if (rc == 0)
			break;
		EXPECT(rc == -ENOMEM && fa_fired() > f0 && try == 0, "modify unlisted: %d", rc);
		EXPECT(timeout_cancel(list, &ent[6].ev) == -ENOENT, "listed after a failed modify");
	}

	/* Each entry j runs once, twice if it re-arms itself (j % 7 == 0),
	 * never if its predecessor cancels it (j - 1 a multiple of 10: the
	 * predecessor's deadline is 1 ms earlier, so it always runs first). */
	int want[NENT];
	for (int j = 0; j < NENT; j++) {
		want[j] = (j - 1) % 10 == 0 ? 0 : j % 7 == 0 ? 2 : 1;
		want_runs += want[j];
	}
	long long deadline = now_ns() + 30000000000LL;
	while (total_runs < want_runs) {
		int rc = vent_wait(d, 100, NULL);
		EXPECT(rc >= 0 || rc == -EINTR, "vent_wait: %d", rc);
		EXPECT(now_ns() < deadline, "only %d of %d callbacks ran", total_runs, want_runs);
	}
	EXPECT(vent_wait(d, 30, NULL) >= 0, "vent_wait");
	for (int j = 0; j < NENT; j++)
		EXPECT(ent[j].runs == want[j], "entry %d ran %d times, want %d", j, ent[j].runs,
		       want[j]);
	EXPECT(timeout_reset(list) == 0, "reset");
	free_timeout_event(list);
	free_dispatcher(d);
	if (armed) {
		long f = fa.disarm();
		EXPECT(fd_count() == base_fds, "fds: %d, baseline %d", fd_count(), base_fds);
		EXPECT(fa.live() == base_live, "live allocations: %ld, baseline %ld", fa.live(),
		       base_live);
		exit(f ? 0 : 3);
	}
	EXPECT(fd_count() == base_fds, "fds: %d, baseline %d", fd_count(), base_fds);
}

int main(void)
{
	const long n = fa_start(run_scenario);
	/* Self-check: the first allocation of new_timeout_event() fails. */
	fa.arm(1);
	struct event *t = new_timeout_event(CLOCK_MONOTONIC);
	int err = errno;
	long f = fa.disarm();
	if (f == 0 && t) {
		fprintf(stderr, "failalloc.so sees no allocation in this build\n");
		free_timeout_event(t);
		return 4;
	}
	EXPECT(!t && err == ENOMEM && f == 1, "new_timeout_event with the first allocation failing");
	run_scenario(false, 0); /* warm-up: one-time allocations */
	run_scenario(true, n > 0 ? n : -1);
	return 1;
}
