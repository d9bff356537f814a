/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * child-test.c - child-exit sources (vent_pid_*): exits before add, many
 * children, foreign reapers, removal before exit, caller's pidfds,
 * timeouts, error codes. Skips (77) if the kernel has no pidfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <vent/event.h>
#include <vent/sources.h>

#include "util/case.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* The kernel's struct clone_args (version 0), without <linux/sched.h>,
 * whose CLONE_* macros clash with glibc's. */
struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* A child that exits with @status at once. */
static pid_t spawn_exit(int status)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(status);
	assert_true(pid > 0);
	return pid;
}

/* A child that exits with @status when @*release is closed. */
static pid_t spawn_blocked(int status, int *release)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(p[1]);
		while (read(p[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(status);
	}
	assert_true(pid > 0);
	close(p[0]);
	*release = p[1];
	return pid;
}

/* Waits until @pid is a zombie, without reaping it. */
static void wait_exited(pid_t pid)
{
	siginfo_t si;

	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

struct child {
	struct event e;
	int index;
	int rc;          /* vent_pid_wait() result */
	siginfo_t info;
	int calls, timeouts;
};

static int on_child(struct event *evt, uint32_t events)
{
	struct child *c = (struct child *)evt;

	(void)events;
	c->calls++;
	if (evt->reason == REASON_TIMEOUT) {
		c->timeouts++;
		return EVENTCB_CONTINUE;
	}
	c->rc = vent_pid_wait(evt, &c->info);
	return c->rc == -EAGAIN ? EVENTCB_CONTINUE : EVENTCB_CLEANUP;
}

static void test_child_exit_before_add(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 };

	(void)state;
	pid_t pid = spawn_exit(42);
	wait_exited(pid);
	assert_int_equal(vent_pid_init(&c.e, pid, on_child), 0);
	assert_int_equal(c.e.ep.events, EPOLLIN);
	assert_ptr_equal(c.e.cleanup, cleanup_event_on_stack);
	assert_int_equal(event_add(dsp, &c.e), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.info.si_pid, pid);
	assert_int_equal(c.info.si_code, CLD_EXITED);
	assert_int_equal(c.info.si_status, 42);
	/* Reaped by vent_pid_wait(): nothing left for anyone else. */
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	free_dispatcher(dsp);
}

#define NCHILDREN 200

static void test_child_many_distinct_statuses(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child *c = calloc(NCHILDREN, sizeof(*c));
	pid_t pids[NCHILDREN];
	int seen[NCHILDREN] = { 0 }, done = 0;

	(void)state;
	assert_non_null(c);
	for (int i = 0; i < NCHILDREN; i++) {
		pids[i] = spawn_exit(i);
		c[i].index = i;
		assert_int_equal(vent_pid_init(&c[i].e, pids[i], on_child), 0);
		assert_int_equal(event_add(dsp, &c[i].e), 0);
	}
	while (done < NCHILDREN) {
		int n = vent_wait(dsp, 10000, NULL);
		assert_true(n > 0);
		done += n;
	}
	assert_int_equal(done, NCHILDREN);
	for (int i = 0; i < NCHILDREN; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].rc, 0);
		assert_int_equal(c[i].info.si_pid, pids[i]);
		assert_int_equal(c[i].info.si_code, CLD_EXITED);
		assert_true(c[i].info.si_status >= 0 && c[i].info.si_status < NCHILDREN);
		seen[c[i].info.si_status]++;
		assert_int_equal(c[i].info.si_status, i);
	}
	for (int i = 0; i < NCHILDREN; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	free_dispatcher(dsp);
	free(c);
}

static void test_child_foreign_reaper_echild(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 };
	int release, status;

	(void)state;
	pid_t pid = spawn_blocked(7, &release);
	assert_int_equal(vent_pid_init(&c.e, pid, on_child), 0);
	assert_int_equal(event_add(dsp, &c.e), 0);
	assert_int_equal(vent_wait(dsp, 0, NULL), 0);
	close(release);
	/* Somebody else (a waitpid loop, a SIGCHLD handler) reaps first. */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 7);
	/* The exit is still reported; the status is gone. */
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.rc, -ECHILD);
	free_dispatcher(dsp);
}

