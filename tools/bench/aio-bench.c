/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * aio-bench - completions per second of 4 KiB preads: vent's thread pool
 * with 1, 2 and 4 threads and vent's io_uring backend, against the same
 * reads done synchronously in one thread and (when built with libuv)
 * libuv's uv_fs_read() pool with UV_THREADPOOL_SIZE 1, 2 and 4.
 *
 * Every configuration keeps the same number of reads in flight (each -q
 * depth in turn) and runs in a forked child (libuv reads
 * UV_THREADPOOL_SIZE once per process). The configurations are
 * interleaved: round 1 runs each once, round 2 again, ... (-r rounds), so
 * a noisy neighbour hits all of them alike; the median is reported.
 * Offsets are random (a fixed seed, the same for every run) or sequential;
 * --cold evicts the file from the page cache (POSIX_FADV_DONTNEED) before
 * every run. With --op meta, each operation is openat + statx (of the new
 * fd, AT_EMPTY_PATH) + close of one of 1000 files in a fresh directory,
 * chained per slot; libuv does uv_fs_open + uv_fs_fstat + uv_fs_close.
 * "cpu us" is the median CPU time per read (or file) of the whole child
 * (every thread, user and system): on a shared, loaded machine it varies
 * much less than the rate.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vent/aio.h>
#include <vent/event.h>

#include "bench-util.h"

#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#define BLOCK 4096

static const char usage[] =
	"Usage: aio-bench [options]\n"
	"  -n, --reads N        reads per run (default 100000)\n"
	"  -q, --inflight LIST  reads in flight, e.g. 1,32,128 (default 128)\n"
	"  -r, --repeat N       interleaved rounds; the median is reported (default 5)\n"
	"  -t, --threads LIST   pool sizes for vent's pool and libuv (default 1,2,4)\n"
	"  -b, --backend B      vent backends: pool, uring or both (default both)\n"
	"  -i, --impl I         only sync, vent or libuv\n"
	"  -p, --pattern P      random or seq offsets (default random)\n"
	"  -c, --cold           evict the file from the page cache before each run\n"
	"  -o, --op OP          read (4 KiB preads, default) or meta (openat + statx +\n"
	"                       close of one of 1000 small files, counted per file)\n"
	"  -m, --size MIB       file size (default 16)\n"
	"  -d, --dir DIR        where the file goes (default $TMPDIR or /tmp)\n"
	"      --json           JSON rows instead of the table\n"
	"      --smoke          5000 reads, one round (a functional check)\n"
	"  -h, --help           this text\n";

static long nreads = 100000;
static int inflight = 128;
static int repeat = 5;
static int fd = -1;
static int cold;
static int random_offsets = 1;
static long file_blocks = 4096; /* 16 MiB, read round and round */
static char (*bufs)[BLOCK];
static int64_t *offsets; /* per read, computed once: the same for every run */
static int meta;         /* --op meta */
static int meta_dir = -1;
static char meta_path[4096]; /* the directory of the files */
enum { META_FILES = 1000 };

static int64_t offset_of(long i)
{
	return offsets[i];
}

static void make_offsets(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (long i = 0; i < nreads; i++) {
		if (random_offsets) {
			/* xorshift64 */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			offsets[i] = (int64_t)(x % (uint64_t)file_blocks) * BLOCK;
		} else {
			offsets[i] = (int64_t)(i % file_blocks) * BLOCK;
		}
	}
}

/* --- synchronous: one thread, pread in a loop ---------------------------- */

static int run_sync(int threads, double *secs)
{
	int64_t t0 = bench_now_ns();

	(void)threads;
	for (long i = 0; i < nreads; i++)
		if (pread(fd, bufs[0], BLOCK, offset_of(i)) != BLOCK)
			return -1;
	*secs = (double)(bench_now_ns() - t0) / 1e9;
	return 0;
}

static void meta_name(long i, char *name, size_t size)
{
	snprintf(name, size, "f%ld", i % META_FILES);
}

