/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: signal.c */
#include <signal.h>
#include <stdio.h>
#include <vent/event.h>
#include <vent/sources.h>

static int on_signal(struct event *evt, uint32_t events)
{
	struct signalfd_siginfo si[8];
	int n = vent_signal_read(evt, si, 8);

	(void)events;
	for (int i = 0; i < n; i++)
		printf("signal %u from pid %u\n", si[i].ssi_signo, si[i].ssi_pid);
	vent_loop_stop(evt->dsp);
	return EVENTCB_CONTINUE;
}

int main(void)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event sig;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	/* Before creating threads: they inherit the blocked mask. */
	if (!dsp || vent_signal_init(&sig, &set, on_signal) < 0 || event_add(dsp, &sig) < 0)
		return 1;
	raise(SIGUSR1);
	event_loop(dsp, NULL, NULL);
	free_dispatcher(dsp); /* vent_signal_release(): mask restored */
	return 0;
}
