/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * compat/readme - minivent's README example, completed with the signal
 * set-up the README asks for, written only against minivent's documented
 * API and built with "-I include/vent" (#include "event.h").
 *
 * A timer runs a callback, which "commits suicide" with SIGINT; SIGINT is
 * blocked except while event_loop() waits, and has an empty handler, so
 * event_loop() returns -EINTR. The program checks that this is what
 * happened and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "event.h"

static int calls;
static int reason = -1;

static void sighandler(int sig)
{
	(void)sig;
}

static int cb(struct event *evt, uint32_t events)
{
	(void)events;
	fprintf(stderr, "Hello world! (%s)\n", reason_str[evt->reason]);
	calls++;
	reason = evt->reason;
	/* "commit suicide" */
	kill(getpid(), SIGINT);
	return EVENTCB_CLEANUP;
}

int main(void)
{
	struct sigaction sa;
	sigset_t mask;
	struct dispatcher *dsp;
	struct event evt;
	int rc;

	/* The signal handling the README says must be added. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sighandler;
	sigfillset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigdelset(&mask, SIGINT);

	dsp = new_dispatcher(CLOCK_REALTIME);
	if (!dsp) {
		perror("new_dispatcher");
		return 1;
	}
	evt = TIMER_EVENT_ON_STACK(cb, 1);

	rc = event_add(dsp, &evt);
	if (rc != 0) {
		fprintf(stderr, "event_add: %s\n", strerror(-rc));
		return 1;
	}
	rc = event_loop(dsp, &mask, NULL);
	free_dispatcher(dsp);

	if (rc != -EINTR || calls != 1 || reason != REASON_TIMEOUT) {
		fprintf(stderr, "FAIL: event_loop returned %d (want %d), %d callback(s) "
			"(want 1), reason %d (want %d)\n", rc, -EINTR, calls, reason,
			REASON_TIMEOUT);
		return 1;
	}
	printf("readme example: ok\n");
	return 0;
}
