/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * signal-test.c - signal sources (vent_signal_*): mask handling, pending and
 * queued signals, duplicates, invalid sets, timeouts, cleanup, threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <vent/event.h>
#include <vent/sources.h>

#include "util/case.h"

static sigset_t thread_mask(void)
{
	sigset_t m;

	pthread_sigmask(SIG_BLOCK, NULL, &m);
	return m;
}

static void assert_same_mask(const sigset_t *a, const sigset_t *b)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(a, sig) != sigismember(b, sig))
			fail_msg("signal %d differs in the masks", sig);
}

static sigset_t set_of(int a, int b)
{
	sigset_t s;

	sigemptyset(&s);
	if (a)
		sigaddset(&s, a);
	if (b)
		sigaddset(&s, b);
	return s;
}

/* Callback state: records read, reasons seen. */
static struct signalfd_siginfo got[32];
static int ngot, ncalls, ntimeouts;

static int on_signal(struct event *evt, uint32_t events)
{
	int n;

	(void)events;
	ncalls++;
	if (evt->reason == REASON_TIMEOUT) {
		ntimeouts++;
		return EVENTCB_CLEANUP;
	}
	n = vent_signal_read(evt, got + ngot, 32 - ngot);
	assert_true(n >= 0);
	ngot += n;
	return EVENTCB_CONTINUE;
}

static void reset_counts(void)
{
	memset(got, 0, sizeof(got));
	ngot = ncalls = ntimeouts = 0;
}

static void test_signal_mask_restored(void **state)
{
	sigset_t before = thread_mask(), want = set_of(SIGUSR1, SIGUSR2);
	struct event e;

	(void)state;
	assert_int_equal(sigismember(&before, SIGUSR1), 0);
	assert_int_equal(vent_signal_init(&e, &want, on_signal), 0);
	sigset_t during = thread_mask();
	assert_int_equal(sigismember(&during, SIGUSR1), 1);
	assert_int_equal(sigismember(&during, SIGUSR2), 1);
	assert_int_equal(e.ep.events, EPOLLIN);
	assert_true(e.fd >= 0);
	assert_ptr_equal(e.cleanup, vent_signal_release);
	assert_null(e.dsp);

	vent_signal_release(&e);
	assert_int_equal(e.fd, -1);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
	vent_signal_release(&e); /* idempotent */
}

static void test_signal_mask_already_blocked(void **state)
{
	sigset_t usr2 = set_of(SIGUSR2, 0), want = set_of(SIGUSR1, SIGUSR2);
	struct event e;

	(void)state;
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	sigset_t before = thread_mask();
	assert_int_equal(vent_signal_init(&e, &want, on_signal), 0);
	vent_signal_release(&e);
	sigset_t after = thread_mask();
	/* SIGUSR2 was blocked before init: it stays blocked. */
	assert_same_mask(&before, &after);
	assert_int_equal(sigismember(&after, SIGUSR2), 1);
	assert_int_equal(sigismember(&after, SIGUSR1), 0);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
}

static void test_signal_pending_before_add(void **state)
{
	sigset_t want = set_of(SIGUSR1, 0), before = thread_mask();
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event e;

	(void)state;
	reset_counts();
	assert_non_null(dsp);
	assert_int_equal(vent_signal_init(&e, &want, on_signal), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(event_add(dsp, &e), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	/* Standard signals coalesce while pending: one record. */
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].ssi_signo, SIGUSR1);
	assert_int_equal(got[0].ssi_pid, getpid());
	struct signalfd_siginfo more;
	assert_int_equal(vent_signal_read(&e, &more, 1), 0);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);

	free_dispatcher(dsp); /* runs the default cleanup */
	assert_int_equal(e.fd, -1);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
}

static void test_signal_rt_payloads_in_order(void **state)
{
	sigset_t want = set_of(SIGRTMIN, 0);
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event e;

	(void)state;
	reset_counts();
	assert_int_equal(vent_signal_init(&e, &want, on_signal), 0);
	for (int i = 1; i <= 5; i++) {
		union sigval v = { .sival_int = i };
		assert_int_equal(sigqueue(getpid(), SIGRTMIN, v), 0);
	}
	assert_int_equal(event_add(dsp, &e), 0);
	while (ngot < 5)
		assert_true(vent_wait(dsp, 5000, NULL) > 0);
	assert_int_equal(ngot, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(got[i].ssi_signo, SIGRTMIN);
		assert_int_equal(got[i].ssi_code, SI_QUEUE);
		assert_int_equal(got[i].ssi_int, i + 1);
	}
	free_dispatcher(dsp);
}

