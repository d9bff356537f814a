/* SPDX-License-Identifier: GPL-2.0-or-later */
/* example: aio-read-file.c */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <vent/aio.h>
#include <vent/event.h>

struct job {
	struct vent_aio *aio;
	struct dispatcher *dsp;
	char buf[256];
	int fd;
	int status;
};

static void on_closed(int id, ssize_t result, void *arg)
{
	struct job *job = arg;

	(void)id;
	(void)result;
	vent_loop_stop(job->dsp);
}

static void on_read(int id, ssize_t result, void *arg)
{
	struct job *job = arg;

	(void)id;
	if (result < 0)
		fprintf(stderr, "pread: %s\n", strerror((int)-result));
	else
		printf("read %zd bytes: %.*s\n", result, (int)result, job->buf);
	job->status = result < 0;
	vent_aio_close(job->aio, job->fd, on_closed, job);
}

static void on_open(int id, ssize_t result, void *arg)
{
	struct job *job = arg;

	(void)id;
	if (result < 0) {
		fprintf(stderr, "open: %s\n", strerror((int)-result));
		job->status = 1;
		vent_loop_stop(job->dsp);
		return;
	}
	job->fd = (int)result;
	vent_aio_pread(job->aio, job->fd, job->buf, sizeof(job->buf), 0, on_read, job);
}

int main(int argc, char **argv)
{
	struct job job = { .fd = -1 };

	job.dsp = new_dispatcher(CLOCK_MONOTONIC);
	job.aio = vent_aio_new(job.dsp);
	if (!job.dsp || !job.aio)
		return 1;
	/* the three requests run on a pool thread; the callbacks run here */
	if (vent_aio_openat(job.aio, AT_FDCWD, argc > 1 ? argv[1] : "/etc/hostname",
			    O_RDONLY | O_CLOEXEC, 0, on_open, &job) < 0)
		return 1;
	event_loop(job.dsp, NULL, NULL);
	vent_aio_free(job.aio); /* before its dispatcher */
	free_dispatcher(job.dsp);
	return job.status;
}
