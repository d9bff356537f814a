/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt-test.c - real libvirt running on a vent dispatcher.
 *
 * Usage: libvirt-test inproc   test:///default in this process
 *        libvirt-test remote   the same through a throwaway libvirtd
 *
 * The remote case starts an unprivileged libvirtd (as "nobody" when run as
 * root, else as the current user) with its own runtime directory and
 * socket, talks to it through test+unix:///default?socket=..., kills it and
 * checks that the client sees the hang-up while the loop stays healthy. It
 * leaves nothing running: the daemon dies with the test (PR_SET_PDEATHSIG)
 * and exits on its own after 120 idle seconds in any case. Exit 77 only
 * when /usr/sbin/libvirtd is missing (package libvirt-daemon).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CASE_TIMEOUT_S 120 /* a libvirtd start and a remote session */
#include "util/case.h"

#include <libvirt/virterror.h>

#include <vent/event.h>
#include <vent/libvirt.h>

#define LIBVIRTD "/usr/sbin/libvirtd"
#define NOBODY 65534
#define DELIVERY_MS 5000

static struct dispatcher *g_dsp;
static pthread_t g_loop_thread;

static void quiet_error(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* ------------------------------------------------------------------------
 * Lifecycle events
 */
#define NEVENTS 6

struct lifecycle {
	int events[16];
	int n;
	int wrong_thread;
};

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			void *opaque)
{
	struct lifecycle *lc = opaque;

	(void)conn;
	(void)dom;
	(void)detail;
	if (!pthread_equal(pthread_self(), g_loop_thread))
		__atomic_add_fetch(&lc->wrong_thread, 1, __ATOMIC_SEQ_CST);
	int i = __atomic_load_n(&lc->n, __ATOMIC_SEQ_CST);
	if (i < 16)
		lc->events[i] = event;
	__atomic_store_n(&lc->n, i + 1, __ATOMIC_SEQ_CST);
	return 0;
}

static const char new_domain_xml[] =
	"<domain type='test'><name>vent-lifecycle</name><memory>8192</memory>"
	"<vcpu>1</vcpu><os><type>hvm</type></os></domain>";

static const int expected[NEVENTS] = {
	VIR_DOMAIN_EVENT_STOPPED, /* destroy the stock "test" domain */
	VIR_DOMAIN_EVENT_STARTED, /* create it again */
	VIR_DOMAIN_EVENT_DEFINED, /* define a new one */
	VIR_DOMAIN_EVENT_STARTED,
	VIR_DOMAIN_EVENT_STOPPED,
	VIR_DOMAIN_EVENT_UNDEFINED,
};

/* The six API calls; returns 0 when all succeeded. */
static int lifecycle_calls(virConnectPtr conn)
{
	int bad = 0;
	virDomainPtr dom = virDomainLookupByName(conn, "test");

	if (!dom)
		return -1;
	bad |= virDomainDestroy(dom) < 0;
	bad |= virDomainCreate(dom) < 0;
	virDomainFree(dom);
	dom = virDomainDefineXML(conn, new_domain_xml);
	if (!dom)
		return -1;
	bad |= virDomainCreate(dom) < 0;
	bad |= virDomainDestroy(dom) < 0;
	bad |= virDomainUndefine(dom) < 0;
	virDomainFree(dom);
	return bad ? -1 : 0;
}

struct worker {
	virConnectPtr conn;
	int rc;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->rc = lifecycle_calls(w->conn);
	return NULL;
}

/* Runs the loop (on this thread, the loop thread) until @lc has @n events. */
static int64_t loop_until(struct lifecycle *lc, int n, int ms)
{
	int64_t t0 = now_ms();

	while (__atomic_load_n(&lc->n, __ATOMIC_SEQ_CST) < n && now_ms() - t0 < ms)
		assert_true(vent_wait(g_dsp, 20, NULL) >= 0);
	return now_ms() - t0;
}

static void run_loop_ms(int ms)
{
	int64_t t0 = now_ms();

	while (now_ms() - t0 < ms)
		assert_true(vent_wait(g_dsp, 10, NULL) >= 0);
}

/*
 * The scenario: a lifecycle callback, six domain operations made on the
 * loop thread or on a worker thread, all six events on the loop thread
 * within 5 s, in order.
 */