static void test_signal_duplicate_ebusy(void **state)
{
	sigset_t before = thread_mask();
	sigset_t s1 = set_of(SIGUSR1, 0), s12 = set_of(SIGUSR1, SIGUSR2), s2 = set_of(SIGUSR2, 0);
	struct dispatcher *d1 = new_dispatcher(CLOCK_MONOTONIC);
	struct dispatcher *d2 = new_dispatcher(CLOCK_MONOTONIC);
	struct event a, b, c;

	(void)state;
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	assert_int_equal(vent_signal_init(&b, &s12, on_signal), 0);
	assert_int_equal(vent_signal_init(&c, &s2, on_signal), 0);
	assert_int_equal(event_add(d1, &a), 0);
	/* b shares SIGUSR1 with a: refused, nothing registered. */
	assert_int_equal(event_add(d1, &b), -EBUSY);
	assert_null(b.dsp);
	/* No overlap: fine. Then b overlaps both. */
	assert_int_equal(event_add(d1, &c), 0);
	/* A disabled source still watches its signal. */
	a.ep.events = 0;
	assert_int_equal(event_modify(&a), 0);
	assert_int_equal(event_remove(&c), 0);
	assert_int_equal(event_add(d1, &b), -EBUSY);
	/* Another dispatcher may watch the same signal. */
	assert_int_equal(event_add(d2, &b), 0);
	/* Once a is gone, b may join d1 too (after leaving d2). */
	assert_int_equal(event_remove(&a), 0);
	assert_int_equal(event_remove(&b), 0);
	assert_int_equal(event_add(d1, &b), 0);
	assert_int_equal(event_remove(&b), 0);

	/* Release out of order: b goes first, a still watches SIGUSR1. */
	vent_signal_release(&b);
	sigset_t mid = thread_mask();
	assert_int_equal(sigismember(&mid, SIGUSR1), 1);
	assert_int_equal(sigismember(&mid, SIGUSR2), 1); /* c watches it */
	vent_signal_release(&c);
	mid = thread_mask();
	assert_int_equal(sigismember(&mid, SIGUSR1), 1);
	assert_int_equal(sigismember(&mid, SIGUSR2), 0);
	vent_signal_release(&a);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
	free_dispatcher(d1);
	free_dispatcher(d2);
}

static void expect_einval(const sigset_t *set)
{
	struct event e;

	memset(&e, 0x5a, sizeof(e));
	assert_int_equal(vent_signal_init(&e, set, on_signal), -EINVAL);
	/* Unchanged on failure. */
	for (size_t i = 0; i < sizeof(e); i++)
		assert_int_equal(((unsigned char *)&e)[i], 0x5a);
}

static void test_signal_invalid_einval(void **state)
{
	sigset_t before = thread_mask(), s;
	struct event e;

	(void)state;
	s = set_of(SIGKILL, 0);
	expect_einval(&s);
	s = set_of(SIGSTOP, SIGUSR1);
	expect_einval(&s);
	/* Signal 0 cannot be added to a set (sigaddset refuses it): empty. */
	sigemptyset(&s);
	assert_int_equal(sigaddset(&s, 0), -1);
	expect_einval(&s);
	/* 65 is beyond SIGRTMAX: sigaddset refuses it, and a bit set by hand
	 * in glibc's oversized sigset_t means nothing to the kernel. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(sigaddset(&s, 65), -1);
	((unsigned long *)(void *)&s)[64 / (8 * sizeof(unsigned long))] |=
		1UL << (64 % (8 * sizeof(unsigned long)));
	expect_einval(&s);
	/* A signal the C library reserves for its threads (32). */
	memset(&s, 0, sizeof(s));
	((unsigned long *)(void *)&s)[0] |= 1UL << 31;
	expect_einval(&s);
	/* SIGRTMAX itself is fine. */
	s = set_of(SIGRTMAX, 0);
	assert_int_equal(vent_signal_init(&e, &s, on_signal), 0);
	vent_signal_release(&e);
	s = set_of(SIGUSR1, 0);
	assert_int_equal(vent_signal_init(NULL, &s, on_signal), -EINVAL);
	assert_int_equal(vent_signal_init(&e, NULL, on_signal), -EINVAL);
	assert_int_equal(vent_signal_init(&e, &s, NULL), -EINVAL);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
}