static void test_child_remove_before_exit(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 };
	int release, status, fds;

	(void)state;
	pid_t pid = spawn_blocked(3, &release);
	fds = fd_count();
	assert_int_equal(vent_pid_init(&c.e, pid, on_child), 0);
	assert_int_equal(event_add(dsp, &c.e), 0);
	assert_int_equal(event_remove(&c.e), 0);
	c.e.cleanup(&c.e); /* closes the pidfd */
	assert_int_equal(fd_count(), fds);
	close(release);
	/* The child is the caller's: vent did not reap it. */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_int_equal(vent_wait(dsp, 50, NULL), 0);
	assert_int_equal(c.calls, 0);
	free_dispatcher(dsp);
}

static void test_child_init_fd_pidfd_open(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 };
	int release;

	(void)state;
	pid_t pid = spawn_blocked(5, &release);
	int pidfd = sys_pidfd_open(pid);
	assert_true(pidfd >= 0);
	assert_int_equal(vent_pid_init_fd(&c.e, pidfd, on_child), 0);
	assert_int_equal(c.e.fd, pidfd);
	assert_int_equal(event_add(dsp, &c.e), 0);
	/* Not exited yet. */
	assert_int_equal(vent_pid_wait(&c.e, NULL), -EAGAIN);
	close(release);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.info.si_pid, pid);
	assert_int_equal(c.info.si_status, 5);
	free_dispatcher(dsp); /* the event owned the pidfd: closed */
}

static void test_child_init_fd_clone3(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 };
	struct clone_args_v0 args;
	int pidfd = -1;

	(void)state;
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		_exit(9);
	assert_true(pid > 0);
	assert_true(pidfd >= 0);
	assert_int_equal(vent_pid_init_fd(&c.e, pidfd, on_child), 0);
	assert_int_equal(event_add(dsp, &c.e), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.info.si_pid, pid);
	assert_int_equal(c.info.si_status, 9);
	free_dispatcher(dsp);
}

/*
 * clone3(CLONE_PIDFD) with exit_signal 0, the usual choice with pidfds: the
 * child sends no SIGCHLD, and waitid() without __WALL ignores such children
 * (it would report -ECHILD and leave a zombie for ever).
 */
static void test_child_clone3_no_exit_signal(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 };
	struct clone_args_v0 args;
	int pidfd = -1;

	(void)state;
	memset(&args, 0, sizeof(args));
	args.flags = CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = 0;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid == 0)
		_exit(7);
	assert_true(pid > 0);
	assert_true(pidfd >= 0);
	assert_int_equal(vent_pid_init_fd(&c.e, pidfd, on_child), 0);
	assert_int_equal(event_add(dsp, &c.e), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.info.si_pid, pid);
	assert_int_equal(c.info.si_code, CLD_EXITED);
	assert_int_equal(c.info.si_status, 7);
	/* Reaped: no zombie left for a __WALL waiter either. */
	assert_int_equal(waitpid((pid_t)pid, NULL, WNOHANG | __WALL), -1);
	assert_int_equal(errno, ECHILD);
	free_dispatcher(dsp);
}

/*
 * An fd of /proc/<pid> is not a pidfd, although pidfd_send_signal() takes
 * it: vent_pid_init_fd() refuses it with -EBADF and leaves it to the caller.
 */
