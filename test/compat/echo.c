/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * compat/echo - an echo exchange over a socketpair, written only against
 * minivent's documented API (event.h, ts-util.h; built with
 * "-I include/vent"), the way minivent's echo test drives it.
 *
 * One dispatcher, two events embedded in their own objects (struct event at
 * offset 0, EVENT_ON_STACK initialisers, cleanup_event_on_stack closes the
 * fds). Each side switches between EPOLLIN and EPOLLOUT with event_modify()
 * and re-arms a per-step timeout with event_mod_timeout():
 *  - the client sends NMSG messages and checks every echo, with a 1 s send
 *    and a 2 s receive timeout (either firing is a failure);
 *  - every DELAY_EVERY-th message the server disables its fd (ep.events = 0)
 *    and sets an absolute 1 ms timeout (TMO_ABS, ts_add), and only echoes
 *    when that timeout fires;
 *  - finally the client sends a message the server ignores and sets a
 *    50 ms timeout, which must fire (REASON_TIMEOUT); the client then
 *    "commits suicide" with SIGINT, and the err_handler of event_loop()
 *    returns ELOOP_QUIT.
 * free_dispatcher() runs both cleanups, which close both ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "event.h"
#include "ts-util.h"

#define NMSG 2000
#define DELAY_EVERY 100
#define MSG_LEN 32
#define QUIET_MSG "please stay quiet"

struct conn {
	struct event e; /* first: the callbacks cast back */
	char buf[MSG_LEN];
	char sent[MSG_LEN];
	size_t done;
	int count;
	bool delaying;
	bool quiet;
};

static int failures;
static int delayed_echoes, quiet_timeouts, finished;

#define FAIL(...)                                      \
	do {                                           \
		fprintf(stderr, "FAIL: " __VA_ARGS__); \
		fprintf(stderr, "\n");                 \
		failures++;                            \
	} while (0)

static void sighandler(int sig)
{
	(void)sig;
}

static void stop_loop(void)
{
	finished = 1;
	kill(getpid(), SIGINT);
}

static void set_tmo(struct event *evt, long sec, long nsec)
{
	struct timespec ts;
	int rc;

	ts.tv_sec = sec;
	ts.tv_nsec = nsec;
	rc = event_mod_timeout(evt, &ts);
	if (rc != 0)
		FAIL("event_mod_timeout: %s", strerror(-rc));
}

static void set_mask(struct event *evt, uint32_t mask)
{
	int rc;

	evt->ep.events = mask;
	rc = event_modify(evt);
	if (rc != 0)
		FAIL("event_modify: %s", strerror(-rc));
}

/* Returns 1 when a whole message moved, 0 when more is to come, -1 on error. */
static int xfer(struct conn *c, bool out, char *buf)
{
	ssize_t n = out ? write(c->e.fd, buf + c->done, MSG_LEN - c->done)
			: read(c->e.fd, buf + c->done, MSG_LEN - c->done);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		FAIL("%s: %s", out ? "write" : "read", n == 0 ? "EOF" : strerror(errno));
		return -1;
	}
	c->done += (size_t)n;
	if (c->done < MSG_LEN)
		return 0;
	c->done = 0;
	return 1;
}

static int client_cb(struct event *evt, uint32_t events)
{
	struct conn *c = (struct conn *)evt;

	if (evt->reason == REASON_TIMEOUT) {
		if (c->quiet) {
			/* The expected timeout: the server ignored the message. */
			quiet_timeouts++;
			stop_loop();
			return EVENTCB_CONTINUE;
		}
		FAIL("client: unexpected timeout after %d messages", c->count);
		stop_loop();
		return EVENTCB_CONTINUE;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		FAIL("client: events 0x%x", (unsigned)events);
		stop_loop();
		return EVENTCB_REMOVE;
	}
	if (events & EPOLLOUT) {
		int rc = xfer(c, true, c->sent);
		if (rc < 0) {
			stop_loop();
			return EVENTCB_REMOVE;
		}
		if (rc > 0) {
			set_mask(evt, EPOLLIN);
			if (c->quiet)
				set_tmo(evt, 0, 50000000);
			else
				set_tmo(evt, 2, 0);
		}
		return EVENTCB_CONTINUE;
	}
	if (events & EPOLLIN) {
		int rc = xfer(c, false, c->buf);
		if (rc < 0) {
			stop_loop();
			return EVENTCB_REMOVE;
		}
		if (rc == 0)
			return EVENTCB_CONTINUE;
		if (c->quiet) {
			FAIL("client: the server answered the quiet message");
			stop_loop();
			return EVENTCB_CONTINUE;
		}
		if (memcmp(c->buf, c->sent, MSG_LEN) != 0)
			FAIL("client: echo %d differs", c->count);
		c->count++;
		memset(c->sent, 0, MSG_LEN);
		if (c->count == NMSG) {
			c->quiet = true;
			strcpy(c->sent, QUIET_MSG);
		} else {
			snprintf(c->sent, MSG_LEN, "message %d", c->count);
		}
		set_mask(evt, EPOLLOUT);
		set_tmo(evt, 1, 0);
	}
	return EVENTCB_CONTINUE;
}

