/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fd-scenario.c - every create path that opens file descriptors, run with
 * RLIMIT_NOFILE set so that exactly k more descriptors fit, k = 0..6:
 * new_dispatcher() (timerfd, epoll, eventfd), vent_signal_init()
 * (signalfd), vent_pid_init() (pidfd), vent_wakeup_init() (eventfd), and
 * the watch.h adapter that the first vent_add_handle() / vent_add_timeout()
 * attaches (no fd: it rides on the dispatcher's own wakeup), and
 * vent_aio_new() (eventfd).
 *
 * For each k: the call either succeeds (using at most k fds) or reports
 * -EMFILE (NULL and errno EMFILE for new_dispatcher) and leaves the fd
 * count, the signal mask and the dispatcher as they were; with the limit
 * restored the same call then succeeds; after releasing everything the fd
 * count is back to its baseline. k = 0 must fail and k = 6 must succeed
 * for every path that opens fds; the watch.h adapter opens none, so its
 * first add must succeed even at k = 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vent/aio.h>
#include <vent/event.h>
#include <vent/sources.h>
#include <vent/watch.h>

#include "harden-util.h"
#include "../util/nop.h"

static struct rlimit saved_lim;

/* Limits the process so that exactly @k more fds can be opened: the limit
 * is one above the k-th free fd number (holes below the highest open fd
 * count as free, which is what the kernel allocates first). */
static void limit_to(int k)
{
	int fd = 0, free_seen = 0;
	for (;; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			if (free_seen == k)
				break;
			free_seen++;
		}
	}
	struct rlimit lim = {(rlim_t)fd, saved_lim.rlim_max};
	EXPECT(setrlimit(RLIMIT_NOFILE, &lim) == 0, "setrlimit(%d): %s", fd, strerror(errno));
}

static void unlimit(void)
{
	EXPECT(setrlimit(RLIMIT_NOFILE, &saved_lim) == 0, "setrlimit restore");
}

static int frees;
static void count_free(void *opaque)
{
	(void)opaque;
	frees++;
}

static bool usr2_blocked(void)
{
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, SIGUSR2) == 1;
}

enum path { FP_DISPATCHER, FP_SIGNAL, FP_PID, FP_WAKEUP, FP_HANDLE, FP_TIMEOUT, FP_AIO, FP_COUNT };
static const char *const names[FP_COUNT] = {
	"new_dispatcher", "vent_signal_init", "vent_pid_init",
	"vent_wakeup_init", "vent_add_handle (adapter)", "vent_add_timeout (adapter)",
	"vent_aio_new",
};

struct ctx {
	struct dispatcher *d;  /* the dispatcher the path uses (or creates) */
	struct event ev;
	pid_t child;
	int pipefd[2];
	int watch;
	struct vent_aio *aio;
};

/* The create call under test. Returns 0 or -errno. */
static int create(enum path p, struct ctx *c)
{
	int rc;
	sigset_t ss;
	switch (p) {
	case FP_DISPATCHER:
		c->d = new_dispatcher(CLOCK_MONOTONIC);
		return c->d ? 0 : -errno;
	case FP_SIGNAL:
		sigemptyset(&ss);
		sigaddset(&ss, SIGUSR2);
		return vent_signal_init(&c->ev, &ss, nop_cb);
	case FP_PID:
		return vent_pid_init(&c->ev, c->child, nop_cb);
	case FP_WAKEUP:
		return vent_wakeup_init(&c->ev, nop_cb);
	case FP_HANDLE:
		rc = vent_add_handle(c->d, c->pipefd[0], VENT_HANDLE_READABLE, nop_handle, NULL,
				     count_free);
		c->watch = rc;
		return rc < 0 ? rc : 0;
	case FP_TIMEOUT:
		rc = vent_add_timeout(c->d, 5, nop_timeout, NULL, count_free);
		c->watch = rc;
		return rc < 0 ? rc : 0;
	case FP_AIO:
		c->aio = vent_aio_new(c->d);
		return c->aio ? 0 : -errno;
	default:
		return -EINVAL;
	}
}

static int aio_result = 1;
static void aio_cb(int id, ssize_t result, void *arg)
{
	(void)id;
	(void)arg;
	aio_result = (int)result;
}

