/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fd-util.h - open file descriptor count, shared by the test helpers. */
#ifndef VENT_TEST_FD_UTIL_H
#define VENT_TEST_FD_UTIL_H

#include <dirent.h>

/* Number of open fds of this process (-1 without /proc). */
static inline int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

#endif
