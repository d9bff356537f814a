// SPDX-License-Identifier: LGPL-2.1-or-later
// aio/capi.cpp - extern "C" definitions for include/vent/aio.h.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <vent/aio.h>

#include "aio/aio.hpp"
#include "base/capi.hpp"

using vent::Aio;
using vent::detail::AioArgs;
using vent::detail::AioOp;
using vent::detail::create;
using vent::detail::with_object;

struct vent_aio {
	vent_aio(struct dispatcher *dsp, int backend) : impl(dsp, backend) {}
	Aio impl;
};

namespace {

inline Aio *to_impl(const struct vent_aio *a) noexcept
{
	return a ? const_cast<Aio *>(&a->impl) : nullptr;
}

// impl is the first and only member of the standard-layout tag.
void delete_tag(Aio *impl) noexcept
{
	delete reinterpret_cast<struct vent_aio *>(impl);
}

int submit(struct vent_aio *aio, const AioArgs &a, vent_aio_cb cb, void *arg) noexcept
{
	if (!cb)
		return -EINVAL;
	return with_object(to_impl(aio), [&](Aio &p) { return p.submit(a, cb, arg); });
}

} // namespace

extern "C" {

VENT_PUBLIC struct vent_aio *vent_aio_new_backend(struct dispatcher *dsp, int backend) noexcept
{
	if (backend != VENT_AIO_AUTO && backend != VENT_AIO_POOL && backend != VENT_AIO_URING) {
		errno = EINVAL;
		return nullptr;
	}
	return create([&] {
		auto *aio = new struct vent_aio(dsp, backend);
		aio->impl.set_deleter(delete_tag);
		return aio;
	});
}

VENT_PUBLIC struct vent_aio *vent_aio_new(struct dispatcher *dsp) noexcept
{
	// secure_getenv: a set-user-ID program ignores it (automatic choice).
	const char *env = secure_getenv("VENT_AIO_BACKEND");
	int backend = VENT_AIO_AUTO;
	if (env && *env && std::strcmp(env, "auto") != 0) {
		if (std::strcmp(env, "pool") == 0) {
			backend = VENT_AIO_POOL;
		} else if (std::strcmp(env, "uring") == 0) {
			backend = VENT_AIO_URING;
		} else {
			errno = EINVAL;
			return nullptr;
		}
	}
	return vent_aio_new_backend(dsp, backend);
}

VENT_PUBLIC int vent_aio_backend(const struct vent_aio *aio) noexcept
{
	return with_object(to_impl(aio), [](Aio &p) { return p.backend(); });
}

VENT_PUBLIC void vent_aio_free(struct vent_aio *aio) noexcept
{
	if (aio)
		to_impl(aio)->destroy();
}

VENT_PUBLIC int vent_aio_set_threads(struct vent_aio *aio, unsigned min, unsigned max) noexcept
{
	return with_object(to_impl(aio), [&](Aio &p) { return p.set_threads(min, max); });
}

VENT_PUBLIC int vent_aio_fd(const struct vent_aio *aio) noexcept
{
	return with_object(to_impl(aio), [](Aio &p) { return p.fd(); });
}

VENT_PUBLIC int vent_aio_poll(struct vent_aio *aio) noexcept
{
	return with_object(to_impl(aio), [](Aio &p) { return p.poll(); });
}

VENT_PUBLIC unsigned vent_aio_pending(const struct vent_aio *aio) noexcept
{
	if (!aio || to_impl(aio)->forked())
		return 0;
	return to_impl(aio)->pending();
}

VENT_PUBLIC int vent_aio_cancel(struct vent_aio *aio, int id) noexcept
{
	return with_object(to_impl(aio), [&](Aio &p) { return p.cancel(id); });
}

VENT_PUBLIC int vent_aio_openat(struct vent_aio *aio, int dirfd, const char *path, int flags,
				mode_t mode, vent_aio_cb cb, void *arg) noexcept
{
	if (!path)
		return -EINVAL;
	AioArgs a{AioOp::Openat};
	a.fd = dirfd;
	a.path = path;
	a.flags = flags;
	a.mode = mode;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_close(struct vent_aio *aio, int fd, vent_aio_cb cb, void *arg) noexcept
{
	AioArgs a{AioOp::Close};
	a.fd = fd;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_pread(struct vent_aio *aio, int fd, void *buf, size_t len, int64_t off,
			       vent_aio_cb cb, void *arg) noexcept
{
	AioArgs a{AioOp::Pread};
	a.fd = fd;
	a.buf = buf;
	a.len = len;
	a.off = off;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_pwrite(struct vent_aio *aio, int fd, const void *buf, size_t len,
				int64_t off, vent_aio_cb cb, void *arg) noexcept
{
	AioArgs a{AioOp::Pwrite};
	a.fd = fd;
	a.buf = const_cast<void *>(buf);
	a.len = len;
	a.off = off;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_fstatat(struct vent_aio *aio, int dirfd, const char *path,
				 struct stat *st, int flags, vent_aio_cb cb, void *arg) noexcept
{
	if (!path || !st)
		return -EINVAL;
	AioArgs a{AioOp::Fstatat};
	a.fd = dirfd;
	a.path = path;
	a.st = st;
	a.flags = flags;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_statx(struct vent_aio *aio, int dirfd, const char *path, int flags,
			       unsigned int mask, struct statx *stx, vent_aio_cb cb,
			       void *arg) noexcept
{
	if (!path || !stx)
		return -EINVAL;
	AioArgs a{AioOp::Statx};
	a.fd = dirfd;
	a.path = path;
	a.stx = stx;
	a.flags = flags;
	a.mask = mask;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_unlinkat(struct vent_aio *aio, int dirfd, const char *path, int flags,
				  vent_aio_cb cb, void *arg) noexcept
{
	if (!path)
		return -EINVAL;
	AioArgs a{AioOp::Unlinkat};
	a.fd = dirfd;
	a.path = path;
	a.flags = flags;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_renameat(struct vent_aio *aio, int olddirfd, const char *oldpath,
				  int newdirfd, const char *newpath, vent_aio_cb cb,
				  void *arg) noexcept
{
	if (!oldpath || !newpath)
		return -EINVAL;
	AioArgs a{AioOp::Renameat};
	a.fd = olddirfd;
	a.path = oldpath;
	a.fd2 = newdirfd;
	a.path2 = newpath;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_mkdirat(struct vent_aio *aio, int dirfd, const char *path, mode_t mode,
				 vent_aio_cb cb, void *arg) noexcept
{
	if (!path)
		return -EINVAL;
	AioArgs a{AioOp::Mkdirat};
	a.fd = dirfd;
	a.path = path;
	a.mode = mode;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_fsync(struct vent_aio *aio, int fd, vent_aio_cb cb, void *arg) noexcept
{
	AioArgs a{AioOp::Fsync};
	a.fd = fd;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_fdatasync(struct vent_aio *aio, int fd, vent_aio_cb cb,
				   void *arg) noexcept
{
	AioArgs a{AioOp::Fdatasync};
	a.fd = fd;
	return submit(aio, a, cb, arg);
}

VENT_PUBLIC int vent_aio_readahead(struct vent_aio *aio, int fd, int64_t off, size_t len,
				   vent_aio_cb cb, void *arg) noexcept
{
	AioArgs a{AioOp::Readahead};
	a.fd = fd;
	a.off = off;
	a.len = len;
	return submit(aio, a, cb, arg);
}

} // extern "C"
