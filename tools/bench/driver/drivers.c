/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* drivers.c - the list of event-library drivers built into the benchmarks. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

const struct bench_driver *const bench_drivers[] = {
#ifdef HAVE_VENT
	&bench_driver_vent,
#endif
	&bench_driver_raw,
#ifdef HAVE_LIBEV
	&bench_driver_libev,
	&bench_driver_libev_now,
#endif
#ifdef HAVE_LIBEVENT
	&bench_driver_libevent,
#endif
#ifdef HAVE_LIBUV
	&bench_driver_libuv,
#endif
#ifdef HAVE_SDEVENT
	&bench_driver_sdevent,
#endif
	NULL,
};

/*
 * The ring hooks for the programs that do not run the ring (ring-bench
 * defines its own, which take precedence).
 */
__attribute__((weak)) void ring_fire(struct ring_ctx *ctx, int idx)
{
	(void)ctx;
	(void)idx;
}

__attribute__((weak)) int64_t ring_timeout_ns(void)
{
	return 0;
}

const struct bench_driver *bench_find_driver(const char *name)
{
	for (size_t i = 0; bench_drivers[i]; i++)
		if (strcmp(bench_drivers[i]->name, name) == 0)
			return bench_drivers[i];
	return NULL;
}

void bench_exec_peer(const char *tool, const char *name, char *argv[])
{
	char self[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0 || strchr(name, '/'))
		return;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/%s-%s", self, tool, name);
	/* Only from the main program: the helper never re-executes itself. */
	if (strcmp(path + strlen(self) + 1, tool) == 0 || access(path, X_OK) != 0)
		return;
	execv(path, argv);
}

const struct bench_driver *bench_pick_driver(const char *tool, const char *name, char *argv[])
{
	const struct bench_driver *drv = bench_find_driver(name);

	if (!drv)
		bench_exec_peer(tool, name, argv);
	if (!drv)
		fprintf(stderr, "%s: --lib: invalid value '%s' (not built in; see --list)\n", tool,
			name);
	return drv;
}

void bench_list_drivers(void)
{
	for (size_t i = 0; bench_drivers[i]; i++)
		printf("%s %s\n", bench_drivers[i]->name, bench_drivers[i]->version());
}
