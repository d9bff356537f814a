/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ring-bench - libevent's classic test/bench.c, as extended on libev's
 * benchmark page, on vent and its peers.
 *
 * N fds (socketpairs, or eventfds to get close to the fd limit), one read
 * watcher each. A round re-registers all N watchers (the "setup" time),
 * then writes to A evenly spaced fds; every callback reads its fd and, while
 * the round has writes left (W), writes to the next fd in the ring. The
 * round ends when every write was read. With --timeouts, every watcher
 * also has a timeout of 10..11 s, re-armed with a new random value on every
 * event (libev's extension). Prints the median setup and round times.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-util.h"
#include "driver/driver.h"

#define BENCH_TOOL "ring-bench"
static const char *prog = BENCH_TOOL;

static struct {
	long n, active, writes, rounds;
	bool timeouts, eventfd, json;
	const char *lib;
} cfg = {.n = 1000, .active = 100, .writes = 100, .rounds = 25, .lib = "vent"};

static const struct bench_driver *drv;
static int *rfds, *wfds;
static long count, fired, writes_left, failures;
static uint64_t seed = 0x1234567887654321ULL;

int64_t ring_timeout_ns(void)
{
	return 10000000000LL + (int64_t)(bench_rand(&seed) % 1000000000ULL);
}

void ring_fire(struct ring_ctx *ctx, int idx)
{
	if (cfg.eventfd) {
		uint64_t v;
		if (read(rfds[idx], &v, sizeof(v)) == sizeof(v))
			count += (long)v;
		else
			failures++;
	} else {
		char ch;
		ssize_t n = read(rfds[idx], &ch, 1);
		if (n >= 0)
			count += n;
		else
			failures++;
	}
	if (writes_left > 0) {
		int w = idx + 1 == ctx->n ? 0 : idx + 1;
		if (cfg.eventfd) {
			uint64_t one = 1;
			if (write(wfds[w], &one, sizeof(one)) != sizeof(one))
				failures++;
		} else if (write(wfds[w], "e", 1) != 1) {
			failures++;
		}
		writes_left--;
		fired++;
	}
	if (ctx->timeouts)
		drv->ring_rearm(ctx, idx, ring_timeout_ns());
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"libevent's bench.c ring (with libev's per-fd timeouts) on one library.\n"
		"  -l, --lib NAME      library driver (default vent; --list shows them)\n"
		"  -n, --fds N         ring elements (default 1000; k/m suffixes)\n"
		"  -a, --active A      active writers per round (default 100)\n"
		"  -w, --writes W      chained writes per round (default 100)\n"
		"  -r, --rounds R      rounds; medians are reported (default 25)\n"
		"  -T, --timeouts      per-fd timeout, re-armed on every event\n"
		"  -e, --eventfd       eventfds instead of socketpairs (1 fd per element)\n"
		"      --json          one JSON object\n"
		"      --list          list the drivers built in\n"
		"  -h, --help          this help\n",
		prog);
}

