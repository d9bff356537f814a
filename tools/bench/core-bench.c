/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * core-bench - cost of the core operations against the number of registered
 * events (issue 2: "event_modify, event_remove and event_mod_timeout cost
 * flat from 1k to 19k registered events").
 *
 * For each size N it registers N eventfds, each with a timeout scattered over
 * 100 s (so the timeout heap holds N entries), then measures in rounds over
 * all N events, in a shuffled order:
 *   modify      event_modify() switching the mask (EPOLLIN <-> EPOLLIN|OUT)
 *   modify=     event_modify() with an unchanged mask (must cost no syscall)
 *   rm+add      event_remove() then event_add() of the same event
 *   tmo-later   event_mod_timeout() to a later deadline (no syscall)
 *   tmo-earlier event_mod_timeout() to an earlier deadline
 * and, as the kernel's floor for the first and third, the same epoll_ctl()
 * calls on a plain epoll set holding the same N eventfds:
 *   raw-mod     epoll_ctl(MOD) switching the mask
 *   raw-rm+add  epoll_ctl(DEL) then epoll_ctl(ADD)
 * and, as the floor of any operation on a user's event, the same loop that
 * only writes the event's timeout fields (no library call):
 *   touch       e->tmo = new value
 * The shuffled order makes each operation touch a random event, as a server
 * does; at 19k events (1.2 MB of struct event plus the library's tables)
 * that includes cache misses that --sequential avoids for the events.
 * Operations are timed in batches of --batch; the table gives the median ns
 * per operation over all batches of all timed rounds (one untimed warm-up
 * round first), and the ratio of the largest size to the smallest.
 *
 * --echo=K runs instead a K round-trip echo exchange over a socketpair on
 * one dispatcher, each step calling event_modify() with an unchanged mask
 * and event_mod_timeout() with a deadline 5 s ahead (always later), for
 * counting syscalls under strace (tools/bench/core-syscalls.sh). --earlier makes
 * step k set a deadline 1000 s - k ms ahead instead: each one earlier than
 * the last (steps take far less than 1 ms), so each must re-arm the kernel
 * timer; this shows the count responds.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vent/event.h>

#include "bench-util.h"

#define MAX_SIZES 16
#define MAX_EVENTS 1000000

static const char *prog = "core-bench";

static struct {
	long sizes[MAX_SIZES];
	int nsizes;
	long rounds;
	long batch;
	long echo;
	bool earlier;
	bool sequential;
	bool json;
} cfg = {
	.sizes = {1000, 5000, 10000, 19000},
	.nsizes = 4,
	.rounds = 10,
	.batch = 64,
};

enum {
	OP_MODIFY, OP_MODIFY_SAME, OP_REMOVE_ADD, OP_TMO_LATER, OP_TMO_EARLIER,
	OP_RAW_MODIFY, OP_RAW_REMOVE_ADD, OP_TOUCH, NOPS
};
static const char *const op_names[NOPS] = {
	"modify", "modify=", "rm+add", "tmo-later", "tmo-earlier", "raw-mod", "raw-rm+add", "touch",
};

static int never_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	return EVENTCB_CONTINUE;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
	exit(1);
}

/* A relative timeout of @base_s seconds plus a random part below 100 s. */
static struct timespec scattered(long base_s, uint64_t *seed)
{
	uint64_t r = bench_rand(seed) % 100000000000ULL;
	struct timespec ts = {base_s + (time_t)(r / 1000000000), (long)(r % 1000000000)};

	return ts;
}

struct bench {
	struct dispatcher *dsp;
	int raw_ep;
	struct event *evs;
	uint32_t *order;
	size_t n;
	double *samples; /* ns per op, one per batch */
	size_t nsamples;
	uint64_t seed;
	long round;
};

static void shuffle(struct bench *b)
{
	if (cfg.sequential)
		return;
	for (size_t i = b->n - 1; i > 0; i--) {
		size_t j = bench_rand(&b->seed) % (i + 1);
		uint32_t t = b->order[i];
		b->order[i] = b->order[j];
		b->order[j] = t;
	}
}

static void do_op(struct bench *b, int op, struct event *e)
{
	struct timespec ts;
	int rc = 0;

	switch (op) {
	case OP_MODIFY:
		e->ep.events = (b->round & 1) ? EPOLLIN : EPOLLIN | EPOLLOUT;
		rc = event_modify(e);
		break;
	case OP_MODIFY_SAME:
		rc = event_modify(e);
		break;
	case OP_REMOVE_ADD:
		rc = event_remove(e);
		if (rc == 0) {
			e->tmo = scattered(60, &b->seed);
			rc = event_add(b->dsp, e);
		}
		break;
	case OP_TMO_LATER:
		/* Each round starts 200 s further out than the last ended. */
		ts = scattered(1000 + 200 * b->round, &b->seed);
		rc = event_mod_timeout(e, &ts);
		break;
	case OP_TMO_EARLIER:
		/* Each round ends 100 s earlier than the last began. */
		ts = scattered(1000000 - 200 * b->round, &b->seed);
		rc = event_mod_timeout(e, &ts);
		break;
	case OP_RAW_MODIFY: {
		struct epoll_event ev = {(b->round & 1) ? EPOLLIN : EPOLLIN | EPOLLOUT, {.ptr = e}};
		rc = epoll_ctl(b->raw_ep, EPOLL_CTL_MOD, e->fd, &ev) < 0 ? -errno : 0;
		break;
	}
	case OP_TOUCH:
		/* What any call on a random event pays before the library runs. */
		*(volatile long *)&e->tmo.tv_nsec = scattered(1000, &b->seed).tv_nsec;
		break;
	case OP_RAW_REMOVE_ADD: {
		struct epoll_event ev = {EPOLLIN, {.ptr = e}};
		rc = epoll_ctl(b->raw_ep, EPOLL_CTL_DEL, e->fd, NULL) < 0 ||
				     epoll_ctl(b->raw_ep, EPOLL_CTL_ADD, e->fd, &ev) < 0
			     ? -errno : 0;
		break;
	}
	}
	if (rc < 0)
		die(op_names[op], -rc);
}

/* One round over all events; batches are timed when @timed. */
static void run_round(struct bench *b, int op, bool timed)
{
	shuffle(b);
	for (size_t i = 0; i < b->n; i += (size_t)cfg.batch) {
		size_t end = i + (size_t)cfg.batch;
		if (end > b->n)
			end = b->n;
		int64_t t0 = bench_now_ns();
		for (size_t k = i; k < end; k++)
			do_op(b, op, &b->evs[b->order[k]]);
		int64_t t1 = bench_now_ns();
		/* Only full batches: a short tail would weigh the clock more. */
		if (timed && end - i == (size_t)cfg.batch)
			b->samples[b->nsamples++] = (double)(t1 - t0) / (double)(end - i);
	}
	b->round++;
}

static void bench_size(size_t n, double result[NOPS])
{
	struct bench b = {.n = n, .seed = 0x9e3779b97f4a7c15ULL ^ n};

	b.dsp = new_dispatcher(CLOCK_MONOTONIC);
	if (!b.dsp)
		die("new_dispatcher", errno);
	b.evs = bench_calloc(n, sizeof(*b.evs));
	b.order = bench_calloc(n, sizeof(*b.order));
	b.samples = bench_calloc((size_t)cfg.rounds * (n / (size_t)cfg.batch + 1),
				 sizeof(*b.samples));
	if (!b.evs || !b.order || !b.samples)
		die("calloc", ENOMEM);
	for (size_t i = 0; i < n; i++) {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fd < 0)
			die("eventfd (raise the open-file limit?)", errno);
		struct timespec ts = scattered(60, &b.seed);
		b.evs[i] = EVENT_ON_STACK(never_cb, fd, EPOLLIN);
		b.evs[i].tmo = ts;
		int rc = event_add(b.dsp, &b.evs[i]);
		if (rc < 0)
			die("event_add", -rc);
		b.order[i] = (uint32_t)i;
	}
	b.raw_ep = epoll_create1(EPOLL_CLOEXEC);
	if (b.raw_ep < 0)
		die("epoll_create1", errno);
	for (size_t i = 0; i < n; i++) {
		struct epoll_event ev = {EPOLLIN, {.ptr = &b.evs[i]}};
		if (epoll_ctl(b.raw_ep, EPOLL_CTL_ADD, b.evs[i].fd, &ev) < 0)
			die("epoll_ctl", errno);
	}

	for (int op = 0; op < NOPS; op++) {
		if (op == OP_TMO_EARLIER) {
			/* Start far out, so that every timed move is earlier. */
			b.round = 0;
			for (size_t i = 0; i < n; i++) {
				struct timespec ts = {2000000, 0};
				event_mod_timeout(&b.evs[i], &ts);
			}
		}
		if (op == OP_TMO_LATER)
			b.round = 0;
		b.nsamples = 0;
		run_round(&b, op, false);
		for (long r = 0; r < cfg.rounds; r++)
			run_round(&b, op, true);
		result[op] = bench_median(b.samples, b.nsamples);
	}

	/* Every event is still registered: free_dispatcher() runs each one's
	 * cleanup_event_on_stack(), which closes its eventfd. */
	close(b.raw_ep);
	free_dispatcher(b.dsp);
	free(b.evs);
	free(b.order);
	free(b.samples);
}