static void test_child_init_fd_proc_dir_ebadf(void **state)
{
	struct event e;
	char path[64];
	int release, status;

	(void)state;
	pid_t pid = spawn_blocked(6, &release);
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		close(release);
		waitpid(pid, NULL, 0);
		fail_msg("cannot open %s: %s (is /proc mounted?)", path, strerror(errno));
	}
	memset(&e, 0x5a, sizeof(e));
	assert_int_equal(vent_pid_init_fd(&e, dirfd, on_child), -EBADF);
	for (size_t i = 0; i < sizeof(e); i++)
		assert_int_equal(((unsigned char *)&e)[i], 0x5a);
	/* Still the caller's: open. */
	assert_true(fcntl(dirfd, F_GETFD) >= 0);
	close(dirfd);
	/* Our own /proc entry too. */
	dirfd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(vent_pid_init_fd(&e, dirfd, on_child), -EBADF);
	close(dirfd);
	close(release);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 6);
}

static pthread_barrier_t tid_barrier;
static pid_t thread_tid;

static void *report_tid(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&tid_barrier);
	/* Stay alive until the main thread has tried its id. */
	pthread_barrier_wait(&tid_barrier);
	return NULL;
}

/* A live thread that is not its process's main thread is not a process. */
static void test_child_thread_id_einval(void **state)
{
	struct event e;
	pthread_t t;

	(void)state;
	pthread_barrier_init(&tid_barrier, NULL, 2);
	assert_int_equal(pthread_create(&t, NULL, report_tid, NULL), 0);
	pthread_barrier_wait(&tid_barrier);
	assert_int_not_equal(thread_tid, getpid());
	memset(&e, 0x5a, sizeof(e));
	int rc = vent_pid_init(&e, thread_tid, on_child);
	pthread_barrier_wait(&tid_barrier);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&tid_barrier);
	assert_int_equal(rc, -EINVAL);
	for (size_t i = 0; i < sizeof(e); i++)
		assert_int_equal(((unsigned char *)&e)[i], 0x5a);
	/* The main thread's id is the process id: fine. */
	assert_int_equal(vent_pid_init(&e, getpid(), on_child), 0);
	e.cleanup(&e);
}

static void test_child_or_timeout_one_event(void **state)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct child c = { .index = 0 }, d = { .index = 1 };
	int release;

	(void)state;
	/* The child does not exit: the 200 ms timeout fires first. */
	pid_t pid = spawn_blocked(0, &release);
	assert_int_equal(vent_pid_init(&c.e, pid, on_child), 0);
	c.e.tmo.tv_nsec = 200 * 1000000;
	int64_t t0 = now_ns();
	assert_int_equal(event_add(dsp, &c.e), 0);
	assert_int_equal(vent_wait(dsp, -1, NULL), 1);
	assert_true(now_ns() - t0 >= 200 * 1000000);
	assert_int_equal(c.timeouts, 1);
	assert_int_equal(c.calls, 1);
	/* Kill it: the same event reports the exit. */
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(vent_wait(dsp, 5000, NULL), 1);
	assert_int_equal(c.calls, 2);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.info.si_code, CLD_KILLED);
	assert_int_equal(c.info.si_status, SIGKILL);
	close(release);

	/* The child exits first: no timeout callback. */
	pid = spawn_exit(11);
	assert_int_equal(vent_pid_init(&d.e, pid, on_child), 0);
	d.e.tmo.tv_sec = 30;
	assert_int_equal(event_add(dsp, &d.e), 0);
	assert_int_equal(vent_wait(dsp, 10000, NULL), 1);
	assert_int_equal(d.timeouts, 0);
	assert_int_equal(d.info.si_status, 11);
	/* EVENTCB_CLEANUP removed the event with its timeout. */
	assert_null(d.e.dsp);
	free_dispatcher(dsp);
}

