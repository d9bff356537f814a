/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio-bench - completions per second of 4 KiB preads of a cached file:
 * vent's pool with 1, 2 and 4 threads, against the same reads done
 * synchronously in one thread and (when built with libuv) libuv's
 * uv_fs_read() pool with UV_THREADPOOL_SIZE 1, 2 and 4.
 *
 * Every configuration keeps the same number of reads in flight (-q) and
 * runs in a forked child (libuv reads UV_THREADPOOL_SIZE once per process),
 * -r times; the median is reported.
 *
 * Usage: aio-bench [-n READS] [-q INFLIGHT] [-r REPEAT] [-t LIST] [-d DIR]
 *                  [-i sync|vent|libuv] [--json] [--smoke]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vent/aio.h>
#include <vent/event.h>

#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define BLOCK 4096
#define FILE_BLOCKS 4096 /* a 16 MiB file, read round and round */

static long nreads = 100000;
static int inflight = 128;
static int repeat = 5;
static int fd = -1;
static char (*bufs)[BLOCK];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t offset_of(long i)
{
	return (int64_t)(i % FILE_BLOCKS) * BLOCK;
}

/* --- synchronous: one thread, pread in a loop ---------------------------- */

static int run_sync(int threads, double *secs)
{
	int64_t t0 = now_ns();

	(void)threads;
	for (long i = 0; i < nreads; i++)
		if (pread(fd, bufs[0], BLOCK, offset_of(i)) != BLOCK)
			return -1;
	*secs = (double)(now_ns() - t0) / 1e9;
	return 0;
}

/* --- vent: a dispatcher and a pool; each completion submits the next ----- */

static struct vent_aio *vaio;
static long submitted, completed;
static int failed;

static void on_vent_read(int id, ssize_t result, void *arg)
{
	int slot = (int)(intptr_t)arg;

	(void)id;
	if (result != BLOCK)
		failed = 1;
	completed++;
	if (submitted < nreads) {
		if (vent_aio_pread(vaio, fd, bufs[slot], BLOCK, offset_of(submitted), on_vent_read,
				   arg) <= 0)
			failed = 1;
		submitted++;
	}
}

static int run_vent(int threads, double *secs)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	int64_t t0;

	vaio = vent_aio_new(dsp);
	if (!dsp || !vaio || vent_aio_set_threads(vaio, (unsigned)threads, (unsigned)threads) < 0)
		return -1;
	submitted = completed = 0;
	t0 = now_ns();
	for (int s = 0; s < inflight && submitted < nreads; s++, submitted++)
		if (vent_aio_pread(vaio, fd, bufs[s], BLOCK, offset_of(submitted), on_vent_read,
				   (void *)(intptr_t)s) <= 0)
			return -1;
	while (completed < nreads && !failed)
		if (vent_wait(dsp, -1, NULL) < 0)
			return -1;
	*secs = (double)(now_ns() - t0) / 1e9;
	vent_aio_free(vaio);
	free_dispatcher(dsp);
	return failed ? -1 : 0;
}

/* --- libuv: uv_fs_read on its pool, same window -------------------------- */

#ifdef HAVE_LIBUV
static uv_loop_t uvloop;
static uv_fs_t *uvreqs;

static void on_uv_read(uv_fs_t *req)
{
	int slot = (int)(req - uvreqs);

	if (req->result != BLOCK)
		failed = 1;
	uv_fs_req_cleanup(req);
	completed++;
	if (submitted < nreads) {
		uv_buf_t b = uv_buf_init(bufs[slot], BLOCK);

		if (uv_fs_read(&uvloop, req, fd, &b, 1, offset_of(submitted), on_uv_read) < 0)
			failed = 1;
		submitted++;
	}
}

static int run_libuv(int threads, double *secs)
{
	char n[16];
	int64_t t0;

	snprintf(n, sizeof(n), "%d", threads);
	setenv("UV_THREADPOOL_SIZE", n, 1);
	uvreqs = calloc((size_t)inflight, sizeof(*uvreqs));
	if (!uvreqs || uv_loop_init(&uvloop) < 0)
		return -1;
	submitted = completed = 0;
	t0 = now_ns();
	for (int s = 0; s < inflight && submitted < nreads; s++, submitted++) {
		uv_buf_t b = uv_buf_init(bufs[s], BLOCK);

		if (uv_fs_read(&uvloop, &uvreqs[s], fd, &b, 1, offset_of(submitted), on_uv_read) <
		    0)
			return -1;
	}
	uv_run(&uvloop, UV_RUN_DEFAULT);
	*secs = (double)(now_ns() - t0) / 1e9;
	uv_loop_close(&uvloop);
	free(uvreqs);
	return failed || completed != nreads ? -1 : 0;
}
#endif