static void test_signal_read_einval(void **state)
{
	sigset_t s = set_of(SIGUSR1, 0);
	struct signalfd_siginfo si;
	struct event e, other = EVENT_ON_STACK(on_signal, 0, EPOLLIN);

	(void)state;
	assert_int_equal(vent_signal_init(&e, &s, on_signal), 0);
	assert_int_equal(vent_signal_read(&e, NULL, 1), -EINVAL);
	assert_int_equal(vent_signal_read(NULL, &si, 1), -EINVAL);
	assert_int_equal(vent_signal_read(&e, &si, 0), 0);
	assert_int_equal(vent_signal_read(&e, &si, 1), 0);
	/* stdin is not a signal source. */
	assert_int_equal(vent_signal_read(&other, &si, 1), -EINVAL);
	vent_signal_release(&e);
	assert_int_equal(vent_signal_read(&e, &si, 1), -EINVAL);
	vent_signal_release(&other); /* not a source: no-op, stdin stays */
	assert_int_equal(other.fd, 0);
	vent_signal_release(NULL);
}

static void test_signal_timeout(void **state)
{
	sigset_t s = set_of(SIGUSR1, 0), before = thread_mask();
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event e;

	(void)state;
	reset_counts();
	assert_int_equal(vent_signal_init(&e, &s, on_signal), 0);
	e.tmo.tv_nsec = 50 * 1000000;
	int64_t t0 = now_ns();
	assert_int_equal(event_add(dsp, &e), 0);
	assert_int_equal(vent_wait(dsp, -1, NULL), 1);
	assert_true(now_ns() - t0 >= 50 * 1000000);
	assert_int_equal(ntimeouts, 1);
	assert_int_equal(ngot, 0);
	/* The callback returned EVENTCB_CLEANUP: released, mask restored. */
	assert_int_equal(e.fd, -1);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
	free_dispatcher(dsp);
}

static int cleanups;

static void my_cleanup(struct event *evt)
{
	cleanups++;
	vent_signal_release(evt);
}

static int on_signal_cleanup(struct event *evt, uint32_t events)
{
	on_signal(evt, events);
	return EVENTCB_CLEANUP;
}

static void test_signal_cleanup_restores_mask(void **state)
{
	sigset_t s = set_of(SIGUSR1, SIGRTMIN + 1), before = thread_mask();
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event e, f;

	(void)state;
	reset_counts();
	cleanups = 0;
	/* EVENTCB_CLEANUP with a custom cleanup that calls the release. */
	assert_int_equal(vent_signal_init(&e, &s, on_signal_cleanup), 0);
	e.cleanup = my_cleanup;
	assert_int_equal(event_add(dsp, &e), 0);
	raise(SIGRTMIN + 1);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(ngot, 1);
	assert_int_equal(cleanups, 1);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);

	/* cleanup_dispatcher() runs the default cleanup. */
	assert_int_equal(vent_signal_init(&f, &s, on_signal), 0);
	assert_int_equal(event_add(dsp, &f), 0);
	assert_int_equal(cleanup_dispatcher(dsp), 0);
	assert_int_equal(f.fd, -1);
	after = thread_mask();
	assert_same_mask(&before, &after);

	/* Release while still added removes the event first. */
	assert_int_equal(vent_signal_init(&f, &s, on_signal), 0);
	assert_int_equal(event_add(dsp, &f), 0);
	vent_signal_release(&f);
	assert_null(f.dsp);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	after = thread_mask();
	assert_same_mask(&before, &after);
	free_dispatcher(dsp);
}