/* ------------------------------------------------------------------------
 * --echo: a syscall-counting workload
 */

struct echo_end {
	struct event e;
	long count;
	bool client;
};

static long echo_target;
static bool echo_failed;

static int echo_cb(struct event *evt, uint32_t events)
{
	struct echo_end *end = (struct echo_end *)evt;
	char buf[16];
	struct timespec ts = {5, 0};

	if (evt->reason == REASON_TIMEOUT || (events & (EPOLLERR | EPOLLHUP))) {
		echo_failed = true;
		vent_loop_stop(evt->dsp);
		return EVENTCB_REMOVE;
	}
	ssize_t n = read(evt->fd, buf, sizeof(buf));
	if (n != (ssize_t)sizeof(buf)) {
		echo_failed = true;
		vent_loop_stop(evt->dsp);
		return EVENTCB_REMOVE;
	}
	end->count++;
	if (end->client && end->count == echo_target) {
		vent_loop_stop(evt->dsp);
		return EVENTCB_CONTINUE;
	}
	if (write(evt->fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
		echo_failed = true;
		vent_loop_stop(evt->dsp);
		return EVENTCB_REMOVE;
	}
	/* The minivent way: re-apply the mask, push the step's deadline. */
	if (cfg.earlier) {
		long ms = 1000000 - (end->count % 990000);
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = ms % 1000 * 1000000;
	}
	if (event_modify(evt) < 0 || event_mod_timeout(evt, &ts) < 0)
		echo_failed = true;
	return EVENTCB_CONTINUE;
}

static int run_echo(void)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct echo_end ends[2];
	int sv[2];

	if (!dsp)
		die("new_dispatcher", errno);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", errno);
	echo_target = cfg.echo;
	for (int i = 0; i < 2; i++) {
		/* --earlier starts above every later deadline. */
		ends[i].e = EVENT_W_TMO_ON_STACK(echo_cb, sv[i], EPOLLIN,
						 cfg.earlier ? 1001000000L : 5000000L);
		ends[i].count = 0;
		ends[i].client = i == 0;
		int rc = event_add(dsp, &ends[i].e);
		if (rc < 0)
			die("event_add", -rc);
	}
	char msg[16] = "ping";
	if (write(sv[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		die("write", errno);
	int64_t t0 = bench_now_ns();
	int rc = event_loop(dsp, NULL, NULL);
	int64_t t1 = bench_now_ns();
	if (rc < 0)
		die("event_loop", -rc);
	free_dispatcher(dsp);
	if (echo_failed || ends[0].count != cfg.echo) {
		fprintf(stderr, "%s: echo failed after %ld round trips\n", prog, ends[0].count);
		return 1;
	}
	printf("%s: %ld round trips (deadlines %s), %.0f ns each\n", prog, ends[0].count,
	       cfg.earlier ? "each earlier than the last" : "only pushed later",
	       (double)(t1 - t0) / (double)ends[0].count);
	return 0;
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [options]\n"
		"  -s, --sizes N,N,...   numbers of registered events (default 1000,5000,10000,19000)\n"
		"  -r, --rounds R        timed rounds over all events per operation (default 10)\n"
		"  -b, --batch B         operations per timed batch (default 64)\n"
		"      --sequential      visit the events in array order, not shuffled\n"
		"      --json            one JSON object instead of the table\n"
		"  -e, --echo K          instead: K echo round trips on one dispatcher, for strace\n"
		"      --earlier         with --echo: each step's deadline 1 ms earlier than the last\n"
		"  -h, --help            this help\n",
		prog);
}

static int parse_sizes(const char *arg)
{
	char *copy = strdup(arg), *save = NULL;

	if (!copy)
		return -1;
	cfg.nsizes = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg.nsizes == MAX_SIZES) {
			fprintf(stderr, "%s: --sizes: at most %d sizes\n", prog, MAX_SIZES);
			free(copy);
			return -1;
		}
		if (bench_parse_long(prog, "--sizes", tok, 1, MAX_EVENTS,
				     &cfg.sizes[cfg.nsizes]) < 0) {
			free(copy);
			return -1;
		}
		cfg.nsizes++;
	}
	free(copy);
	return cfg.nsizes ? 0 : -1;
}