static int server_cb(struct event *evt, uint32_t events)
{
	struct conn *c = (struct conn *)evt;
	int rc;

	if (evt->reason == REASON_TIMEOUT) {
		if (!c->delaying) {
			FAIL("server: unexpected timeout after %d messages", c->count);
			stop_loop();
			return EVENTCB_CONTINUE;
		}
		/* The delay is over: echo now. */
		c->delaying = false;
		delayed_echoes++;
		evt->flags &= ~TMO_ABS;
		set_mask(evt, EPOLLOUT);
		set_tmo(evt, 1, 0);
		return EVENTCB_CONTINUE;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		FAIL("server: events 0x%x", (unsigned)events);
		stop_loop();
		return EVENTCB_REMOVE;
	}
	if (events & EPOLLIN) {
		rc = xfer(c, false, c->buf);
		if (rc < 0) {
			stop_loop();
			return EVENTCB_REMOVE;
		}
		if (rc == 0)
			return EVENTCB_CONTINUE;
		if (strcmp(c->buf, QUIET_MSG) == 0) {
			/* Ignore it: keep reading, no timeout. */
			set_tmo(evt, 0, 0);
			return EVENTCB_CONTINUE;
		}
		c->count++;
		if (c->count % DELAY_EVERY == 0) {
			/* Disabled fd, absolute timeout 1 ms from now. */
			struct timespec now, delta;
			clock_gettime(dispatcher_get_clocksource(evt->dsp), &now);
			delta.tv_sec = 0;
			delta.tv_nsec = 1000000;
			ts_add(&now, &delta);
			c->delaying = true;
			set_mask(evt, 0);
			evt->flags |= TMO_ABS;
			rc = event_mod_timeout(evt, &now);
			if (rc != 0)
				FAIL("event_mod_timeout(TMO_ABS): %s", strerror(-rc));
		} else {
			set_mask(evt, EPOLLOUT);
			set_tmo(evt, 1, 0);
		}
		return EVENTCB_CONTINUE;
	}
	if (events & EPOLLOUT) {
		rc = xfer(c, true, c->buf);
		if (rc < 0) {
			stop_loop();
			return EVENTCB_REMOVE;
		}
		if (rc > 0) {
			set_mask(evt, EPOLLIN);
			set_tmo(evt, 0, 0);
		}
	}
	return EVENTCB_CONTINUE;
}

static int err_handler(int err)
{
	if (err == -EINTR && finished)
		return ELOOP_QUIT;
	if (err == -EINTR)
		return ELOOP_CONTINUE;
	return err;
}

int main(void)
{
	static struct conn client, server;
	struct sigaction sa;
	sigset_t mask;
	struct dispatcher *dsp;
	int sv[2], rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sighandler;
	sigfillset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigdelset(&mask, SIGINT);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		perror("socketpair");
		return 1;
	}
	dsp = new_dispatcher(CLOCK_MONOTONIC);
	if (!dsp) {
		perror("new_dispatcher");
		return 1;
	}
	client.e = EVENT_W_TMO_ON_STACK(client_cb, sv[0], EPOLLOUT, 1000000);
	snprintf(client.sent, MSG_LEN, "message %d", 0);
	server.e = EVENT_ON_STACK(server_cb, sv[1], EPOLLIN);
	if ((rc = event_add(dsp, &server.e)) != 0 || (rc = event_add(dsp, &client.e)) != 0) {
		fprintf(stderr, "event_add: %s\n", strerror(-rc));
		return 1;
	}

	rc = event_loop(dsp, &mask, err_handler);
	if (rc != 0)
		FAIL("event_loop returned %d", rc);
	free_dispatcher(dsp);

	if (fcntl(sv[0], F_GETFD) != -1 || fcntl(sv[1], F_GETFD) != -1)
		FAIL("free_dispatcher did not run the cleanups that close the fds");
	if (client.count != NMSG || server.count != NMSG)
		FAIL("%d echoes, server saw %d messages, want %d", client.count, server.count, NMSG);
	if (delayed_echoes != NMSG / DELAY_EVERY)
		FAIL("%d delayed echoes, want %d", delayed_echoes, NMSG / DELAY_EVERY);
	if (quiet_timeouts != 1)
		FAIL("%d final timeouts, want 1", quiet_timeouts);
	if (failures)
		return 1;
	printf("echo exchange: %d messages, %d delayed by a timeout: ok\n", NMSG, delayed_echoes);
	return 0;
}