static void lifecycle_scenario(virConnectPtr conn, int on_worker, const char *what)
{
	struct lifecycle lc;
	memset(&lc, 0, sizeof(lc));
	int cb = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
						  VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), &lc,
						  NULL);
	int64_t ms;

	assert_true(cb >= 0);
	if (on_worker) {
		struct worker w = {conn, -1};
		pthread_t th;

		assert_int_equal(pthread_create(&th, NULL, worker_main, &w), 0);
		int64_t t0 = now_ms();
		/* the loop runs while the worker calls */
		loop_until(&lc, NEVENTS, DELIVERY_MS + 5000);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(w.rc, 0);
		ms = now_ms() - t0;
	} else {
		/* the loop is not running while the calls are made */
		assert_int_equal(lifecycle_calls(conn), 0);
		ms = loop_until(&lc, NEVENTS, DELIVERY_MS);
	}
	print_message("# %s, calls on %s: %d events in %lld ms\n", what,
		      on_worker ? "a worker" : "the loop thread", lc.n, (long long)ms);
	assert_int_equal(lc.n, NEVENTS);
	assert_true(ms <= DELIVERY_MS + (on_worker ? 5000 : 0));
	for (int i = 0; i < NEVENTS; i++)
		assert_int_equal(lc.events[i], expected[i]);
	assert_int_equal(lc.wrong_thread, 0);
	/* nothing more arrives */
	run_loop_ms(100);
	assert_int_equal(lc.n, NEVENTS);
	assert_int_equal(virConnectDomainEventDeregisterAny(conn, cb), 0);
}

/* ------------------------------------------------------------------------
 * In-process test driver
 */
static void test_libvirt_inproc_loop_thread(void **state)
{
	(void)state;
	virConnectPtr conn = virConnectOpen("test:///default");

	assert_non_null(conn);
	lifecycle_scenario(conn, 0, "test:///default");
	assert_true(virConnectClose(conn) >= 0);
	run_loop_ms(50);
}

static void test_libvirt_inproc_worker_thread(void **state)
{
	(void)state;
	virConnectPtr conn = virConnectOpen("test:///default");

	assert_non_null(conn);
	lifecycle_scenario(conn, 1, "test:///default");
	assert_true(virConnectClose(conn) >= 0);
	run_loop_ms(50);
}

/* ------------------------------------------------------------------------
 * Remote driver through a throwaway libvirtd
 */
static struct {
	char dir[64];
	char conf[128];
	char sock[160];
	char uri[256];
	pid_t pid;
} d;

static void mkdir_for_daemon(const char *path)
{
	assert_int_equal(mkdir(path, 0700), 0);
	if (geteuid() == 0)
		assert_int_equal(chown(path, NOBODY, NOBODY), 0);
}

