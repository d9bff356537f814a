/* SPDX-License-Identifier: GPL-2.0-or-later */
/* util/epoll.h - a dispatcher's epoll set as /proc shows it. */
#ifndef VENT_TEST_UTIL_EPOLL_H
#define VENT_TEST_UTIL_EPOLL_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <vent/event.h>

/*
 * The epoll set that holds @d's registrations, for tests that read it
 * through /proc/self/fdinfo: dispatcher_get_efd() returns a set that holds
 * only that one (it stays when the inner one is replaced), listed in its
 * fdinfo as its single target.
 */
static inline int dispatcher_inner_epfd(struct dispatcher *d)
{
	char path[64], line[256], link[64];
	int efd = dispatcher_get_efd(d), inner = -1, n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", efd);
	FILE *f = fopen(path, "re");
	if (!f)
		return efd;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "tfd: %d", &inner) == 1)
			n++;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", inner);
	ssize_t len = n == 1 ? readlink(path, link, sizeof(link) - 1) : -1;
	if (len < 0)
		return efd;
	link[len] = '\0';
	return strcmp(link, "anon_inode:[eventpoll]") == 0 ? inner : efd;
}

#endif