static void test_signal_saved_mask(void **state)
{
	sigset_t usr2 = set_of(SIGUSR2, 0), s1 = set_of(SIGUSR1, SIGUSR2), s2 = set_of(SIGHUP, 0);
	sigset_t saved;
	struct event a, b, other = EVENT_ON_STACK(on_signal, 0, EPOLLIN);

	(void)state;
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	sigset_t orig = thread_mask();
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	assert_int_equal(vent_signal_init(&b, &s2, on_signal), 0);
	assert_int_equal(vent_signal_saved_mask(&a, &saved), 0);
	assert_same_mask(&saved, &orig);
	/* b's init saw SIGUSR1 blocked by a: still not in b's saved mask. */
	assert_int_equal(vent_signal_saved_mask(&b, &saved), 0);
	assert_same_mask(&saved, &orig);
	assert_int_equal(sigismember(&saved, SIGUSR2), 1);
	assert_int_equal(sigismember(&saved, SIGUSR1), 0);

	/* A spawned child restores it before exec: SIGUSR1 unblocked. */
	pid_t pid = fork();
	if (pid == 0) {
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		execl("/bin/sh", "sh", "-c",
		      "mask=$(sed -n 's/^SigBlk:\\s*//p' /proc/self/status); "
		      "test $(( 0x$mask & 0x200 )) -eq 0", (char *)NULL);
		_exit(127);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_int_equal(vent_signal_saved_mask(NULL, &saved), -EINVAL);
	assert_int_equal(vent_signal_saved_mask(&a, NULL), -EINVAL);
	assert_int_equal(vent_signal_saved_mask(&other, &saved), -EINVAL);
	vent_signal_release(&a);
	vent_signal_release(&b);
	assert_int_equal(vent_signal_saved_mask(&a, &saved), -EINVAL);
	sigset_t after = thread_mask();
	assert_same_mask(&after, &orig);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
}

static volatile sig_atomic_t stolen;
static pthread_barrier_t barrier;
static volatile sig_atomic_t thread_usr1_blocked;

static void on_usr1_handler(int sig)
{
	(void)sig;
	stolen++;
}

static void *bystander(void *arg)
{
	sigset_t m;

	(void)arg;
	pthread_sigmask(SIG_BLOCK, NULL, &m);
	thread_usr1_blocked = sigismember(&m, SIGUSR1);
	pthread_barrier_wait(&barrier);
	/* Sleep in an interruptible call: a thread that could take the
	 * signal would take it here. */
	pthread_barrier_wait(&barrier);
	return NULL;
}

static void test_signal_thread_after_init_no_steal(void **state)
{
	sigset_t s = set_of(SIGUSR1, 0), before = thread_mask();
	struct sigaction sa = { .sa_handler = on_usr1_handler }, old;
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event e;
	pthread_t t;

	(void)state;
	reset_counts();
	stolen = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	assert_int_equal(vent_signal_init(&e, &s, on_signal), 0);
	assert_int_equal(event_add(dsp, &e), 0);
	pthread_barrier_init(&barrier, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, bystander, NULL), 0);
	pthread_barrier_wait(&barrier);
	assert_int_equal(thread_usr1_blocked, 1);
	/* Process-directed: any thread with SIGUSR1 unblocked could take it. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(kill(getpid(), SIGUSR1), 0);
		while (ngot == i)
			assert_true(vent_wait(dsp, 5000, NULL) > 0);
	}
	pthread_barrier_wait(&barrier);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&barrier);
	assert_int_equal(ngot, 3);
	assert_int_equal(got[2].ssi_signo, SIGUSR1);
	assert_int_equal(stolen, 0);
	free_dispatcher(dsp);
	sigaction(SIGUSR1, &old, NULL);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
}

/*
 * Fork: the child inherits source A (its signalfd and the library's record
 * of it), makes its own source C for the same signal and frees the parent's
 * dispatcher, which releases A. C still watches the signal: it must stay
 * blocked (else the next one kills the child). A saved mask taken in the
 * child leaves out what vent blocked, inherited or not.
 */
enum {
	CHILD_OK, CHILD_SETUP, CHILD_SAVED_HAS_USR1, CHILD_SAVED_LACKS_USR2,
	CHILD_UNBLOCKED_EARLY, CHILD_NOT_READ, CHILD_MASK_AFTER,
};

static int fork_handover_child(struct dispatcher *parent_dsp, int check_saved)
{
	sigset_t s1 = set_of(SIGUSR1, 0), hup = set_of(SIGHUP, 0), m;
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event c, h;

	reset_counts();
	if (!dsp || vent_signal_init(&c, &s1, on_signal) < 0 ||
	    vent_signal_init(&h, &hup, on_signal) < 0 || event_add(dsp, &c) < 0)
		return CHILD_SETUP;
	if (check_saved) {
		/* While the inherited source lives: SIGUSR1 is vent's. */
		if (vent_signal_saved_mask(&h, &m) < 0 || sigismember(&m, SIGUSR1))
			return CHILD_SAVED_HAS_USR1;
		if (!sigismember(&m, SIGUSR2)) /* blocked by the test itself */
			return CHILD_SAVED_LACKS_USR2;
		if (vent_signal_saved_mask(&c, &m) < 0 || sigismember(&m, SIGUSR1))
			return CHILD_SAVED_HAS_USR1;
	}
	free_dispatcher(parent_dsp); /* releases the inherited source */
	m = thread_mask();
	if (!sigismember(&m, SIGUSR1))
		return CHILD_UNBLOCKED_EARLY;
	kill(getpid(), SIGUSR1);
	if (vent_wait(dsp, 10000, NULL) != 1 || ngot != 1 || got[0].ssi_signo != SIGUSR1)
		return CHILD_NOT_READ;
	vent_signal_release(&h);
	free_dispatcher(dsp);
	/* The last source is gone: SIGUSR1 unblocked, SIGUSR2 still not. */
	m = thread_mask();
	if (sigismember(&m, SIGUSR1) || !sigismember(&m, SIGUSR2) || sigismember(&m, SIGHUP))
		return CHILD_MASK_AFTER;
	return CHILD_OK;
}

static void run_fork_handover(int check_saved)
{
	sigset_t s1 = set_of(SIGUSR1, 0), usr2 = set_of(SIGUSR2, 0);
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event a;
	int status;

	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	sigset_t before = thread_mask();
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	assert_int_equal(event_add(dsp, &a), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fork_handover_child(dsp, check_saved));
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	free_dispatcher(dsp);
	sigset_t after = thread_mask();
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), CHILD_OK);
	assert_same_mask(&before, &after);
}

