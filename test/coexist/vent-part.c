// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vent-part.c - the vent half of coexist-test (vent's and libevent's
 * headers cannot share a translation unit: both declare struct event and
 * event_add()).
 *
 * A dispatcher with one vent timer and one vent_aio pread of /proc/self/exe:
 * vent_aio_new() registers its eventfd with event_add() inside libvent, the
 * call that, before vent exported prefixed names only, landed in libevent
 * when libevent came first in the link order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vent/aio.h>
#include <vent/event.h>

#include "coexist.h"

static int timer_fired;
static ssize_t pread_result = -1000;
static int pread_done;
static unsigned char elf[4];

static int on_timer(struct event *evt, uint32_t events)
{
	(void)events;
	timer_fired = evt->reason == REASON_TIMEOUT;
	return EVENTCB_REMOVE;
}

static void on_pread(int id, ssize_t result, void *arg)
{
	(void)id;
	(void)arg;
	pread_result = result;
	pread_done = 1;
}

int vent_part(void)
{
	int fails = 0;
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	if (!dsp) {
		printf("not ok - new_dispatcher: %s\n", strerror(errno));
		return 1;
	}
	struct vent_aio *aio = vent_aio_new(dsp);
	if (!aio) {
		printf("not ok - vent_aio_new: %s\n", strerror(errno));
		free_dispatcher(dsp);
		return 1;
	}
	printf("ok - vent_aio_new\n");

	/* A timer, 1 ms: event_add() from this program must reach vent. */
	struct event tmr = TIMER_EVENT_ON_STACK(on_timer, 1000);
	int rc = event_add(dsp, &tmr);
	if (rc != 0) {
		printf("not ok - event_add of a vent timer: %s\n", strerror(-rc));
		fails++;
	}

	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	rc = fd < 0 ? -errno : vent_aio_pread(aio, fd, elf, sizeof(elf), 0, on_pread, NULL);
	if (rc <= 0) {
		printf("not ok - vent_aio_pread: %s\n", strerror(-rc));
		fails++;
	}

	/* Each wait blocks until something happens; 5 s of waits at most. */
	for (int i = 0; i < 50 && (!timer_fired || !pread_done); i++) {
		rc = vent_wait(dsp, 100, NULL);
		if (rc < 0) {
			printf("not ok - vent_wait: %s\n", strerror(-rc));
			fails++;
			break;
		}
	}
	printf("%s - the vent timer fired\n", timer_fired ? "ok" : "not ok");
	fails += !timer_fired;
	int pread_ok = pread_done && pread_result == 4 && memcmp(elf, "\177ELF", 4) == 0;
	printf("%s - vent_aio_pread completed through the dispatcher (result %zd)\n",
	       pread_ok ? "ok" : "not ok", pread_result);
	fails += !pread_ok;

	if (fd >= 0)
		close(fd);
	vent_aio_free(aio);
	free_dispatcher(dsp);
	return fails;
}
