/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wakeup-bench - wakeup round-trip latency between two threads.
 *
 * Two threads each run a dispatcher with one waker (vent_wakeup_init()).
 * The pinger signals the ponger's waker and notes the time; the ponger's
 * callback drains and signals the pinger's waker; the pinger's callback
 * drains and records the round trip, then signals again. Every round trip
 * is two cross-thread wakeups through blocking epoll waits.
 *
 * --raw does the same with two bare eventfds and blocking read()s (no
 * epoll, no library): the physical limit of an eventfd ping-pong here.
 *
 * Usage: wakeup-bench [-r ROUNDS] [--raw] [--json] [-q]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/sources.h>

#include "bench-util.h"

static const char *prog = "wakeup-bench";

struct side {
	struct dispatcher *dsp;
	struct event waker;
	struct side *peer;
	/* pinger only */
	long rounds, done;
	int64_t sent;
	struct bench_hist *hist;
	bool stop;
	/* raw mode */
	int efd;
};

static int on_pong(struct event *evt, uint32_t events)
{
	struct side *s = (struct side *)((char *)evt - offsetof(struct side, waker));
	(void)events;
	if (vent_wakeup_drain(evt) == 0)
		return EVENTCB_CONTINUE;
	if (__atomic_load_n(&s->peer->stop, __ATOMIC_ACQUIRE)) {
		vent_loop_stop(s->dsp);
		return EVENTCB_CONTINUE;
	}
	vent_wakeup_signal(&s->peer->waker, 1);
	return EVENTCB_CONTINUE;
}

static int on_ping(struct event *evt, uint32_t events)
{
	struct side *s = (struct side *)((char *)evt - offsetof(struct side, waker));
	(void)events;
	if (vent_wakeup_drain(evt) == 0)
		return EVENTCB_CONTINUE;
	int64_t now = bench_now_ns();
	bench_hist_add(s->hist, (uint64_t)(now - s->sent));
	if (++s->done >= s->rounds) {
		__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
		vent_wakeup_signal(&s->peer->waker, 1); /* lets the ponger stop */
		vent_loop_stop(s->dsp);
		return EVENTCB_CONTINUE;
	}
	s->sent = bench_now_ns();
	vent_wakeup_signal(&s->peer->waker, 1);
	return EVENTCB_CONTINUE;
}

static void *run_loop(void *arg)
{
	struct side *s = arg;

	if (event_loop(s->dsp, NULL, NULL) < 0)
		return (void *)1;
	return NULL;
}

static void *raw_pong(void *arg)
{
	struct side *s = arg;
	uint64_t v;

	for (;;) {
		if (read(s->efd, &v, sizeof(v)) != sizeof(v))
			return (void *)1;
		if (__atomic_load_n(&s->peer->stop, __ATOMIC_ACQUIRE))
			return NULL;
		v = 1;
		if (write(s->peer->efd, &v, sizeof(v)) != sizeof(v))
			return (void *)1;
	}
}

static int bench_raw(struct side *ping, struct side *pong)
{
	pthread_t t;
	uint64_t v = 1;

	ping->efd = eventfd(0, EFD_CLOEXEC);
	pong->efd = eventfd(0, EFD_CLOEXEC);
	if (ping->efd < 0 || pong->efd < 0)
		return -1;
	if (pthread_create(&t, NULL, raw_pong, pong))
		return -1;
	while (ping->done < ping->rounds) {
		ping->sent = bench_now_ns();
		if (write(pong->efd, &v, sizeof(v)) != sizeof(v) ||
		    read(ping->efd, &v, sizeof(v)) != sizeof(v))
			return -1;
		bench_hist_add(ping->hist, (uint64_t)(bench_now_ns() - ping->sent));
		ping->done++;
	}
	__atomic_store_n(&ping->stop, true, __ATOMIC_RELEASE);
	v = 1;
	if (write(pong->efd, &v, sizeof(v)) != sizeof(v))
		return -1;
	void *rc;
	pthread_join(t, &rc);
	close(ping->efd);
	close(pong->efd);
	return rc ? -1 : 0;
}

static int bench_vent(struct side *ping, struct side *pong)
{
	pthread_t t;
	void *rc_ping, *rc_pong;

	ping->dsp = new_dispatcher(CLOCK_MONOTONIC);
	pong->dsp = new_dispatcher(CLOCK_MONOTONIC);
	if (!ping->dsp || !pong->dsp)
		return -1;
	if (vent_wakeup_init(&ping->waker, on_ping) < 0 ||
	    vent_wakeup_init(&pong->waker, on_pong) < 0 ||
	    event_add(ping->dsp, &ping->waker) < 0 || event_add(pong->dsp, &pong->waker) < 0)
		return -1;
	if (pthread_create(&t, NULL, run_loop, pong))
		return -1;
	ping->sent = bench_now_ns();
	vent_wakeup_signal(&pong->waker, 1);
	rc_ping = run_loop(ping);
	pthread_join(t, &rc_pong);
	free_dispatcher(ping->dsp);
	free_dispatcher(pong->dsp);
	return rc_ping || rc_pong || ping->done != ping->rounds ? -1 : 0;
}

int main(int argc, char **argv)
{
	static struct bench_hist hist;
	struct side ping = {0}, pong = {0};
	bool raw = false, json = false, quiet = false;
	long rounds = 100000;
	static const struct option opts[] = {
		{"rounds", required_argument, NULL, 'r'},
		{"raw", no_argument, NULL, 'R'},
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (bench_parse_long(prog, "-r", optarg, 1, 100000000, &rounds) < 0)
				return 2;
			break;
		case 'R':
			raw = true;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			printf("usage: %s [-r ROUNDS] [--raw] [--json] [-q]\n"
			       "  -r, --rounds N  round trips (default 100k)\n"
			       "      --raw       bare eventfds and blocking read(), no library\n"
			       "      --json      one JSON object\n",
			       prog);
			return 0;
		default:
			fprintf(stderr, "%s: unrecognized option (see --help)\n", prog);
			return 2;
		}
	}
	if (bench_no_operands(prog, argc, argv) < 0)
		return 2;
	ping.peer = &pong;
	pong.peer = &ping;
	ping.rounds = rounds;
	ping.hist = &hist;
	int64_t t0 = bench_now_ns();
	if ((raw ? bench_raw(&ping, &pong) : bench_vent(&ping, &pong)) < 0) {
		fprintf(stderr, "%s: failed after %ld round trips\n", prog, ping.done);
		return 1;
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	double p50 = bench_hist_quantile(&hist, 0.5) / 1e3, p99 = bench_hist_quantile(&hist, 0.99) / 1e3,
	       max = bench_hist_quantile(&hist, 1) / 1e3;
	if (json)
		printf("{\"tool\": \"wakeup-bench\", \"lib\": \"%s\", \"rounds\": %ld, "
		       "\"rtt_p50_us\": %.2f, \"rtt_p99_us\": %.2f, \"rtt_max_us\": %.1f, "
		       "\"round_trips_per_s\": %.0f}\n",
		       raw ? "raw" : "vent", ping.done, p50, p99, max, (double)ping.done / secs);
	else if (!quiet)
		printf("%s: %ld round trips, rtt p50 %.2f us, p99 %.2f us, max %.1f us, %.0f/s\n",
		       raw ? "raw eventfd" : "vent wakeup", ping.done, p50, p99, max,
		       (double)ping.done / secs);
	return 0;
}
