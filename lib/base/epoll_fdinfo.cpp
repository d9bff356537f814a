// SPDX-License-Identifier: LGPL-2.1-or-later
#include "base/epoll_fdinfo.hpp"

#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace vent::detail {

EpollFdinfo::EpollFdinfo(int epfd) noexcept
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	fd_.reset(open(path, O_RDONLY | O_CLOEXEC));
}

int EpollFdinfo::next(EpollRecord &rec) noexcept
{
	if (!fd_)
		return 0;
	for (;;) {
		if (used_ > 0) {
			memmove(buf_, buf_ + used_, have_ - used_);
			have_ -= used_;
			used_ = 0;
		}
		if (eof_ && have_ == 0)
			return 0;
		if (!eof_ && have_ < sizeof(buf_)) {
			ssize_t r = read(fd_.get(), buf_ + have_, sizeof(buf_) - have_);
			if (r < 0)
				return -1;
			if (r == 0)
				eof_ = true;
			have_ += static_cast<size_t>(r);
		}
		char *nl = static_cast<char *>(memchr(buf_, '\n', have_));
		if (!nl) {
			if (eof_ || have_ == sizeof(buf_))
				return 0;
			continue;
		}
		*nl = '\0';
		used_ = static_cast<size_t>(nl - buf_) + 1;
		int tfd;
		unsigned events;
		unsigned long long data;
		unsigned long ino = 0;
		// pos: is skipped (%*d does not count); ino: stays 0 if absent.
		if (sscanf(buf_, "tfd: %d events: %x data: %llx pos:%*d ino:%lx", &tfd, &events,
			   &data, &ino) >= 3) {
			rec = EpollRecord{tfd, events, data, ino};
			return 1;
		}
	}
}

} // namespace vent::detail
