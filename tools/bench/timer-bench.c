/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * timer-bench - timer-only watchers on vent and its peers: add T oneshot
 * timers (none fires during the run), re-arm M * T times, then cancel them
 * all. Prints ns per operation (per phase and overall), the peak RSS, and
 * the library's heap bytes per timer (mallinfo2 delta across the adds; the
 * user's own timer structs are allocated before and not counted).
 *
 * What a server does is the default: --order random re-arms a random timer
 * each time (the connection that just had I/O) and adds and cancels in a
 * random permutation, so every operation starts from a cold user struct,
 * library record and heap entry once T outgrows the caches. --order
 * sequential walks the timers in index order (M passes), which keeps all of
 * that nearly sequential: it is the figure this tool printed before, kept
 * for comparison. --pattern random gives each add and re-arm a random
 * timeout of 1..10 s; --pattern later always the same 10 s, so a re-arm
 * only ever moves a deadline later (an inactivity timeout).
 *
 * --from loop (the default) makes every call from the program's main loop,
 * outside any callback. --from callback makes the re-arms from inside the
 * library's loop, as a server does: one loop iteration per --batch K
 * re-arms, in which one always-ready fd watcher's callback re-arms K timers
 * (vent: event_mod_timeout() from an event callback; libev: ev_timer_again()
 * from an ev_io callback, with the loop's cached time, or ev_now_update()
 * per arm for libev-now). The loop iteration itself (one epoll_wait) is
 * included, amortised over K; "iteration" gives its cost alone, measured
 * with no re-arm in it.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-util.h"
#include "driver/driver.h"

#define BENCH_TOOL "timer-bench"
static const char *prog = BENCH_TOOL;

static struct {
	long timers, rearms;
	bool json;
	bool sequential; /* --order */
	bool later;      /* --pattern */
	bool from_cb;    /* --from */
	long batch;      /* --batch */
	const char *lib;
} cfg = {.timers = 100000, .rearms = 4, .batch = 100, .lib = "vent"};

#define TIMEOUT_MIN_NS 1000000000LL  /* --pattern random: 1..10 s */
#define TIMEOUT_SPAN_NS 9000000000ULL
#define TIMEOUT_LATER_NS 10000000000LL  /* --pattern later: always 10 s */

/*
 * --from callback runs the library's loop, which would run the timers that
 * expire: every timeout is 1000 s longer there, so that none does however
 * slow the run (valgrind). Shifting all deadlines alike leaves the order,
 * so the heap's work, as it is.
 */
#define FROM_CALLBACK_SHIFT_NS 1000000000000LL

static int64_t next_timeout(uint64_t *seed)
{
	const int64_t shift = cfg.from_cb ? FROM_CALLBACK_SHIFT_NS : 0;

	if (cfg.later)
		return shift + TIMEOUT_LATER_NS;
	return shift + TIMEOUT_MIN_NS + (int64_t)(bench_rand(seed) % TIMEOUT_SPAN_NS);
}

/* The order of the adds and of the cancels: 0..T-1, or a random permutation. */
static long *make_order(long T, uint64_t *seed)
{
	long *o = bench_calloc((size_t)T, sizeof(*o));

	if (!o)
		return NULL;
	for (long i = 0; i < T; i++)
		o[i] = i;
	if (!cfg.sequential) {
		for (long i = T - 1; i > 0; i--) {
			long j = (long)(bench_rand(seed) % (uint64_t)(i + 1));
			long t = o[i];

			o[i] = o[j];
			o[j] = t;
		}
	}
	return o;
}

/* --from callback: what one batch's callback does (K re-arms). */
static struct {
	const struct bench_driver *drv;
	uint64_t *seed, *pick;
	long next;  /* --order sequential: the next index */
	long k;     /* re-arms in this batch */
} work;