/* --- driver -------------------------------------------------------------- */

/* Runs @fn in a child; returns the seconds it measured, or < 0. */
static double measure(int (*fn)(int, double *), int threads)
{
	int p[2], status;
	double secs = -1;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		double s;

		close(p[0]);
		if (fn(threads, &s) < 0)
			_exit(1);
		if (write(p[1], &s, sizeof(s)) != sizeof(s))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &secs, sizeof(secs)) != sizeof(secs))
		secs = -1;
	close(p[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		secs = -1;
	return secs;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int json;
static int first_row = 1;

static int report(const char *name, int (*fn)(int, double *), int threads)
{
	double v[64], med;

	for (int i = 0; i < repeat; i++) {
		double s = measure(fn, threads);

		if (s <= 0) {
			fprintf(stderr, "aio-bench: %s with %d threads failed\n", name, threads);
			return -1;
		}
		v[i] = (double)nreads / s;
	}
	qsort(v, (size_t)repeat, sizeof(v[0]), cmp_double);
	med = repeat % 2 ? v[repeat / 2] : (v[repeat / 2 - 1] + v[repeat / 2]) / 2;
	if (json)
		printf("%s\n  {\"impl\": \"%s\", \"threads\": %d, \"reads\": %ld, \"inflight\": %d, "
		       "\"repeat\": %d, \"median_per_s\": %.0f, \"min_per_s\": %.0f, "
		       "\"max_per_s\": %.0f}",
		       first_row ? "[" : ",", name, threads, nreads, inflight, repeat, med, v[0],
		       v[repeat - 1]);
	else
		printf("%-8s %7d %14.0f %14.0f %14.0f\n", name, threads, med, v[0], v[repeat - 1]);
	first_row = 0;
	return 0;
}

static long parse(const char *arg, const char *opt, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || *end || v < min || v > max) {
		fprintf(stderr, "aio-bench: invalid value '%s' for %s (%ld..%ld)\n", arg, opt, min,
			max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reads", required_argument, NULL, 'n' },
		{ "inflight", required_argument, NULL, 'q' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "dir", required_argument, NULL, 'd' },
		{ "impl", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "smoke", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char threads_list[64] = "1,2,4";
	const char *only = NULL;
	char path[4096];
	char *tok, *save;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "n:q:r:t:d:i:js", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			nreads = parse(optarg, "-n", 1, 100000000);
			break;
		case 'q':
			inflight = (int)parse(optarg, "-q", 1, 4096);
			break;
		case 'r':
			repeat = (int)parse(optarg, "-r", 1, 64);
			break;
		case 't':
			snprintf(threads_list, sizeof(threads_list), "%s", optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'i':
			if (strcmp(optarg, "sync") && strcmp(optarg, "vent") && strcmp(optarg, "libuv")) {
				fprintf(stderr, "aio-bench: invalid value '%s' for -i\n", optarg);
				return 2;
			}
			only = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			nreads = 5000;
			repeat = 1;
			break;
		default:
			fprintf(stderr, "aio-bench: unrecognized option\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aio-bench: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	/* The file: 16 MiB, written and read once so it is in the page cache. */
	snprintf(path, sizeof(path), "%s/aio-bench.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	unlink(path);
	bufs = calloc((size_t)inflight, BLOCK);
	if (!bufs)
		return 1;
	memset(bufs[0], 'x', BLOCK);
	for (int i = 0; i < FILE_BLOCKS; i++)
		if (pwrite(fd, bufs[0], BLOCK, (off_t)i * BLOCK) != BLOCK) {
			perror("pwrite");
			return 1;
		}
	for (int i = 0; i < FILE_BLOCKS; i++)
		if (pread(fd, bufs[0], BLOCK, (off_t)i * BLOCK) != BLOCK)
			return 1;

	if (!json) {
		printf("# %ld preads of 4 KiB (cached 16 MiB file), %d in flight, median of %d\n",
		       nreads, inflight, repeat);
		printf("%-8s %7s %14s %14s %14s\n", "impl", "threads", "reads/s", "min", "max");
	}
#define WANT(name) (!only || !strcmp(only, name))
	if (WANT("sync"))
		rc |= report("sync", run_sync, 1);
	snprintf(path, sizeof(path), "%s", threads_list);
	for (tok = strtok_r(path, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int t = (int)parse(tok, "-t", 1, 1024);

		if (WANT("vent"))
			rc |= report("vent", run_vent, t);
#ifdef HAVE_LIBUV
		if (WANT("libuv"))
			rc |= report("libuv", run_libuv, t);
#endif
	}
	if (json)
		printf("\n]\n");
	close(fd);
	free(bufs);
	return rc ? 1 : 0;
}