static void test_signal_fork_handover(void **state)
{
	(void)state;
	run_fork_handover(0);
}

static void test_signal_fork_saved_mask(void **state)
{
	(void)state;
	run_fork_handover(1);
}

/*
 * A source's fd closed without vent_signal_release() (a child closing the
 * fds it inherited, say): whatever file later gets that number is not a
 * signal source.
 */
static void test_signal_fd_reuse_after_close(void **state)
{
	sigset_t s1 = set_of(SIGUSR1, 0), before = thread_mask(), m;
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct signalfd_siginfo si;
	struct event a, b;
	int p[2];
	char c = 'x';

	(void)state;
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	assert_int_equal(vent_signal_init(&b, &s1, on_signal), 0);
	assert_int_equal(event_add(dsp, &b), 0);
	int stale = a.fd;
	close(stale);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(p[0], stale); /* the lowest free number */
	struct event pe = EVENT_ON_STACK(on_signal, p[0], EPOLLIN);
	/* Not a second SIGUSR1 source of this dispatcher: a pipe. */
	assert_int_equal(event_add(dsp, &pe), 0);
	assert_int_equal(write(p[1], &c, 1), 1);
	/* Not a signal source: nothing read from the pipe. */
	assert_int_equal(vent_signal_read(&pe, &si, 1), -EINVAL);
	assert_int_equal(vent_signal_saved_mask(&pe, &m), -EINVAL);
	vent_signal_release(&pe); /* no-op: the pipe stays */
	assert_int_equal(pe.fd, p[0]);
	assert_ptr_equal(pe.dsp, dsp);
	c = 0;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	assert_int_equal(event_remove(&pe), 0);
	close(p[0]);
	close(p[1]);
	/* The stale record does not keep SIGUSR1 blocked past b either. */
	vent_signal_release(&b);
	m = thread_mask();
	assert_same_mask(&before, &m);
	free_dispatcher(dsp);
}

/*
 * Threads: the library's record of sources is process-wide. A release
 * keeps a signal blocked in the calling thread while any other live source
 * in the process watches it (another thread's, here), so a process-directed
 * instance can never reach a thread that unblocked it.
 */