static void rearm_batch(struct timer_ctx *ctx)
{
	for (long j = 0; j < work.k; j++) {
		long i;

		if (cfg.sequential) {
			i = work.next;
			work.next = (work.next + 1) % cfg.timers;
		} else {
			i = (long)(bench_rand(work.pick) % (uint64_t)cfg.timers);
		}
		work.drv->timer_mod(ctx, i, next_timeout(work.seed));
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"Add, re-arm and cancel timer-only watchers on one library.\n"
		"  -l, --lib NAME      library driver (default vent; --list shows them)\n"
		"  -T, --timers T      number of timers (default 100k; k/m suffixes)\n"
		"  -M, --rearms M      re-arms per timer (default 4): M * T in all\n"
		"      --order O       random (default: a random timer per re-arm, adds and\n"
		"                      cancels in a random permutation) or sequential (index\n"
		"                      order, the figure this tool printed before)\n"
		"      --pattern P     random (default: timeouts of 1..10 s) or later (always\n"
		"                      10 s: a re-arm only moves a deadline later)\n"
		"      --from F        loop (default: re-arms made outside the library's\n"
		"                      loop) or callback (from an fd watcher's callback,\n"
		"                      --batch re-arms per loop iteration)\n"
		"      --batch K       re-arms per loop iteration with --from callback\n"
		"                      (default 100)\n"
		"      --json          one JSON object\n"
		"      --list          list the drivers built in\n"
		"  -h, --help          this help\n",
		prog);
}

