/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: wakeup.c */
#include <pthread.h>
#include <stdio.h>
#include <vent/event.h>
#include <vent/sources.h>

static struct event waker;

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		vent_wakeup_signal(&waker, 1); /* any thread, never blocks */
	return NULL;
}

static int on_wakeup(struct event *evt, uint32_t events)
{
	static uint64_t total;

	(void)events;
	total += vent_wakeup_drain(evt); /* signals coalesce */
	if (total == 1000) {
		printf("1000 wakeups received\n");
		vent_loop_stop(evt->dsp);
	}
	return EVENTCB_CONTINUE;
}

int main(void)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	pthread_t t;

	if (!dsp || vent_wakeup_init(&waker, on_wakeup) < 0 || event_add(dsp, &waker) < 0)
		return 1;
	pthread_create(&t, NULL, worker, NULL);
	event_loop(dsp, NULL, NULL);
	pthread_join(t, NULL); /* no signalling after the waker is released */
	free_dispatcher(dsp);
	return 0;
}