struct peer {
	pthread_barrier_t bar;
	struct event b;
	int rc_init, rc_add, got;
	sigset_t saved, mask_after;
	int rc_saved;
	int directed_pending;
};

static void *peer_source(void *arg)
{
	struct peer *pr = arg;
	sigset_t s1 = set_of(SIGUSR1, 0);
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);

	pr->rc_init = vent_signal_init(&pr->b, &s1, on_signal);
	pr->rc_add = pr->rc_init ? -1 : event_add(dsp, &pr->b);
	pthread_barrier_wait(&pr->bar); /* 1: source ready */
	pthread_barrier_wait(&pr->bar); /* 2: main released its own, sent one */
	/* on_signal() reads the record into got[]. */
	if (pr->rc_add == 0 && vent_wait(dsp, 10000, NULL) == 1)
		pr->got = ngot == 1 && got[0].ssi_signo == SIGUSR1;
	free_dispatcher(dsp); /* releases b: the last SIGUSR1 source */
	pthread_sigmask(SIG_BLOCK, NULL, &pr->mask_after);
	return NULL;
}

static void test_signal_threads_release_keeps_block(void **state)
{
	sigset_t s1 = set_of(SIGUSR1, 0), before = thread_mask();
	struct sigaction sa = { .sa_handler = on_usr1_handler }, old;
	struct peer pr;
	struct event a;
	pthread_t t;

	(void)state;
	memset(&pr, 0, sizeof(pr));
	reset_counts();
	stolen = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, &old);
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	pthread_barrier_init(&pr.bar, NULL, 2);
	/* The thread inherits SIGUSR1 blocked. */
	assert_int_equal(pthread_create(&t, NULL, peer_source, &pr), 0);
	pthread_barrier_wait(&pr.bar);
	assert_int_equal(pr.rc_init, 0);
	assert_int_equal(pr.rc_add, 0);
	vent_signal_release(&a);
	/* The thread's source still watches SIGUSR1: blocked here too. */
	sigset_t mid = thread_mask();
	assert_int_equal(sigismember(&mid, SIGUSR1), 1);
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	pthread_barrier_wait(&pr.bar);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&pr.bar);
	assert_int_equal(stolen, 0);
	assert_int_equal(pr.got, 1);
	/* The thread's release unblocked SIGUSR1 there (vent had blocked it
	 * for the process, the thread inherited that). */
	assert_int_equal(sigismember(&pr.mask_after, SIGUSR1), 0);
	/* vent changes only the calling thread's mask: this thread keeps the
	 * block it kept for the other source, and unblocks it itself. */
	sigset_t after = thread_mask();
	assert_int_equal(sigismember(&after, SIGUSR1), 1);
	pthread_sigmask(SIG_UNBLOCK, &s1, NULL);
	after = thread_mask();
	assert_same_mask(&before, &after);
	sigaction(SIGUSR1, &old, NULL);
}

/*
 * A thread created while a source lives inherits its block; a source the
 * thread makes has a saved mask without it (and with what the thread
 * blocked itself).
 */
static void *peer_saved(void *arg)
{
	struct peer *pr = arg;
	sigset_t hup = set_of(SIGHUP, 0), usr2 = set_of(SIGUSR2, 0);

	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	pr->rc_init = vent_signal_init(&pr->b, &hup, on_signal);
	if (pr->rc_init == 0) {
		pr->rc_saved = vent_signal_saved_mask(&pr->b, &pr->saved);
		vent_signal_release(&pr->b);
	}
	pthread_sigmask(SIG_BLOCK, NULL, &pr->mask_after);
	return NULL;
}

static void test_signal_thread_saved_mask(void **state)
{
	sigset_t s1 = set_of(SIGUSR1, 0), before = thread_mask();
	struct peer pr;
	struct event a;
	pthread_t t;

	(void)state;
	memset(&pr, 0, sizeof(pr));
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	assert_int_equal(pthread_create(&t, NULL, peer_saved, &pr), 0);
	pthread_join(t, NULL);
	assert_int_equal(pr.rc_init, 0);
	assert_int_equal(pr.rc_saved, 0);
	assert_int_equal(sigismember(&pr.saved, SIGUSR1), 0);
	assert_int_equal(sigismember(&pr.saved, SIGUSR2), 1);
	assert_int_equal(sigismember(&pr.saved, SIGHUP), 0);
	/* The thread's release gave SIGHUP back, and kept the inherited
	 * SIGUSR1 (a still watches it). */
	assert_int_equal(sigismember(&pr.mask_after, SIGHUP), 0);
	assert_int_equal(sigismember(&pr.mask_after, SIGUSR1), 1);
	vent_signal_release(&a);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
}