int main(int argc, char *argv[])
{
	enum { OPT_JSON = 256, OPT_LIST, OPT_ORDER, OPT_PATTERN, OPT_FROM, OPT_BATCH };
	static const struct option longopts[] = {
		{"lib", required_argument, NULL, 'l'},
		{"timers", required_argument, NULL, 'T'},
		{"rearms", required_argument, NULL, 'M'},
		{"order", required_argument, NULL, OPT_ORDER},
		{"pattern", required_argument, NULL, OPT_PATTERN},
		{"from", required_argument, NULL, OPT_FROM},
		{"batch", required_argument, NULL, OPT_BATCH},
		{"json", no_argument, NULL, OPT_JSON},
		{"list", no_argument, NULL, OPT_LIST},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const struct bench_driver *drv;
	struct timer_ctx ctx = {0};
	uint64_t seed = 0x9E3779B97F4A7C15ULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "l:T:M:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			cfg.lib = optarg;
			break;
		case 'T':
			if (bench_parse_long(prog, "--timers", optarg, 1, 100000000, &cfg.timers))
				return 2;
			break;
		case 'M':
			if (bench_parse_long(prog, "--rearms", optarg, 0, 1000, &cfg.rearms))
				return 2;
			break;
		case OPT_ORDER:
			if (strcmp(optarg, "random") && strcmp(optarg, "sequential")) {
				fprintf(stderr, "%s: --order: invalid value '%s' (random or sequential)\n",
					prog, optarg);
				return 2;
			}
			cfg.sequential = !strcmp(optarg, "sequential");
			break;
		case OPT_PATTERN:
			if (strcmp(optarg, "random") && strcmp(optarg, "later")) {
				fprintf(stderr, "%s: --pattern: invalid value '%s' (random or later)\n",
					prog, optarg);
				return 2;
			}
			cfg.later = !strcmp(optarg, "later");
			break;
		case OPT_FROM:
			if (strcmp(optarg, "loop") && strcmp(optarg, "callback")) {
				fprintf(stderr, "%s: --from: invalid value '%s' (loop or callback)\n",
					prog, optarg);
				return 2;
			}
			cfg.from_cb = !strcmp(optarg, "callback");
			break;
		case OPT_BATCH:
			if (bench_parse_long(prog, "--batch", optarg, 1, 1000000, &cfg.batch))
				return 2;
			break;
		case OPT_JSON:
			cfg.json = true;
			break;
		case OPT_LIST:
			bench_list_drivers();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (bench_no_operands(prog, argc, argv) < 0)
		return 2;
	drv = bench_pick_driver(BENCH_TOOL, cfg.lib, argv);
	if (!drv)
		return 2;

	if (cfg.from_cb && !drv->timer_batch) {
		fprintf(stderr, "%s: --from callback: not supported by the %s driver\n", prog,
			drv->name);
		return 2;
	}

	ctx.n = cfg.timers;
	const long T = cfg.timers;
	long *adds = make_order(T, &seed);
	long *cancels = make_order(T, &seed);
	if (!adds || !cancels) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	if (drv->timer_init(&ctx) < 0) {
		fprintf(stderr, "%s: %s: init failed\n", prog, drv->name);
		return 1;
	}
	size_t mem0 = bench_heap_bytes();
	int64_t t0 = bench_now_ns();
	for (long k = 0; k < T; k++)
		drv->timer_add(&ctx, adds[k], next_timeout(&seed));
	int64_t t1 = bench_now_ns();
	const int64_t add_time = t1 - t0;
	double mem_per_timer = (double)(bench_heap_bytes() - mem0) / (double)T;
	double iter_ns = 0;
	if (cfg.from_cb) {
		uint64_t pick = seed ^ 0xD1B54A32D192ED03ULL;
		work.drv = drv;
		work.seed = &seed;
		work.pick = &pick;
		work.k = 0;
		/* The loop iteration alone (and the watcher's setup). */
		drv->timer_batch(&ctx, rearm_batch);
		int64_t i0 = bench_now_ns();
		for (int k = 0; k < 1000; k++)
			drv->timer_batch(&ctx, rearm_batch);
		iter_ns = (double)(bench_now_ns() - i0) / 1000;
		t1 = bench_now_ns();
		for (long left = T * cfg.rearms; left > 0; left -= work.k) {
			work.k = left < cfg.batch ? left : cfg.batch;
			if (drv->timer_batch(&ctx, rearm_batch) < 0) {
				fprintf(stderr, "%s: %s: loop iteration failed\n", prog, drv->name);
				return 1;
			}
		}
	} else if (cfg.sequential) {
		for (long m = 0; m < cfg.rearms; m++)
			for (long i = 0; i < T; i++)
				drv->timer_mod(&ctx, i, next_timeout(&seed));
	} else {
		/* The index comes from a second generator, so that it and the
		 * timeout are independent; both cost a few instructions. */
		uint64_t pick = seed ^ 0xD1B54A32D192ED03ULL;
		for (long k = T * cfg.rearms; k > 0; k--)
			drv->timer_mod(&ctx, (long)(bench_rand(&pick) % (uint64_t)T),
				       next_timeout(&seed));
	}
	int64_t t2 = bench_now_ns();
	for (long k = 0; k < T; k++)
		drv->timer_cancel(&ctx, cancels[k]);
	int64_t t3 = bench_now_ns();
	drv->timer_fini(&ctx);
	free(adds);
	free(cancels);

	double add = (double)add_time / (double)T;
	double mod = cfg.rearms ? (double)(t2 - t1) / (double)(T * cfg.rearms) : 0;
	double cancel = (double)(t3 - t2) / (double)T;
	double all = (double)(add_time + t3 - t1) / (double)(T * (cfg.rearms + 2));
	const char *from = cfg.from_cb ? "callback" : "loop";
	if (cfg.json)
		printf("{\"tool\":\"timer-bench\",\"lib\":\"%s\",\"version\":\"%s\",\"timers\":%ld,"
		       "\"order\":\"%s\",\"pattern\":\"%s\",\"from\":\"%s\",\"batch\":%ld,"
		       "\"rearms\":%ld,\"add_ns\":%.1f,\"mod_ns\":%.1f,\"cancel_ns\":%.1f,"
		       "\"iteration_ns\":%.1f,\"ns_per_op\":%.1f,\"peak_rss_kib\":%ld,"
		       "\"lib_bytes_per_timer\":%.1f}\n",
		       drv->name, drv->version(), T, cfg.sequential ? "sequential" : "random",
		       cfg.later ? "later" : "random", from, cfg.from_cb ? cfg.batch : 0, cfg.rearms,
		       add, mod, cancel, iter_ns, all, bench_peak_rss_kib(), mem_per_timer);
	else
		printf("timer-bench: %s %s, %ld timers, %ld re-arms each, %s order, %s pattern,"
		       " from the %s\n"
		       "  add %.1f ns, re-arm %.1f ns, cancel %.1f ns, all ops %.1f ns/op\n"
		       "  peak RSS %ld KiB, %.1f library bytes/timer\n",
		       drv->name, drv->version(), T, cfg.rearms,
		       cfg.sequential ? "sequential" : "random", cfg.later ? "later" : "random",
		       from, add, mod, cancel, all, bench_peak_rss_kib(), mem_per_timer);
	if (!cfg.json && cfg.from_cb)
		printf("  %ld re-arms per loop iteration; an iteration alone %.1f ns\n", cfg.batch,
		       iter_ns);
	return 0;
}
