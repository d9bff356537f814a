/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: child.c */
#include <stdio.h>
#include <unistd.h>
#include <vent/event.h>
#include <vent/sources.h>

static int on_child(struct event *evt, uint32_t events)
{
	siginfo_t info;

	(void)events;
	if (evt->reason == REASON_TIMEOUT) {
		printf("child still running after 5 s\n");
	} else if (vent_pid_wait(evt, &info) == 0) {
		printf("child %d exited with status %d\n", (int)info.si_pid, info.si_status);
	}
	vent_loop_stop(evt->dsp);
	return EVENTCB_CLEANUP; /* closes the pidfd */
}

int main(void)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event child;
	pid_t pid = fork();

	if (pid == 0)
		_exit(3);
	/* "This child, or 5 s": one event, one callback. */
	if (!dsp || pid < 0 || vent_pid_init(&child, pid, on_child) < 0) {
		free_dispatcher(dsp); /* NULL is fine */
		return 1;
	}
	child.tmo.tv_sec = 5;
	if (event_add(dsp, &child) < 0) {
		close(child.fd);
		free_dispatcher(dsp);
		return 1;
	}
	event_loop(dsp, NULL, NULL);
	free_dispatcher(dsp);
	return 0;
}
