/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: timeout-list.c */
#include <stdio.h>
#include <vent/event.h>
#include <vent/timeout.h>

/* Requests waiting for an answer, each with a deadline on one list. */
struct request {
	struct event ev; /* the list uses tmo, flags, reason and callback */
	const char *name;
};

static struct dispatcher *dsp;
static int pending;

static int on_expired(struct event *evt, uint32_t events)
{
	struct request *req = (struct request *)evt;

	(void)events;
	printf("%s: %s\n", req->name, reason_str[evt->reason]);
	if (--pending == 0)
		vent_loop_stop(dsp);
	return EVENTCB_CONTINUE;
}

int main(void)
{
	struct request req[3] = {
		{.ev = {.fd = -1, .callback = on_expired, .tmo = {0, 20000000}}, .name = "a"},
		{.ev = {.fd = -1, .callback = on_expired, .tmo = {0, 30000000}}, .name = "b"},
		{.ev = {.fd = -1, .callback = on_expired, .tmo = {0, 40000000}}, .name = "c"},
	};
	struct timespec more = {0, 60000000};
	struct event *list;

	dsp = new_dispatcher(CLOCK_MONOTONIC);
	list = new_timeout_event(CLOCK_MONOTONIC);
	if (!dsp || !list || event_add(dsp, list) < 0)
		return 1;
	for (int i = 0; i < 3; i++)
		if (timeout_add(list, &req[i].ev) < 0)
			return 1;
	/* "b" got its answer; "c" gets 60 ms from now instead. */
	if (timeout_cancel(list, &req[1].ev) < 0 || timeout_modify(list, &req[2].ev, &more) < 0)
		return 1;
	pending = 2;
	if (event_loop(dsp, NULL, NULL) < 0)
		return 1;
	free_timeout_event(list); /* removes it from the dispatcher too */
	free_dispatcher(dsp);
	return pending;
}
