/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * aio-exit-helper.c - leaves main() with a busy pool; aio-test.c checks that
 * the process exits within 1 s of the return, with status 0 (no hang in an
 * exit handler or static destructor, no abort, no sanitizer report).
 *
 * Usage: aio-exit-helper busy|idle|exit DIR
 *   busy: one thread blocked in a FIFO open forever, 1000 requests queued,
 *         dispatcher and pool never freed; returns from main
 *   idle: threads started and idle; returns from main
 *   exit: 4 threads completing a stream of short requests; calls exit(0)
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vent/aio.h>
#include <vent/event.h>

#include "util/clock.h"

/* Reachable at exit, as a program's global pool would be. */
static struct dispatcher *dsp;
static struct vent_aio *aio;
static char buf[4096];
static char small[20000][16]; /* one per request: the threads run at once */

static void on_done(int id, ssize_t result, void *arg)
{
	(void)id;
	(void)result;
	(void)arg;
}

static void stamp(void)
{
	printf("%lld\n", (long long)now_ns());
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char path[PATH_MAX];
	int fd;

	if (argc != 3)
		return 2;
	dsp = new_dispatcher(CLOCK_MONOTONIC);
	aio = vent_aio_new(dsp);
	if (!dsp || !aio)
		return 3;
	snprintf(path, sizeof(path), "%s/exit-helper.%d", argv[2], (int)getpid());
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf))
		return 4;
	unlink(path);
	if (!strcmp(argv[1], "busy")) {
		strcat(path, ".fifo");
		if (mkfifo(path, 0600) < 0)
			return 5;
		vent_aio_set_threads(aio, 1, 1);
		if (vent_aio_openat(aio, AT_FDCWD, path, O_RDONLY, 0, on_done, NULL) <= 0)
			return 6;
		for (int i = 0; i < 1000; i++)
			if (vent_aio_pread(aio, fd, buf, sizeof(buf), 0, on_done, NULL) <= 0)
				return 7;
		/* hand them to the ring (on that backend), and let the thread
		 * or kernel worker block in the open */
		if (vent_wait(dsp, 0, NULL) < 0)
			return 11;
		usleep(50 * 1000);
		unlink(path);
		stamp();
		return 0;
	}
	if (!strcmp(argv[1], "idle")) {
		vent_aio_set_threads(aio, 4, 4);
		for (int i = 0; i < 100; i++)
			if (vent_aio_pread(aio, fd, small[i], sizeof(small[i]), 0, on_done, NULL) <= 0)
				return 8;
		while (vent_aio_pending(aio))
			if (vent_wait(dsp, 5000, NULL) < 0)
				return 9;
		stamp();
		return 0;
	}
	if (!strcmp(argv[1], "exit")) {
		vent_aio_set_threads(aio, 4, 4);
		for (int i = 0; i < 20000; i++)
			if (vent_aio_pread(aio, fd, small[i], sizeof(small[i]), 0, on_done, NULL) <= 0)
				return 10;
		stamp();
		exit(0);
	}
	return 2;
}
