/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: embed.c */
#include <poll.h>
#include <stdio.h>
#include <vent/event.h>

static int done;

static void on_timer(void *arg)
{
	(void)arg;
	printf("vent timer ran inside a poll() loop\n");
	done = 1;
}

int main(void)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct timer_event t = TIMER_ON_STACK(on_timer, NULL, 100000); /* 100 ms */

	if (!dsp || event_add(dsp, &t.e) < 0)
		return 1;
	struct pollfd pfd = { .fd = dispatcher_get_efd(dsp), .events = POLLIN };
	while (!done) {
		/* The host loop's own fds would go into the same poll(). */
		if (poll(&pfd, 1, -1) > 0 && (pfd.revents & POLLIN))
			vent_wait(dsp, 0, NULL); /* runs what is ready, never blocks */
	}
	free_dispatcher(dsp);
	return 0;
}
