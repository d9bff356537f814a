// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * coexist-test - vent and libevent in one process: each library's calls,
 * from the program and from inside the library, reach its own code.
 *
 * Usage: coexist-test FIRST  (FIRST: "vent" or "libevent", the library that
 * must come first in the program's DT_NEEDED list, i.e. the link order
 * -lvent -levent or -levent -lvent). Both orders are separate executables;
 * the test checks that the loader really saw the order it was built for,
 * then runs libevent, vent, and libevent again. TAP on stdout.
 */

#include <link.h>
#include <stdio.h>
#include <string.h>

#include "coexist.h"

static int vent_pos, libevent_pos, pos;

static int note_lib(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	const char *base = strrchr(info->dlpi_name, '/');
	base = base ? base + 1 : info->dlpi_name;
	pos++;
	if (!vent_pos && strncmp(base, "libvent.so", 10) == 0)
		vent_pos = pos;
	if (!libevent_pos && strncmp(base, "libevent-", 9) == 0)
		libevent_pos = pos;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "vent") && strcmp(argv[1], "libevent"))) {
		fprintf(stderr, "usage: coexist-test vent|libevent\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..12\n");
	/* The search order for symbols is the load order, which follows DT_NEEDED. */
	dl_iterate_phdr(note_lib, NULL);
	int vent_first = vent_pos && libevent_pos && vent_pos < libevent_pos;
	int want_vent_first = strcmp(argv[1], "vent") == 0;
	int order_ok = vent_pos && libevent_pos && vent_first == want_vent_first;
	printf("%s - both loaded, %s first (libvent #%d, libevent #%d)\n", order_ok ? "ok" : "not ok",
	       argv[1], vent_pos, libevent_pos);
	int fails = !order_ok;
	fails += libevent_part();
	fails += vent_part();
	fails += libevent_part();
	return fails ? 1 : 0;
}
