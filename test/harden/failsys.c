/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * failsys.c - test-only LD_PRELOAD interposer that makes the Nth call of a
 * chosen libc syscall wrapper fail with a chosen errno, without calling the
 * kernel. For the error codes that only the kernel produces and that cannot
 * be provoked safely on a shared machine (ENFILE: the system file table;
 * ENOSPC: fs.epoll.max_user_watches; ENOMEM from the kernel; ENOSYS).
 *
 * libvent calls every one of these through the PLT (checked with
 * nm -D --undefined-only: epoll_create1, epoll_ctl, epoll_pwait,
 * timerfd_create, eventfd, signalfd, dup3, and syscall() for pidfd_open),
 * so a preloaded definition takes them over.
 *
 * Wrappers and their names:
 *   epoll_ctl          any op        epoll_ctl_add / _mod / _del   one op
 *   epoll_create1, epoll_pwait, timerfd_create, eventfd, signalfd, dup3
 *   pidfd_open         syscall(SYS_pidfd_open, ...); other syscalls pass
 *
 * Control, from the program (looked up with dlsym(RTLD_DEFAULT), so a test
 * can tell whether the interposer is loaded):
 *   failsys_arm(name, nth, err, times)
 *                      from now on count calls of @name; calls nth ..
 *                      nth + times - 1 fail with @err (times < 0: every
 *                      call from the nth on); 0 on success, -1 for an
 *                      unknown name
 *   failsys_disarm()   stop; returns how many failures were injected
 *   failsys_calls()    matching calls counted since the last arm
 * or from the environment, read once at load: FAILSYS=name:nth:errno[:times]
 * (errno as a number), for running any program under it by hand.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#define EXPORT __attribute__((visibility("default")))

enum which {
	W_NONE,
	W_EPOLL_CTL,
	W_EPOLL_CTL_ADD,
	W_EPOLL_CTL_MOD,
	W_EPOLL_CTL_DEL,
	W_EPOLL_CREATE1,
	W_EPOLL_PWAIT,
	W_TIMERFD_CREATE,
	W_EVENTFD,
	W_SIGNALFD,
	W_DUP3,
	W_PIDFD_OPEN,
};

static const struct {
	const char *name;
	enum which w;
} names[] = {
	{"epoll_ctl", W_EPOLL_CTL},
	{"epoll_ctl_add", W_EPOLL_CTL_ADD},
	{"epoll_ctl_mod", W_EPOLL_CTL_MOD},
	{"epoll_ctl_del", W_EPOLL_CTL_DEL},
	{"epoll_create1", W_EPOLL_CREATE1},
	{"epoll_pwait", W_EPOLL_PWAIT},
	{"timerfd_create", W_TIMERFD_CREATE},
	{"eventfd", W_EVENTFD},
	{"signalfd", W_SIGNALFD},
	{"dup3", W_DUP3},
	{"pidfd_open", W_PIDFD_OPEN},
};

static atomic_int armed_which = W_NONE;
static atomic_long nth_call;
static atomic_long times_left;
static atomic_long counted;
static atomic_long fired;
static atomic_int fail_errno;

EXPORT int failsys_arm(const char *name, long nth, int err, long times)
{
	enum which w = W_NONE;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].name, name) == 0)
			w = names[i].w;
	if (w == W_NONE)
		return -1;
	atomic_store(&armed_which, W_NONE);
	atomic_store(&nth_call, nth);
	atomic_store(&times_left, times);
	atomic_store(&counted, 0);
	atomic_store(&fired, 0);
	atomic_store(&fail_errno, err);
	atomic_store(&armed_which, w);
	return 0;
}

EXPORT long failsys_disarm(void)
{
	atomic_store(&armed_which, W_NONE);
	return atomic_load(&fired);
}

EXPORT long failsys_calls(void)
{
	return atomic_load(&counted);
}