static int parse_opts(int argc, char *argv[])
{
	enum { OPT_JSON = 256, OPT_LIST };
	static const struct option longopts[] = {
		{"lib", required_argument, NULL, 'l'},
		{"fds", required_argument, NULL, 'n'},
		{"active", required_argument, NULL, 'a'},
		{"writes", required_argument, NULL, 'w'},
		{"rounds", required_argument, NULL, 'r'},
		{"timeouts", no_argument, NULL, 'T'},
		{"eventfd", no_argument, NULL, 'e'},
		{"json", no_argument, NULL, OPT_JSON},
		{"list", no_argument, NULL, OPT_LIST},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "l:n:a:w:r:Teh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			cfg.lib = optarg;
			break;
		case 'n':
			if (bench_parse_long(prog, "--fds", optarg, 2, 1000000, &cfg.n))
				return -1;
			break;
		case 'a':
			if (bench_parse_long(prog, "--active", optarg, 1, 1000000, &cfg.active))
				return -1;
			break;
		case 'w':
			if (bench_parse_long(prog, "--writes", optarg, 0, 100000000, &cfg.writes))
				return -1;
			break;
		case 'r':
			if (bench_parse_long(prog, "--rounds", optarg, 1, 100000, &cfg.rounds))
				return -1;
			break;
		case 'T':
			cfg.timeouts = true;
			break;
		case 'e':
			cfg.eventfd = true;
			break;
		case OPT_JSON:
			cfg.json = true;
			break;
		case OPT_LIST:
			bench_list_drivers();
			exit(0);
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
	drv = bench_pick_driver(BENCH_TOOL, cfg.lib, argv);
	if (!drv)
		return -1;
	if (cfg.active > cfg.n) {
		fprintf(stderr, "%s: --active: invalid value %ld (needs <= --fds %ld)\n", prog,
			cfg.active, cfg.n);
		return -1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct ring_ctx ctx = {0};

	if (parse_opts(argc, argv) < 0)
		return 2;
	long nofile = bench_raise_nofile();
	rfds = calloc((size_t)cfg.n, sizeof(*rfds));
	wfds = calloc((size_t)cfg.n, sizeof(*wfds));
	double *setup_us = calloc((size_t)cfg.rounds, sizeof(double));
	double *round_us = calloc((size_t)cfg.rounds, sizeof(double));
	if (!rfds || !wfds || !setup_us || !round_us) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	for (long i = 0; i < cfg.n; i++) {
		if (cfg.eventfd) {
			rfds[i] = wfds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (rfds[i] < 0)
				goto nofd;
		} else {
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
				       sv) < 0)
				goto nofd;
			rfds[i] = sv[0];
			wfds[i] = sv[1];
		}
		continue;
nofd:
		fprintf(stderr, "%s: creating fd %ld of %ld: %s (limit %ld; try --eventfd)\n",
			prog, i + 1, cfg.n, strerror(errno), nofile);
		return 1;
	}
	ctx.n = (int)cfg.n;
	ctx.fds = rfds;
	ctx.timeouts = cfg.timeouts;
	if (drv->ring_init(&ctx) < 0) {
		fprintf(stderr, "%s: %s: init failed\n", prog, drv->name);
		return 1;
	}

	size_t mem0 = bench_heap_bytes();
	double mem_per_event = -1;
	long space = cfg.n / cfg.active;
	for (long r = 0; r < cfg.rounds; r++) {
		int64_t t0 = bench_now_ns();
		if (drv->ring_register(&ctx) < 0) {
			fprintf(stderr, "%s: %s: registering failed\n", prog, drv->name);
			return 1;
		}
		int64_t t1 = bench_now_ns();
		if (r == 0)
			mem_per_event = (double)(bench_heap_bytes() - mem0) / (double)cfg.n;
		drv->ring_poll(&ctx);
		fired = 0;
		for (long i = 0; i < cfg.active; i++, fired++) {
			uint64_t one = 1;
			if (cfg.eventfd ? write(wfds[i * space], &one, 8) != 8
					: write(wfds[i * space], "e", 1) != 1)
				failures++;
		}
		count = 0;
		writes_left = cfg.writes;
		int64_t t2 = bench_now_ns();
		long polls = 0;
		do {
			drv->ring_poll(&ctx);
			polls++;
		} while (count != fired && polls < 100000000);
		int64_t t3 = bench_now_ns();
		setup_us[r] = (double)(t1 - t0) / 1e3;
		round_us[r] = (double)(t3 - t2) / 1e3;
		if (count != fired) {
			fprintf(stderr, "%s: round %ld did not complete (%ld of %ld)\n", prog, r,
				count, fired);
			return 1;
		}
	}
	double setup_med = bench_median(setup_us, (size_t)cfg.rounds);
	double round_med = bench_median(round_us, (size_t)cfg.rounds);
	drv->ring_fini(&ctx);

	if (cfg.json)
		printf("{\"tool\":\"ring-bench\",\"lib\":\"%s\",\"version\":\"%s\",\"fds\":%ld,"
		       "\"fd_type\":\"%s\",\"active\":%ld,\"writes\":%ld,\"timeouts\":%s,"
		       "\"rounds\":%ld,\"setup_us\":%.1f,\"round_us\":%.2f,"
		       "\"lib_bytes_per_event\":%.1f,\"failures\":%ld}\n",
		       drv->name, drv->version(), cfg.n, cfg.eventfd ? "eventfd" : "socketpair",
		       cfg.active, cfg.writes, cfg.timeouts ? "true" : "false", cfg.rounds,
		       setup_med, round_med, mem_per_event, failures);
	else
		printf("ring-bench: %s %s, %ld %ss, %ld active, %ld writes, timeouts %s, "
		       "%ld rounds\n  setup %.1f us, round %.2f us (medians), "
		       "%.1f library bytes/event\n",
		       drv->name, drv->version(), cfg.n, cfg.eventfd ? "eventfd" : "socketpair",
		       cfg.active, cfg.writes, cfg.timeouts ? "on" : "off", cfg.rounds, setup_med,
		       round_med, mem_per_event);
	for (long i = 0; i < cfg.n; i++) {
		close(rfds[i]);
		if (wfds[i] != rfds[i])
			close(wfds[i]);
	}
	free(rfds);
	free(wfds);
	free(setup_us);
	free(round_us);
	return failures ? 1 : 0;
}
