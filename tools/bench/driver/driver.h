/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * driver.h - the tiny interface between the benchmark programs
 * (echo-bench, ring-bench, timer-bench) and one event library each
 * (tools/bench/driver/<lib>.c): adding a library to every benchmark means
 * one driver file.
 *
 * A driver owns the loop and the watchers; the benchmark owns the fds and
 * the work done per event (ring_fire(), echo-bench's callbacks), so every
 * library runs exactly the same user code and only the library calls differ.
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
 * echo-bench: an fd watcher with a timeout, the way a minivent program
 * watches a connection: the mask is switched between EPOLLIN, EPOLLOUT and
 * 0 per step and the step's timeout re-armed with it. The benchmark embeds
 * it in its own connection record and sets @fd and @cb before io_add().
 */
struct bench_io;
/*
 * @revents: the epoll mask that fired (EPOLLIN, EPOLLOUT, EPOLLHUP,
 * EPOLLERR; libraries that do not report hang-ups report them as
 * readable), or 0 when the timeout expired. May call io_set() or io_del()
 * on @io (and free it after io_del()), and loop_stop().
 */
typedef void (*bench_io_fn)(struct bench_io *io, uint32_t revents);
struct bench_io {
	int fd;
	uint32_t events; /* the mask in force (io_add() and io_set() set it) */
	bench_io_fn cb;
	void *drv;       /* driver state */
};
struct bench_loop; /* the driver's loop, one per thread */

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
	/*
	 * timer-bench --from callback: runs one non-blocking loop iteration
	 * in which one always-ready fd watcher (an eventfd that is never
	 * read) has its callback call @work(@ctx), which re-arms timers with
	 * timer_mod() the way a server's I/O callback does. NULL if the
	 * driver has no such mode.
	 */
	int (*timer_batch)(struct timer_ctx *ctx, void (*work)(struct timer_ctx *ctx));

	/*
	 * echo-bench. Timeouts are relative, in ns; < 0 means none. The raw
	 * driver arms a timeout only while the mask is 0 (the client's pause
	 * between requests): the library-free limit has no per-step timeouts.
	 */
	struct bench_loop *(*loop_new)(void);
	/*
	 * Runs callbacks until loop_stop() (returns 0) or until CLOCK_MONOTONIC
	 * reaches @deadline_ns (returns 1: the guard against a hung peer);
	 * < 0 on error. Called once per loop.
	 */
	int (*loop_run)(struct bench_loop *loop, int64_t deadline_ns);
	/* From a callback on the loop's thread. */
	void (*loop_stop)(struct bench_loop *loop);
	/* Frees the loop; the watchers still on it are dropped, not called. */
	void (*loop_free)(struct bench_loop *loop);
	int (*io_add)(struct bench_loop *loop, struct bench_io *io, uint32_t events,
		      int64_t tmo_ns);
	/* The new mask and the timeout of the next step; < 0 on error. */
	int (*io_set)(struct bench_io *io, uint32_t events, int64_t tmo_ns);
	/* Also from @io's own callback; @io may be freed once it returns. */
	void (*io_del)(struct bench_io *io);
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
