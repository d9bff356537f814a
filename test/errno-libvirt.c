/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errno-libvirt.c - the documented error codes of vent_libvirt_register()
 * (see errno-test.c for the whole table):
 *
 *   errno-libvirt        -EINVAL (NULL), -EBUSY (from a cleanup run by
 *                        free_dispatcher()), -ECHILD (forked child)
 *   errno-libvirt sys    with failsys.so preloaded (77 if it is not):
 *                        no eventfd() or epoll_ctl() to fail any more
 *                        (the watch machinery opens no fd); -ENOMEM from
 *                        the heap is harden/fault-scenario's
 *
 * In the plain group every case fails before virEventRegisterImpl() is
 * reached, except the last check, which registers for real on a working
 * dispatcher; the sys group registers for real.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vent/event.h>
#include <vent/libvirt.h>

#include "util/nop.h"

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			exit(1);                                                 \
		}                                                                \
	} while (0)

static struct dispatcher *busy_dsp;
static int busy_rc;

static void busy_cleanup(struct event *evt)
{
	(void)evt;
	busy_rc = vent_libvirt_register(busy_dsp);
}

static int plain(void)
{
	struct event e = __EVENT_INIT(nop_cb, busy_cleanup, -1, 0, 100, 0);

	CHECK(vent_libvirt_register(NULL) == -EINVAL);

	busy_dsp = new_dispatcher(CLOCK_MONOTONIC);
	CHECK(busy_dsp);
	CHECK(event_add(busy_dsp, &e) == 0);
	busy_rc = 0;
	free_dispatcher(busy_dsp);
	CHECK(busy_rc == -EBUSY);

	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	CHECK(d);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(vent_libvirt_register(d) == -ECHILD ? 0 : 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(vent_libvirt_register(d) == 0);
	/* libvirt keeps the implementation: @d must outlive it (exit). */
	printf("ok: -EINVAL, -EBUSY, -ECHILD\n");
	return 0;
}

static int sys(void)
{
	int (*arm)(const char *, long, int, long) = __extension__(
		int (*)(const char *, long, int, long))dlsym(RTLD_DEFAULT, "failsys_arm");
	long (*disarm)(void) = __extension__(long (*)(void))dlsym(RTLD_DEFAULT, "failsys_disarm");

	if (!arm || !disarm) {
		printf("SKIP: failsys.so is not preloaded\n");
		return 77;
	}
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	CHECK(d);
	CHECK(arm("eventfd", 1, EMFILE, 1000) == 0);
	CHECK(vent_libvirt_register(d) == 0);
	CHECK(disarm() == 0);
	CHECK(arm("epoll_ctl_add", 1, ENOMEM, 1000) == 0);
	CHECK(vent_libvirt_register(d) == 0);
	CHECK(disarm() == 0);
	printf("ok: no kernel call to fail\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "sys") == 0)
		return sys();
	return plain();
}
