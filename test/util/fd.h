/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util/fd.h - the fd-leak check of every test: how many fds are open.
 *
 * fd_count() reads /proc/self/fd with getdents64 into a stack buffer, so
 * it does not allocate and can run while the fault-injection programs make
 * allocations fail (opendir() would allocate).
 */
#ifndef VENT_TEST_UTIL_FD_H
#define VENT_TEST_UTIL_FD_H

#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Number of open fds of this process (-1 without /proc). */
static inline int fd_count(void)
{
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[8192];
	int n = 0;

	if (dfd < 0)
		return -1;
	for (;;) {
		long r = syscall(SYS_getdents64, dfd, buf, sizeof(buf));

		if (r <= 0)
			break;
		for (long off = 0; off < r;) {
			unsigned short reclen;

			/* struct linux_dirent64: d_reclen at 16, d_name at 19 */
			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			if (buf[off + 19] != '.')
				n++;
			off += reclen;
		}
	}
	close(dfd);
	return n - 1; /* the directory fd itself */
}

static inline int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

#endif