/* Proves the created object works, then releases it. */
static void use_and_release(enum path p, struct ctx *c)
{
	switch (p) {
	case FP_DISPATCHER:
		EXPECT(vent_wait(c->d, 0, NULL) >= 0, "vent_wait on the new dispatcher");
		break;
	case FP_SIGNAL:
	case FP_PID:
	case FP_WAKEUP:
		EXPECT(event_add(c->d, &c->ev) == 0, "%s: event_add", names[p]);
		EXPECT(event_remove(&c->ev) == 0, "%s: event_remove", names[p]);
		c->ev.cleanup(&c->ev);
		break;
	case FP_HANDLE:
		EXPECT(vent_wait(c->d, 0, NULL) >= 0, "vent_wait");
		EXPECT(vent_remove_handle(c->d, c->watch) == 0, "vent_remove_handle");
		EXPECT(vent_wait(c->d, 0, NULL) >= 0, "vent_wait");
		break;
	case FP_TIMEOUT:
		EXPECT(vent_wait(c->d, 0, NULL) >= 0, "vent_wait");
		EXPECT(vent_remove_timeout(c->d, c->watch) == 0, "vent_remove_timeout");
		EXPECT(vent_wait(c->d, 0, NULL) >= 0, "vent_wait");
		break;
	case FP_AIO: {
		/* A request that opens nothing: the fd count stays exact. */
		struct stat st;
		aio_result = 1;
		EXPECT(vent_aio_fstatat(c->aio, AT_FDCWD, "/", &st, 0, aio_cb, NULL) > 0,
		       "vent_aio_fstatat");
		for (int i = 0; i < 500 && aio_result == 1; i++) {
			int rc = vent_wait(c->d, 10, NULL);
			EXPECT(rc >= 0, "vent_wait: %d (%s)", rc, strerror(-rc));
		}
		EXPECT(aio_result == 0, "aio request: %d", aio_result);
		vent_aio_free(c->aio);
		break;
	}
	default:
		break;
	}
}

static void run_path(enum path p, int k, int *first_ok)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.child = -1;
	const int base = fd_count();

	/* What the path needs besides itself, made without a limit. */
	if (p != FP_DISPATCHER) {
		c.d = new_dispatcher(CLOCK_MONOTONIC);
		EXPECT(c.d, "new_dispatcher (setup)");
	}
	if (p == FP_PID) {
		c.child = fork();
		EXPECT(c.child >= 0, "fork");
		if (c.child == 0) {
			pause();
			_exit(0);
		}
	}
	if (p == FP_HANDLE)
		EXPECT(pipe2(c.pipefd, O_CLOEXEC) == 0, "pipe2");
	const int before = fd_count();
	const bool usr2 = usr2_blocked();

	limit_to(k);
	int rc = create(p, &c);
	unlimit(); /* counting needs an fd itself */
	int used = fd_count() - before;

	if (rc == 0) {
		EXPECT(used <= k, "%s with %d free fds: succeeded using %d", names[p], k, used);
		if (*first_ok < 0)
			*first_ok = k;
	} else {
		EXPECT(rc == -EMFILE, "%s with %d free fds: %d (%s), want -EMFILE", names[p], k, rc,
		       strerror(-rc));
		EXPECT(used == 0, "%s failed with EMFILE but left %d fd(s)", names[p], used);
		EXPECT(usr2_blocked() == usr2, "%s failed but changed the signal mask", names[p]);
		EXPECT(*first_ok < 0, "%s failed with %d free fds but succeeded with %d", names[p],
		       k, *first_ok);
		/* Limit restored: the same call succeeds now. */
		rc = create(p, &c);
		EXPECT(rc == 0, "%s after the limit was restored: %d (%s)", names[p], rc,
		       strerror(-rc));
	}
	use_and_release(p, &c);
	free_dispatcher(c.d);
	if (p == FP_PID) {
		kill(c.child, SIGKILL);
		waitpid(c.child, NULL, 0);
	}
	if (p == FP_HANDLE) {
		close(c.pipefd[0]);
		close(c.pipefd[1]);
	}
	EXPECT(fd_count() == base, "%s, k=%d: %d fds after release, baseline %d", names[p], k,
	       fd_count(), base);
	EXPECT(!usr2_blocked(), "SIGUSR2 still blocked after release");
}

int main(void)
{
	alarm(60);
	EXPECT(getrlimit(RLIMIT_NOFILE, &saved_lim) == 0, "getrlimit");
	for (int p = 0; p < FP_COUNT; p++) {
		int first_ok = -1;
		int frees0 = frees;
		for (int k = 0; k <= 6; k++)
			run_path((enum path)p, k, &first_ok);
		if (p == FP_HANDLE || p == FP_TIMEOUT)
			EXPECT(first_ok == 0, "%s opens no fd: must succeed at k=0 (first success at k=%d)",
			       names[p], first_ok);
		else
			EXPECT(first_ok > 0,
			       "%s: k=0 must fail and k=6 succeed (first success at k=%d)",
			       names[p], first_ok);
		if (p == FP_HANDLE || p == FP_TIMEOUT)
			EXPECT(frees - frees0 == 7, "%s: %d free callbacks for 7 watches", names[p],
			       frees - frees0);
		printf("%-28s fails with EMFILE below %d free fd(s), clean at k=0..6\n", names[p],
		       first_ok);
	}
	return 0;
}