static int parse_opts(int argc, char *argv[])
{
	enum { OPT_JSON = 256, OPT_EARLIER, OPT_SEQUENTIAL };
	static const struct option longopts[] = {
		{"sizes", required_argument, NULL, 's'},
		{"rounds", required_argument, NULL, 'r'},
		{"batch", required_argument, NULL, 'b'},
		{"echo", required_argument, NULL, 'e'},
		{"earlier", no_argument, NULL, OPT_EARLIER},
		{"json", no_argument, NULL, OPT_JSON},
		{"sequential", no_argument, NULL, OPT_SEQUENTIAL},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "s:r:b:e:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_sizes(optarg) < 0)
				return -1;
			break;
		case 'r':
			if (bench_parse_long(prog, "--rounds", optarg, 1, 100000, &cfg.rounds))
				return -1;
			break;
		case 'b':
			if (bench_parse_long(prog, "--batch", optarg, 1, 100000, &cfg.batch))
				return -1;
			break;
		case 'e':
			if (bench_parse_long(prog, "--echo", optarg, 1, 1000000000, &cfg.echo))
				return -1;
			break;
		case OPT_EARLIER:
			cfg.earlier = true;
			break;
		case OPT_JSON:
			cfg.json = true;
			break;
		case OPT_SEQUENTIAL:
			cfg.sequential = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (bench_no_operands(prog, argc, argv) < 0)
		return -1;
	if (cfg.earlier && !cfg.echo) {
		fprintf(stderr, "%s: --earlier needs --echo\n", prog);
		return -1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	static double res[MAX_SIZES][NOPS];

	if (parse_opts(argc, argv) < 0)
		return 2;
	if (cfg.echo)
		return run_echo();

	/* N eventfds plus the dispatcher's own and stdio. */
	long nofile = bench_raise_nofile();
	for (int s = 0; s < cfg.nsizes; s++) {
		if (nofile >= 0 && cfg.sizes[s] + 16 > nofile) {
			fprintf(stderr, "%s: %ld events need more than the open-file limit %lu\n",
				prog, cfg.sizes[s], (unsigned long)nofile);
			return 1;
		}
	}

	if (!cfg.json) {
		printf("median ns per operation; %ld timed rounds over all events (%s order), "
		       "batches of %ld\n", cfg.rounds, cfg.sequential ? "array" : "shuffled",
		       cfg.batch);
		printf("%8s", "events");
		for (int op = 0; op < NOPS; op++)
			printf(" %11s", op_names[op]);
		printf("\n");
	}
	for (int s = 0; s < cfg.nsizes; s++) {
		bench_size((size_t)cfg.sizes[s], res[s]);
		if (!cfg.json) {
			printf("%8ld", cfg.sizes[s]);
			for (int op = 0; op < NOPS; op++)
				printf(" %11.1f", res[s][op]);
			printf("\n");
			fflush(stdout);
		}
	}
	const int last = cfg.nsizes - 1;
	if (cfg.json) {
		printf("{\"rounds\": %ld, \"batch\": %ld, \"results\": [", cfg.rounds, cfg.batch);
		for (int s = 0; s < cfg.nsizes; s++) {
			printf("%s{\"events\": %ld", s ? ", " : "", cfg.sizes[s]);
			for (int op = 0; op < NOPS; op++)
				printf(", \"%s\": %.1f", op_names[op], res[s][op]);
			printf("}");
		}
		printf("]}\n");
	} else if (last > 0) {
		printf("%8s", "ratio");
		for (int op = 0; op < NOPS; op++)
			printf(" %11.2f", res[0][op] > 0 ? res[last][op] / res[0][op] : 0.0);
		printf("   (%ld / %ld events)\n", cfg.sizes[last], cfg.sizes[0]);
	}
	return 0;
}