static void daemon_start(void)
{
	char path[192];
	FILE *f;

	strcpy(d.dir, "/tmp/vent-libvirtd.XXXXXX");
	assert_non_null(mkdtemp(d.dir));
	assert_int_equal(chmod(d.dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/sock", d.dir);
	mkdir_for_daemon(path);
	snprintf(d.sock, sizeof(d.sock), "%s/sock/libvirt-sock", d.dir);
	snprintf(path, sizeof(path), "%s/home", d.dir);
	mkdir_for_daemon(path);
	snprintf(d.conf, sizeof(d.conf), "%s/libvirtd.conf", d.dir);
	f = fopen(d.conf, "w");
	assert_non_null(f);
	fprintf(f, "unix_sock_dir = \"%s/sock\"\n", d.dir);
	fclose(f);
	snprintf(d.uri, sizeof(d.uri), "test+unix:///default?socket=%s", d.sock);

	d.pid = fork();
	assert_true(d.pid >= 0);
	if (d.pid == 0) {
		char log[192], home[192], env_home[256], env_run[256], env_cfg[256],
			env_cache[256];
		snprintf(log, sizeof(log), "%s/libvirtd.log", d.dir);
		snprintf(home, sizeof(home), "%s/home", d.dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull < 0 || dup2(devnull, 0) < 0)
			_exit(126);
		/* Unprivileged: as root, become nobody. */
		if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
				       setresuid(NOBODY, NOBODY, NOBODY) < 0))
			_exit(126);
		/* After the uid change, which clears it: die with the test. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
			_exit(126);
		snprintf(env_home, sizeof(env_home), "HOME=%s", home);
		snprintf(env_run, sizeof(env_run), "XDG_RUNTIME_DIR=%s/run", home);
		snprintf(env_cfg, sizeof(env_cfg), "XDG_CONFIG_HOME=%s/config", home);
		snprintf(env_cache, sizeof(env_cache), "XDG_CACHE_HOME=%s/cache", home);
		char *envp[] = {env_home, env_run, env_cfg, env_cache,
				"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
		execle(LIBVIRTD, "libvirtd", "-f", d.conf, "-t", "120", (char *)NULL, envp);
		_exit(127);
	}
	/* Wait for the socket (the daemon needs well under a second). */
	int64_t t0 = now_ms();
	struct stat st;
	while (stat(d.sock, &st) < 0) {
		int status;
		assert_int_equal(waitpid(d.pid, &status, WNOHANG), 0); /* still alive */
		assert_true(now_ms() - t0 < 30000);
		usleep(20000);
	}
	print_message("# libvirtd (pid %d, %s) up after %lld ms\n", (int)d.pid,
		      geteuid() == 0 ? "as nobody" : "as this user", (long long)(now_ms() - t0));
}

/* True if any process still runs with our config file on its command line. */
static int daemon_leftovers(void)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int found = 0;

	assert_non_null(proc);
	while ((de = readdir(proc))) {
		char path[300], buf[4096];
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (ssize_t i = 0; i < n; i++)
			if (!buf[i])
				buf[i] = ' ';
		if (n > 0) {
			buf[n] = 0;
			if (strstr(buf, d.conf))
				found++;
		}
	}
	closedir(proc);
	return found;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void daemon_kill(void)
{
	int status;

	if (d.pid <= 0)
		return;
	kill(d.pid, SIGKILL);
	assert_int_equal(waitpid(d.pid, &status, 0), d.pid);
	d.pid = 0;
}

static void daemon_cleanup(void)
{
	daemon_kill();
	assert_int_equal(daemon_leftovers(), 0);
	nftw(d.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct closed {
	int calls;
	int reason;
	int wrong_thread;
};

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct closed *c = opaque;

	(void)conn;
	if (!pthread_equal(pthread_self(), g_loop_thread))
		c->wrong_thread++;
	c->reason = reason;
	__atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
}

struct tick {
	int calls;
};

static void on_tick(int timer, void *opaque)
{
	(void)timer;
	((struct tick *)opaque)->calls++;
}

static int count_callbacks(int ms)
{
	int64_t t0 = now_ms();
	int n = 0, rc;

	while (now_ms() - t0 < ms) {
		rc = vent_wait(g_dsp, 10, NULL);
		assert_true(rc >= 0);
		n += rc;
	}
	return n;
}

static void test_libvirt_remote(void **state)
{
	(void)state;
	struct closed cl = {0};

	daemon_start();
	virConnectPtr conn = virConnectOpen(d.uri);
	assert_non_null(conn);
	/* keepalive: every 1 s, give up after 5 missed answers */
	assert_int_equal(virConnectSetKeepAlive(conn, 1, 5), 0);
	assert_int_equal(virConnectRegisterCloseCallback(conn, on_close, &cl, NULL), 0);

	lifecycle_scenario(conn, 0, "remote");
	lifecycle_scenario(conn, 1, "remote");
	/* Idle across a few keepalive periods: the connection stays up. */
	run_loop_ms(2500);
	assert_int_equal(cl.calls, 0);
	assert_int_equal(virConnectIsAlive(conn), 1);

	/* Kill the daemon: the client sees the hang-up on the loop thread. */
	int64_t t0 = now_ms();
	daemon_kill();
	while (!__atomic_load_n(&cl.calls, __ATOMIC_SEQ_CST) && now_ms() - t0 < DELIVERY_MS)
		assert_true(vent_wait(g_dsp, 20, NULL) >= 0);
	print_message("# hang-up seen after %lld ms (reason %d)\n", (long long)(now_ms() - t0),
		      cl.reason);
	assert_int_equal(cl.calls, 1);
	assert_int_equal(cl.reason, VIR_CONNECT_CLOSE_REASON_EOF);
	assert_int_equal(cl.wrong_thread, 0);
	assert_int_equal(virConnectIsAlive(conn), 0);

	/* The loop stays healthy: no busy loop on the dead socket, timers run. */
	run_loop_ms(100);
	int spins = count_callbacks(500);
	print_message("# callbacks in 500 ms after the hang-up: %d\n", spins);
	assert_true(spins < 100);
	struct tick tk = {0};
	int t = vent_add_timeout(g_dsp, 20, on_tick, &tk, NULL);
	assert_true(t > 0);
	run_loop_ms(200);
	assert_true(tk.calls >= 2);
	assert_int_equal(vent_remove_timeout(g_dsp, t), 0);

	virConnectUnregisterCloseCallback(conn, on_close);
	virConnectClose(conn);
	run_loop_ms(100);
	daemon_cleanup();
}

static int setup(void **state)
{
	(void)state;
	case_begin();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (d.pid > 0)
		daemon_cleanup();
	case_end();
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest inproc[] = {
		cmocka_unit_test_setup_teardown(test_libvirt_inproc_loop_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_libvirt_inproc_worker_thread, setup, teardown),
	};
	const struct CMUnitTest remote[] = {
		cmocka_unit_test_setup_teardown(test_libvirt_remote, setup, teardown),
	};
	const char *group = argc > 1 ? argv[1] : "inproc";
	int rc;

	if (!strcmp(group, "remote") && access(LIBVIRTD, X_OK) < 0) {
		fprintf(stderr, "%s not installed (Debian package libvirt-daemon): skipped\n",
			LIBVIRTD);
		return 77;
	}
	g_dsp = new_dispatcher(CLOCK_MONOTONIC);
	if (!g_dsp)
		return 1;
	g_loop_thread = pthread_self();
	if (vent_libvirt_register(g_dsp) < 0)
		return 1;
	virSetErrorFunc(NULL, quiet_error);
	if (!strcmp(group, "remote"))
		rc = cmocka_run_group_tests_name("libvirt-remote", remote, NULL, NULL);
	else
		rc = cmocka_run_group_tests_name("libvirt-inproc", inproc, NULL, NULL);
	/*
	 * libvirt cannot unregister an event implementation and keeps some
	 * global state: the dispatcher stays until exit.
	 */
	return rc;
}