__attribute__((constructor)) static void failsys_init(void)
{
	const char *spec = getenv("FAILSYS");
	if (!spec || !*spec)
		return;
	char name[32];
	size_t n = strcspn(spec, ":");
	if (n >= sizeof(name))
		return;
	memcpy(name, spec, n);
	name[n] = '\0';
	long nth = 1, times = 1;
	int err = EIO;
	const char *p = spec + n;
	if (*p == ':') {
		char *end;
		nth = strtol(p + 1, &end, 10);
		p = end;
		if (*p == ':') {
			err = (int)strtol(p + 1, &end, 10);
			p = end;
			if (*p == ':')
				times = strtol(p + 1, &end, 10);
		}
	}
	failsys_arm(name, nth, err, times);
}

/* True (errno set) if this call of @w must fail. */
static int should_fail(enum which w)
{
	int a = atomic_load(&armed_which);
	int wi = (int)w;
	if (a == W_NONE || (a != wi && !(a == W_EPOLL_CTL && wi >= W_EPOLL_CTL_ADD &&
					  wi <= W_EPOLL_CTL_DEL)))
		return 0;
	long idx = atomic_fetch_add(&counted, 1) + 1;
	long nth = atomic_load(&nth_call);
	long times = atomic_load(&times_left);
	if (idx < nth || (times >= 0 && idx >= nth + times))
		return 0;
	atomic_fetch_add(&fired, 1);
	errno = atomic_load(&fail_errno);
	return 1;
}

#define REAL(ret, fn, params)                                                     \
	static ret(*real_##fn) params;                                            \
	if (!real_##fn)                                                           \
		real_##fn = __extension__(ret(*) params)dlsym(RTLD_NEXT, #fn)

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	REAL(int, epoll_ctl, (int, int, int, struct epoll_event *));
	enum which w = op == EPOLL_CTL_ADD ? W_EPOLL_CTL_ADD
		     : op == EPOLL_CTL_MOD ? W_EPOLL_CTL_MOD
					   : W_EPOLL_CTL_DEL;
	if (should_fail(w))
		return -1;
	return real_epoll_ctl(epfd, op, fd, ev);
}

EXPORT int epoll_create1(int flags)
{
	REAL(int, epoll_create1, (int));
	if (should_fail(W_EPOLL_CREATE1))
		return -1;
	return real_epoll_create1(flags);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max, int tmo, const sigset_t *mask)
{
	REAL(int, epoll_pwait, (int, struct epoll_event *, int, int, const sigset_t *));
	if (should_fail(W_EPOLL_PWAIT))
		return -1;
	return real_epoll_pwait(epfd, evs, max, tmo, mask);
}

EXPORT int timerfd_create(int clockid, int flags)
{
	REAL(int, timerfd_create, (int, int));
	if (should_fail(W_TIMERFD_CREATE))
		return -1;
	return real_timerfd_create(clockid, flags);
}

EXPORT int eventfd(unsigned int initval, int flags)
{
	REAL(int, eventfd, (unsigned int, int));
	if (should_fail(W_EVENTFD))
		return -1;
	return real_eventfd(initval, flags);
}

EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	REAL(int, signalfd, (int, const sigset_t *, int));
	if (should_fail(W_SIGNALFD))
		return -1;
	return real_signalfd(fd, mask, flags);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	REAL(int, dup3, (int, int, int));
	if (should_fail(W_DUP3))
		return -1;
	return real_dup3(oldfd, newfd, flags);
}

/* syscall() is variadic: forward six register-sized arguments, which is
 * what the x86-64 and aarch64 calling conventions pass anyway. */
EXPORT long syscall(long number, ...)
{
	REAL(long, syscall, (long, ...));
	va_list ap;
	long a[6];
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
#ifdef SYS_pidfd_open
	if (number == SYS_pidfd_open && should_fail(W_PIDFD_OPEN))
		return -1;
#endif
	return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
