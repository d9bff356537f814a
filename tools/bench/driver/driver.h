/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * driver.h - the tiny interface between the benchmark programs
 * (ring-bench, timer-bench) and one event library each (tools/bench/driver/<lib>.c).
 *
 * A driver owns the loop and the watchers; the benchmark owns the fds and
 * the work done per event (ring_fire()), so every library runs exactly the
 * same user code and only the library calls differ.
 */
#ifndef VENT_BENCH_DRIVER_H
#define VENT_BENCH_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

struct ring_ctx {
	int n;          /* number of fds, one watcher each */
	const int *fds; /* fds[i]: readable end of ring element i */
	bool timeouts;  /* each watcher has a timeout, re-armed on every event */
	void *drv;      /* driver state */
};

struct timer_ctx {
	long n;    /* number of timers */
	void *drv; /* driver state */
};

/*
 * Implemented by ring-bench.c: the callback work for ring element @idx.
 * Reads the fd, passes the token on, and re-arms the element's timeout
 * through ring_rearm() if timeouts are on.
 */
void ring_fire(struct ring_ctx *ctx, int idx);
/* Random relative timeout for a re-arm, in ns (never fires during a run). */
int64_t ring_timeout_ns(void);

struct bench_driver {
	const char *name;
	const char *(*version)(void);

	/* ring-bench */
	int (*ring_init)(struct ring_ctx *ctx);
	/* (Re-)registers all n watchers; with timeouts, each with ring_timeout_ns(). */
	int (*ring_register)(struct ring_ctx *ctx);
	/* Runs one non-blocking loop iteration. */
	int (*ring_poll)(struct ring_ctx *ctx);
	/* Called from ring_fire(), i.e. from inside the watcher's callback. */
	void (*ring_rearm)(struct ring_ctx *ctx, int idx, int64_t tmo_ns);
	void (*ring_fini)(struct ring_ctx *ctx);

	/* timer-bench: timer-only watchers, relative deadlines in ns */
	int (*timer_init)(struct timer_ctx *ctx);
	void (*timer_add)(struct timer_ctx *ctx, long i, int64_t after_ns);
	void (*timer_mod)(struct timer_ctx *ctx, long i, int64_t after_ns);
	void (*timer_cancel)(struct timer_ctx *ctx, long i);
	void (*timer_fini)(struct timer_ctx *ctx);
};

#ifdef HAVE_VENT
extern const struct bench_driver bench_driver_vent;
#endif
extern const struct bench_driver bench_driver_raw;
#ifdef HAVE_LIBEV
extern const struct bench_driver bench_driver_libev;
extern const struct bench_driver bench_driver_libev_now;
#endif
#ifdef HAVE_LIBEVENT
extern const struct bench_driver bench_driver_libevent;
#endif
#ifdef HAVE_LIBUV
extern const struct bench_driver bench_driver_libuv;
#endif
#ifdef HAVE_SDEVENT
extern const struct bench_driver bench_driver_sdevent;
#endif

/* NULL-terminated list of the drivers built in, vent first. */
extern const struct bench_driver *const bench_drivers[];
const struct bench_driver *bench_find_driver(const char *name);
/*
 * libevent exports event_add() and event_loop(), as vent does (minivent's
 * names), so its driver lives in separate programs that do not link vent:
 * <tool>-libevent next to <tool>. When @name is not built in, this execs
 * <tool>-<name> with the same arguments if it exists; returns otherwise.
 */
void bench_exec_peer(const char *tool, const char *name, char *argv[]);
/*
 * The driver for --lib @name: a built-in one, else the peer program
 * (bench_exec_peer(), which does not return if it runs). Prints
 * "<tool>: --lib: invalid value ..." and returns NULL when there is none.
 */
const struct bench_driver *bench_pick_driver(const char *tool, const char *name, char *argv[]);
/* --list: prints "<name> <version>" per driver built in. */
void bench_list_drivers(void);

#endif /* VENT_BENCH_DRIVER_H */