/*
 * A signal directed at one thread (pthread_kill(), tgkill()) is pending in
 * that thread only: the loop's signalfd, read on the dispatcher's thread,
 * sees process-directed signals and those directed at its own thread.
 */
static void *peer_directed(void *arg)
{
	struct peer *pr = arg;
	sigset_t s1 = set_of(SIGUSR1, 0), pend;
	struct timespec zero = { 0, 0 };

	pthread_barrier_wait(&pr->bar); /* 1: started (SIGUSR1 inherited blocked) */
	pthread_barrier_wait(&pr->bar); /* 2: main sent it here, looked */
	sigpending(&pend);
	pr->directed_pending = sigismember(&pend, SIGUSR1);
	/* Take it, so nothing is left pending when the thread ends. */
	if (sigtimedwait(&s1, NULL, &zero) == SIGUSR1)
		pr->got = 1;
	return NULL;
}

static void test_signal_thread_directed_not_seen(void **state)
{
	sigset_t s1 = set_of(SIGUSR1, 0), before = thread_mask();
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct peer pr;
	struct event a;
	pthread_t t;

	(void)state;
	reset_counts();
	memset(&pr, 0, sizeof(pr));
	pthread_barrier_init(&pr.bar, NULL, 2);
	assert_int_equal(vent_signal_init(&a, &s1, on_signal), 0);
	assert_int_equal(event_add(dsp, &a), 0);
	assert_int_equal(pthread_create(&t, NULL, peer_directed, &pr), 0);
	pthread_barrier_wait(&pr.bar);
	assert_int_equal(pthread_kill(t, SIGUSR1), 0);
	/* Pending in the other thread: the loop does not see it. */
	assert_int_equal(vent_wait(dsp, 100, NULL), 0);
	assert_int_equal(ngot, 0);
	pthread_barrier_wait(&pr.bar);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&pr.bar);
	assert_int_equal(pr.directed_pending, 1);
	assert_int_equal(pr.got, 1);
	/* Directed at the dispatcher's own thread: seen. */
	assert_int_equal(pthread_kill(pthread_self(), SIGUSR1), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].ssi_signo, SIGUSR1);
	free_dispatcher(dsp);
	sigset_t after = thread_mask();
	assert_same_mask(&before, &after);
}

static void test_signal_init_emfile(void **state)
{
	(void)state;
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		sigset_t s = set_of(SIGUSR1, 0), before = thread_mask(), after;
		struct event e;

		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = 0; /* no new fd at all */
		setrlimit(RLIMIT_NOFILE, &rl);
		int rc = vent_signal_init(&e, &s, on_signal);
		pthread_sigmask(SIG_BLOCK, NULL, &after);
		/* Nothing blocked on failure. */
		_exit(rc == -EMFILE && sigismember(&after, SIGUSR1) == sigismember(&before, SIGUSR1)
		      ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		CASE(test_signal_mask_restored),
		CASE(test_signal_mask_already_blocked),
		CASE(test_signal_pending_before_add),
		CASE(test_signal_rt_payloads_in_order),
		CASE(test_signal_duplicate_ebusy),
		CASE(test_signal_invalid_einval),
		CASE(test_signal_read_einval),
		CASE(test_signal_timeout),
		CASE(test_signal_cleanup_restores_mask),
		CASE(test_signal_saved_mask),
		CASE(test_signal_thread_after_init_no_steal),
		CASE(test_signal_fork_handover),
		CASE(test_signal_fork_saved_mask),
		CASE(test_signal_fd_reuse_after_close),
		CASE(test_signal_threads_release_keeps_block),
		CASE(test_signal_thread_saved_mask),
		CASE(test_signal_thread_directed_not_seen),
		CASE(test_signal_init_emfile),
	};

	if (argc > 1) /* by hand: one case, e.g. signal-test test_signal_timeout */
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