static int run_sync_meta(int threads, double *secs)
{
	int64_t t0 = bench_now_ns();
	struct statx stx;
	char name[32];

	(void)threads;
	for (long i = 0; i < nreads; i++) {
		int f;

		meta_name(i, name, sizeof(name));
		f = openat(meta_dir, name, O_RDONLY | O_CLOEXEC);
		if (f < 0 || statx(f, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0 ||
		    close(f) < 0)
			return -1;
	}
	*secs = (double)(bench_now_ns() - t0) / 1e9;
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

/* --op meta: slot s runs openat -> statx -> close, then the next file. */
struct meta_slot {
	int step; /* 0 openat, 1 statx, 2 close */
	int fd;
	struct statx stx;
};
static struct meta_slot *mslots;

static void on_vent_meta(int id, ssize_t result, void *arg);

static int meta_open_next(struct meta_slot *m)
{
	char name[32];

	meta_name(submitted++, name, sizeof(name));
	m->step = 0;
	return vent_aio_openat(vaio, meta_dir, name, O_RDONLY | O_CLOEXEC, 0, on_vent_meta, m);
}

static void on_vent_meta(int id, ssize_t result, void *arg)
{
	struct meta_slot *m = arg;
	int rc = 0;

	(void)id;
	if (result < 0) {
		failed = 1;
		return;
	}
	switch (m->step) {
	case 0:
		m->fd = (int)result;
		m->step = 1;
		rc = vent_aio_statx(vaio, m->fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &m->stx,
				    on_vent_meta, m);
		break;
	case 1:
		m->step = 2;
		rc = vent_aio_close(vaio, m->fd, on_vent_meta, m);
		break;
	default:
		completed++;
		if (submitted < nreads)
			rc = meta_open_next(m);
		break;
	}
	if (rc < 0)
		failed = 1;
}

static int run_vent_backend(int backend, int threads, double *secs)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	int64_t t0;

	vaio = vent_aio_new_backend(dsp, backend);
	if (!dsp || !vaio || vent_aio_set_threads(vaio, (unsigned)threads, (unsigned)threads) < 0)
		return -1;
	submitted = completed = 0;
	t0 = bench_now_ns();
	for (int s = 0; s < inflight && submitted < nreads; s++)
		if (meta ? meta_open_next(&mslots[s]) <= 0
			 : vent_aio_pread(vaio, fd, bufs[s], BLOCK, offset_of(submitted++),
					  on_vent_read, (void *)(intptr_t)s) <= 0)
			return -1;
	while (completed < nreads && !failed)
		if (vent_wait(dsp, -1, NULL) < 0)
			return -1;
	*secs = (double)(bench_now_ns() - t0) / 1e9;
	vent_aio_free(vaio);
	free_dispatcher(dsp);
	return failed ? -1 : 0;
}

static int run_vent_pool(int threads, double *secs)
{
	return run_vent_backend(VENT_AIO_POOL, threads, secs);
}

static int run_vent_uring(int threads, double *secs)
{
	return run_vent_backend(VENT_AIO_URING, threads, secs);
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

/* --op meta on libuv: uv_fs_open -> uv_fs_fstat -> uv_fs_close. */
static void on_uv_meta(uv_fs_t *req);

static int uv_meta_next(uv_fs_t *req)
{
	char name[64];

	meta_name(submitted++, name, sizeof(name));
	req->data = (void *)(intptr_t)0;
	/* libuv resolves relative paths against the working directory */
	return uv_fs_open(&uvloop, req, name, O_RDONLY | O_CLOEXEC, 0, on_uv_meta);
}

static void on_uv_meta(uv_fs_t *req)
{
	intptr_t step = (intptr_t)req->data;
	ssize_t res = req->result;
	int rc = 0;

	uv_fs_req_cleanup(req);
	if (res < 0) {
		failed = 1;
		return;
	}
	if (step == 0) {
		req->data = (void *)(intptr_t)(1 | (res << 2));
		rc = uv_fs_fstat(&uvloop, req, (uv_file)res, on_uv_meta);
	} else if ((step & 3) == 1) {
		req->data = (void *)(intptr_t)(2 | (step & ~(intptr_t)3));
		rc = uv_fs_close(&uvloop, req, (uv_file)(step >> 2), on_uv_meta);
	} else {
		completed++;
		if (submitted < nreads)
			rc = uv_meta_next(req);
	}
	if (rc < 0)
		failed = 1;
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
	t0 = bench_now_ns();
	for (int s = 0; s < inflight && submitted < nreads; s++) {
		uv_buf_t b = uv_buf_init(bufs[s], BLOCK);

		if (meta ? uv_meta_next(&uvreqs[s]) < 0
			 : uv_fs_read(&uvloop, &uvreqs[s], fd, &b, 1, offset_of(submitted++),
				      on_uv_read) < 0)
			return -1;
	}
	uv_run(&uvloop, UV_RUN_DEFAULT);
	*secs = (double)(bench_now_ns() - t0) / 1e9;
	uv_loop_close(&uvloop);
	free(uvreqs);
	return failed || completed != nreads ? -1 : 0;
}
#endif

/* --- driver -------------------------------------------------------------- */

/* Runs @fn in a child; returns the seconds it measured, or < 0, and in
 * @cpu the CPU seconds the child used (all its threads, user + system). */
static double measure(int (*fn)(int, double *), int threads, double *cpu)
{
	int p[2], status;
	double secs = -1;
	struct rusage ru;
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
		if (cold && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
			_exit(1);
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
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		secs = -1;
	*cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	return secs;
}

static int json;
static int first_row = 1;

/* One configuration: its runs are interleaved with the others'. */
struct config {
	const char *name;
	int (*fn)(int, double *);
	int threads;
	double per_s[64];
	double cpu_us[64]; /* CPU microseconds per read */
};

static int run_rounds(struct config *cfg, int n)
{
	for (int r = 0; r < repeat; r++)
		for (int i = 0; i < n; i++) {
			double cpu, s = measure(cfg[i].fn, cfg[i].threads, &cpu);

			if (s <= 0) {
				fprintf(stderr, "aio-bench: %s with %d threads failed\n", cfg[i].name,
					cfg[i].threads);
				return -1;
			}
			cfg[i].per_s[r] = (double)nreads / s;
			cfg[i].cpu_us[r] = cpu * 1e6 / (double)nreads;
		}
	for (int i = 0; i < n; i++) {
		double *v = cfg[i].per_s, *u = cfg[i].cpu_us, med, cmed;

		/* Sorts in place: v[0] and v[repeat - 1] are then min and max. */
		med = bench_median(v, (size_t)repeat);
		cmed = bench_median(u, (size_t)repeat);
		if (json)
			printf("%s\n  {\"impl\": \"%s\", \"threads\": %d, \"reads\": %ld, "
			       "\"inflight\": %d, \"op\": \"%s\", \"pattern\": \"%s\", \"cold\": %s, "
			       "\"repeat\": %d, \"median_per_s\": %.0f, \"min_per_s\": %.0f, "
			       "\"max_per_s\": %.0f, \"cpu_us_per_read\": %.2f}",
			       first_row ? "[" : ",", cfg[i].name, cfg[i].threads, nreads, inflight,
			       meta ? "meta" : "read", random_offsets ? "random" : "seq", cold ? "true" : "false", repeat, med,
			       v[0], v[repeat - 1], cmed);
		else
			printf("%-10s %7d %8d %12.0f %12.0f %12.0f %8.2f\n", cfg[i].name,
			       cfg[i].threads, inflight, med, v[0], v[repeat - 1], cmed);
		first_row = 0;
	}
	return 0;
}

static long parse(const char *arg, const char *opt, long min, long max)
{
	long v;

	if (bench_parse_long("aio-bench", opt, arg, min, max, &v) < 0)
		exit(2);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reads", required_argument, NULL, 'n' },
		{ "inflight", required_argument, NULL, 'q' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, 'b' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "cold", no_argument, NULL, 'c' },
		{ "op", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 'm' },
		{ "dir", required_argument, NULL, 'd' },
		{ "impl", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "smoke", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char threads_list[64] = "1,2,4", depth_list[64] = "128";
	const char *only = NULL, *backend = "both";
	struct config cfg[32];
	char path[4096], list[64];
	char *tok, *save;
	int c, rc = 0, maxq = 0;

	while ((c = getopt_long(argc, argv, "n:q:r:t:b:p:co:m:d:i:jsh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			nreads = parse(optarg, "-n", 1, 100000000);
			break;
		case 'q':
			snprintf(depth_list, sizeof(depth_list), "%s", optarg);
			break;
		case 'r':
			repeat = (int)parse(optarg, "-r", 1, 64);
			break;
		case 't':
			snprintf(threads_list, sizeof(threads_list), "%s", optarg);
			break;
		case 'b':
			if (strcmp(optarg, "pool") && strcmp(optarg, "uring") && strcmp(optarg, "both")) {
				fprintf(stderr, "aio-bench: invalid value '%s' for -b\n%s", optarg, usage);
				return 2;
			}
			backend = optarg;
			break;
		case 'p':
			if (strcmp(optarg, "random") && strcmp(optarg, "seq")) {
				fprintf(stderr, "aio-bench: invalid value '%s' for -p\n%s", optarg, usage);
				return 2;
			}
			random_offsets = !strcmp(optarg, "random");
			break;
		case 'c':
			cold = 1;
			break;
		case 'o':
			if (strcmp(optarg, "read") && strcmp(optarg, "meta")) {
				fprintf(stderr, "aio-bench: invalid value '%s' for -o\n%s", optarg, usage);
				return 2;
			}
			meta = !strcmp(optarg, "meta");
			break;
		case 'm':
			file_blocks = parse(optarg, "-m", 1, 65536) * (1024 * 1024 / BLOCK);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'i':
			if (strcmp(optarg, "sync") && strcmp(optarg, "vent") && strcmp(optarg, "libuv")) {
				fprintf(stderr, "aio-bench: invalid value '%s' for -i\n%s", optarg, usage);
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
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aio-bench: unexpected argument '%s'\n%s", argv[optind], usage);
		return 2;
	}
	snprintf(list, sizeof(list), "%s", depth_list);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int q = (int)parse(tok, "-q", 1, 4096);

		if (q > maxq)
			maxq = q;
	}

	/* The file, written and read once so it is in the page cache. */
	snprintf(path, sizeof(path), "%s/aio-bench.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	unlink(path);
	bufs = calloc((size_t)maxq, BLOCK);
	offsets = calloc((size_t)nreads, sizeof(*offsets));
	mslots = calloc((size_t)maxq, sizeof(*mslots));
	if (!bufs || !offsets || !mslots)
		return 1;
	if (meta) {
		/* The files, in a directory of their own (and the working
		 * directory, for libuv's paths). */
		char mdir[4096], name[32];

		snprintf(mdir, sizeof(mdir), "%s/aio-bench-meta.XXXXXX", dir);
		/* meta_path absolute: the working directory becomes mdir */
		if (!mkdtemp(mdir) || !realpath(mdir, meta_path) ||
		    (meta_dir = open(mdir, O_RDONLY | O_DIRECTORY)) < 0 || chdir(mdir) < 0) {
			perror(mdir);
			return 1;
		}
		for (long i = 0; i < META_FILES; i++) {
			int f;

			meta_name(i, name, sizeof(name));
			f = openat(meta_dir, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
			if (f < 0 || write(f, "x", 1) != 1 || close(f) < 0)
				return 1;
		}

	}
	make_offsets();
	memset(bufs[0], 'x', BLOCK);
	for (long i = 0; i < file_blocks; i++)
		if (pwrite(fd, bufs[0], BLOCK, (off_t)i * BLOCK) != BLOCK) {
			perror("pwrite");
			return 1;
		}
	if (cold && fdatasync(fd) < 0) /* clean pages, so DONTNEED evicts them */
		return 1;
	for (long i = 0; i < file_blocks; i++)
		if (pread(fd, bufs[0], BLOCK, (off_t)i * BLOCK) != BLOCK)
			return 1;

	if (!json && meta) {
		printf("# %ld openat + statx + close of %d small files, median of %d interleaved "
		       "rounds\n",
		       nreads, META_FILES, repeat);
		printf("%-10s %7s %8s %12s %12s %12s %8s\n", "impl", "threads", "inflight",
		       "files/s", "min", "max", "cpu us");
	} else if (!json) {
		printf("# %ld preads of 4 KiB, %s offsets in a %s %ld MiB file, median of %d "
		       "interleaved rounds\n",
		       nreads, random_offsets ? "random" : "sequential",
		       cold ? "evicted (cold)" : "cached", file_blocks * BLOCK / (1024 * 1024), repeat);
		printf("%-10s %7s %8s %12s %12s %12s %8s\n", "impl", "threads", "inflight",
		       "reads/s", "min", "max", "cpu us");
	}
#define WANT(name) (!only || !strcmp(only, name))
	snprintf(list, sizeof(list), "%s", depth_list);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *tsave, *t;
		int n = 0;

		inflight = (int)parse(tok, "-q", 1, 4096);
		if (WANT("sync"))
			cfg[n++] = (struct config){ "sync", meta ? run_sync_meta : run_sync, 1, { 0 },
						    { 0 } };
		if (WANT("vent") && strcmp(backend, "pool"))
			cfg[n++] = (struct config){ "vent-uring", run_vent_uring, 1, { 0 }, { 0 } };
		snprintf(path, sizeof(path), "%s", threads_list);
		for (t = strtok_r(path, ",", &tsave); t && n < 30; t = strtok_r(NULL, ",", &tsave)) {
			int th = (int)parse(t, "-t", 1, 1024);

			if (WANT("vent") && strcmp(backend, "uring"))
				cfg[n++] = (struct config){ "vent-pool", run_vent_pool, th, { 0 }, { 0 } };
#ifdef HAVE_LIBUV
			if (WANT("libuv"))
				cfg[n++] = (struct config){ "libuv", run_libuv, th, { 0 }, { 0 } };
#endif
		}
		rc |= run_rounds(cfg, n);
	}
	if (json)
		printf("\n]\n");
	if (meta) {
		char name[32];

		for (long i = 0; i < META_FILES; i++) {
			meta_name(i, name, sizeof(name));
			unlinkat(meta_dir, name, 0);
		}
		close(meta_dir);
		rmdir(meta_path);
	}
	free(mslots);
	close(fd);
	free(bufs);
	free(offsets);
	return rc ? 1 : 0;
}