static void test_child_errors(void **state)
{
	struct event e, pipe_ev;
	int p[2], release, status;

	(void)state;
	assert_int_equal(vent_pid_init(&e, 0, on_child), -EINVAL);
	assert_int_equal(vent_pid_init(&e, -1, on_child), -EINVAL);
	assert_int_equal(vent_pid_init(&e, -getpid(), on_child), -EINVAL);
	assert_int_equal(vent_pid_init(NULL, getpid(), on_child), -EINVAL);
	assert_int_equal(vent_pid_init(&e, getpid(), NULL), -EINVAL);
	assert_int_equal(vent_pid_init_fd(NULL, 0, on_child), -EINVAL);
	assert_int_equal(vent_pid_init_fd(&e, 0, NULL), -EINVAL);
	assert_int_equal(vent_pid_wait(NULL, NULL), -EINVAL);

	/* No such process: a reaped child. */
	pid_t pid = spawn_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(vent_pid_init(&e, pid, on_child), -ESRCH);

	/* Not a pidfd. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(vent_pid_init_fd(&e, p[0], on_child), -EBADF);
	assert_int_equal(vent_pid_init_fd(&e, -1, on_child), -EBADF);
	pipe_ev = EVENT_ON_STACK(on_child, p[0], EPOLLIN);
	assert_int_equal(vent_pid_wait(&pipe_ev, NULL), -EBADF);
	pipe_ev.fd = -1;
	assert_int_equal(vent_pid_wait(&pipe_ev, NULL), -EBADF);
	close(p[0]);
	close(p[1]);

	/* Not our child: our parent (the test runner). */
	assert_int_equal(vent_pid_init(&e, getppid(), on_child), 0);
	assert_int_equal(vent_pid_wait(&e, NULL), -ECHILD);
	e.cleanup(&e);

	/* Alive: -EAGAIN, and nothing reaped. */
	pid = spawn_blocked(4, &release);
	assert_int_equal(vent_pid_init(&e, pid, on_child), 0);
	assert_int_equal(vent_pid_wait(&e, NULL), -EAGAIN);
	close(release);
	wait_exited(pid);
	siginfo_t si;
	assert_int_equal(vent_pid_wait(&e, &si), 0);
	assert_int_equal(si.si_status, 4);
	assert_int_equal(vent_pid_wait(&e, &si), -ECHILD);
	e.cleanup(&e);
	(void)status;
}

/* In a child: make one syscall fail with ENOSYS, as on an old kernel. */
static void deny_syscall(long nr)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		_exit(2);
}

static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int enosys_pid_init(void)
{
	struct event e;

	deny_syscall(SYS_pidfd_open);
	return vent_pid_init(&e, getpid(), on_child) == -ENOSYS ? 0 : 1;
}

static int enosys_pid_init_fd(void)
{
	struct event e;
	int fd = sys_pidfd_open(getpid());

	deny_syscall(SYS_pidfd_send_signal);
	return fd >= 0 && vent_pid_init_fd(&e, fd, on_child) == -ENOSYS ? 0 : 1;
}

static int emfile_pid_init(void)
{
	struct rlimit rl = { 0, 0 };
	struct event e;

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 0;
	setrlimit(RLIMIT_NOFILE, &rl);
	return vent_pid_init(&e, getpid(), on_child) == -EMFILE ? 0 : 1;
}

static void test_child_enosys_emfile(void **state)
{
	(void)state;
	if (under_valgrind())
		return; /* valgrind does not run seccomp filters faithfully */
	assert_int_equal(in_child(enosys_pid_init), 0);
	assert_int_equal(in_child(enosys_pid_init_fd), 0);
	assert_int_equal(in_child(emfile_pid_init), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_child_exit_before_add),
		CASE(test_child_many_distinct_statuses),
		CASE(test_child_foreign_reaper_echild),
		CASE(test_child_remove_before_exit),
		CASE(test_child_init_fd_pidfd_open),
		CASE(test_child_init_fd_clone3),
		CASE(test_child_clone3_no_exit_signal),
		CASE(test_child_init_fd_proc_dir_ebadf),
		CASE(test_child_thread_id_einval),
		CASE(test_child_or_timeout_one_event),
		CASE(test_child_errors),
		CASE(test_child_enosys_emfile),
	};
	int fd = sys_pidfd_open(getpid());

	if (fd < 0 && errno == ENOSYS) {
		fprintf(stderr, "pidfd_open(2) unavailable (kernel < 5.3, or valgrind < 3.20): skipping\n");
		return 77;
	}
	close(fd);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
