// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libevent-part.c - the libevent half of coexist-test.
 *
 * A bufferevent pair: bufferevent_enable() makes libevent call its own
 * event_add() internally (the call that landed in vent when vent came first
 * in the link order, so the read callback never fired), plus an evtimer
 * added by this program through libevent's event_add().
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "coexist.h"

static int read_fired;
static int timer_fired;
static char got[8];

static void on_read(struct bufferevent *bev, void *arg)
{
	size_t n = bufferevent_read(bev, got, sizeof(got) - 1);
	got[n] = '\0';
	read_fired = 1;
	event_base_loopexit(arg, NULL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)arg;
	timer_fired = (what & EV_TIMEOUT) != 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopexit(arg, NULL);
}

int libevent_part(void)
{
	int fails = 0;
	struct event_base *base = event_base_new();
	if (!base) {
		printf("not ok - event_base_new\n");
		return 1;
	}
	struct bufferevent *pair[2];
	if (bufferevent_pair_new(base, 0, pair) != 0) {
		printf("not ok - bufferevent_pair_new\n");
		event_base_free(base);
		return 1;
	}
	bufferevent_setcb(pair[1], on_read, NULL, NULL, base);
	int rc = bufferevent_enable(pair[1], EV_READ);
	printf("%s - bufferevent_enable returned %d\n", rc == 0 ? "ok" : "not ok", rc);
	fails += rc != 0;

	struct event *tmr = evtimer_new(base, on_timer, NULL);
	struct timeval ms = {0, 1000};
	rc = tmr ? event_add(tmr, &ms) : -1;
	printf("%s - libevent's event_add of an evtimer returned %d\n", rc == 0 ? "ok" : "not ok",
	       rc);
	fails += rc != 0;
	/* A 5 s deadline, so that a callback that never fires cannot hang. */
	struct event *deadline = evtimer_new(base, on_deadline, base);
	struct timeval five = {5, 0};
	if (!deadline || event_add(deadline, &five) != 0) {
		printf("not ok - deadline evtimer\n");
		fails++;
	}

	bufferevent_write(pair[0], "ping", 4);
	event_base_dispatch(base);
	/* The timer (1 ms) and the read may come in either order. */
	if (!timer_fired)
		event_base_loop(base, EVLOOP_ONCE);

	int read_ok = read_fired && strcmp(got, "ping") == 0;
	printf("%s - the bufferevent read callback fired (\"%s\")\n", read_ok ? "ok" : "not ok",
	       got);
	fails += !read_ok;
	printf("%s - the libevent timer fired\n", timer_fired ? "ok" : "not ok");
	fails += !timer_fired;

	if (deadline)
		event_free(deadline);
	if (tmr)
		event_free(tmr);
	bufferevent_free(pair[0]);
	bufferevent_free(pair[1]);
	event_base_free(base);
	return fails;
}
