/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fault-driver.c - runs fault-scenario with failalloc.so preloaded for
 * N = 1, 2, ... (FAILALLOC_N) until a run completes without an injected
 * failure. Each run is a fresh process: a run that dies from a signal
 * (abort from an escaped exception, a crash) or fails a check fails the
 * test, and prints the command that reproduces it with a trace.
 *
 *   fault-driver SCENARIO FAILALLOC_SO [MAX_N]
 *
 * Under AddressSanitizer each run also ends with LeakSanitizer's check.
 * A runtime that links the sanitizer into the executable (clang's default)
 * takes malloc before any preload: the scenario's self-check notices that
 * the interposer sees nothing (exit 4) and the driver skips (77) with the
 * reason; the plain and gcc builds are where this test runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run(const char *scenario, const char *so, long n)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		char nbuf[32];
		snprintf(nbuf, sizeof(nbuf), "%ld", n);
		setenv("FAILALLOC_N", nbuf, 1);
		setenv("LD_PRELOAD", so, 1);
		/* The preload comes before a shared ASan runtime: allowed. */
		const char *a = getenv("ASAN_OPTIONS");
		char abuf[1024];
		snprintf(abuf, sizeof(abuf), "%s%sverify_asan_link_order=0", a ? a : "",
			 a && *a ? ":" : "");
		setenv("ASAN_OPTIONS", abuf, 1);
		/* Quiet stdout per run; stderr (diagnostics) stays. */
		if (!getenv("FAULT_DRIVER_VERBOSE") && !freopen("/dev/null", "w", stdout))
			_exit(126);
		execl(scenario, scenario, (char *)NULL);
		perror(scenario);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			perror("waitpid");
			exit(1);
		}
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "N=%ld: scenario killed by signal %d (%s)\n", n, WTERMSIG(st),
			strsignal(WTERMSIG(st)));
		return -1;
	}
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SCENARIO FAILALLOC_SO [MAX_N]\n", argv[0]);
		return 2;
	}
	long max = argc > 3 ? atol(argv[3]) : 20000;
	long n;
	for (n = 1; n <= max; n++) {
		int rc = run(argv[1], argv[2], n);
		if (rc == 0)
			continue;
		if (rc == 3)
			break;
		if (rc == 4 && n == 1) {
			printf("SKIP: the allocator cannot be interposed in this build "
			       "(sanitizer runtime linked into the executable)\n");
			return 77;
		}
		fprintf(stderr,
			"FAIL at N=%ld (exit %d). Reproduce with:\n"
			"  FAILALLOC_N=%ld FAILALLOC_TRACE=1 LD_PRELOAD=%s %s\n",
			n, rc, n, argv[2], argv[1]);
		return 1;
	}
	if (n > max) {
		fprintf(stderr, "still injecting failures at N=%ld\n", max);
		return 1;
	}
	if (n < 10) {
		fprintf(stderr, "only %ld allocations: the interposer sees too little\n", n - 1);
		return 1;
	}
	printf("failed each of the %ld allocations of the scenario in turn: all handled\n",
	       n - 1);
	return 0;
}
