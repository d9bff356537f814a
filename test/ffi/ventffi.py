# SPDX-License-Identifier: GPL-2.0-or-later
"""ventffi - a minimal ctypes binding of libvent for the FFI tests.

Only the standard library: ctypes loads libvent.so.1 by the path in
$VENT_LIB (meson passes the build tree's copy). The binding knows nothing of
the layout of struct event: it uses the vent/ffi.h heap events and accessors.
"""
import ctypes
import errno
import os
import sys

EPOLLIN = 0x001
EPOLLOUT = 0x004
EPOLLERR = 0x008
EPOLLHUP = 0x010
REASON_EVENT_OCCURED = 0
REASON_TIMEOUT = 1
EVENTCB_CONTINUE = 0
EVENTCB_REMOVE = 1
EVENTCB_CLEANUP = 2
CLOCK_MONOTONIC = 1

SKIP = 77


def skip_if_sanitized_without_preload():
    """Exit 77 when libvent is sanitized and its runtime was not preloaded."""
    why = os.environ.get("VENT_FFI_SKIP")
    if why:
        print("SKIP: " + why, file=sys.stderr)
        sys.exit(SKIP)


# --- snippet: python-load (README.md) ---
lib = ctypes.CDLL(os.environ.get("VENT_LIB", "libvent.so.1"), use_errno=True)

# int (*cb_fn)(struct event *, uint32_t)
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)

_protos = {
    "vent_new_dispatcher": (ctypes.c_void_p, [ctypes.c_int]),
    "vent_free_dispatcher": (None, [ctypes.c_void_p]),
    "vent_cleanup_dispatcher": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_dispatcher_get_efd": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_event_add": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    "vent_event_remove": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_wait": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]),
    "vent_loop_stop": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_dispatcher_wake": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_event_new": (ctypes.c_void_p, [ctypes.c_int, ctypes.c_uint32, CB, ctypes.c_void_p]),
    "vent_event_free": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_event_userdata": (ctypes.c_void_p, [ctypes.c_void_p]),
    "vent_event_fd": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_event_reason": (ctypes.c_int, [ctypes.c_void_p]),
    "vent_event_set_events": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32]),
    "vent_event_set_timeout_ms": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int64]),
    "vent_event_sizeof": (ctypes.c_size_t, []),
    "vent_strerror": (ctypes.c_char_p, [ctypes.c_int]),
}
for _name, (_res, _args) in _protos.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
# --- end snippet ---


# vent/sources.h: the init functions fill a struct event that the caller
# allocates; a binding sizes it with vent_event_sizeof().
HAVE_SOURCES = hasattr(lib, "vent_signal_init")
if HAVE_SOURCES:
    _sources = {
        "vent_signal_init": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, CB]),
        "vent_signal_read": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]),
        "vent_signal_release": (None, [ctypes.c_void_p]),
        "vent_wakeup_init": (ctypes.c_int, [ctypes.c_void_p, CB]),
        "vent_wakeup_signal": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint64]),
        "vent_wakeup_drain": (ctypes.c_uint64, [ctypes.c_void_p]),
        "vent_pid_init": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, CB]),
        "vent_pid_wait": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    }
    for _name, (_res, _args) in _sources.items():
        _f = getattr(lib, _name)
        _f.restype = _res
        _f.argtypes = _args


def sigset(*signals):
    """A sigset_t (128 bytes) holding @signals."""
    buf = (ctypes.c_uint64 * 16)()
    for s in signals:
        buf[(s - 1) // 64] |= 1 << ((s - 1) % 64)
    return buf


class SignalfdSiginfo(ctypes.Structure):
    """The head of struct signalfd_siginfo (128 bytes in all)."""
    _fields_ = [("ssi_signo", ctypes.c_uint32), ("ssi_errno", ctypes.c_int32),
                ("ssi_code", ctypes.c_int32), ("ssi_pid", ctypes.c_uint32),
                ("ssi_uid", ctypes.c_uint32), ("ssi_fd", ctypes.c_int32),
                ("ssi_tid", ctypes.c_uint32), ("ssi_band", ctypes.c_uint32),
                ("ssi_overrun", ctypes.c_uint32), ("ssi_trapno", ctypes.c_uint32),
                ("ssi_status", ctypes.c_int32), ("ssi_int", ctypes.c_int32),
                ("ssi_ptr", ctypes.c_uint64), ("_rest", ctypes.c_uint8 * 80)]


def strerror(rc):
    return lib.vent_strerror(rc).decode()


def check(rc):
    """Raise OSError for a negative vent return code."""
    if rc < 0:
        raise OSError(-rc, strerror(rc))
    return rc


callback_errors = []


def raise_callback_errors():
    if callback_errors:
        err = callback_errors[0]
        callback_errors.clear()
        raise err


class Event:
    """A heap event whose callback is a Python callable.

    fn(event, mask) returns EVENTCB_*. The C pointer lives until free() or
    until the library ran the default cleanup (EVENTCB_CLEANUP,
    cleanup_dispatcher, free_dispatcher): the binding then forgets it.
    """

    def __init__(self, fd, mask, fn):
        self.fn = fn
        # The CFUNCTYPE object must outlive every call from C.
        self._cb = CB(self._trampoline)
        self.ptr = lib.vent_event_new(fd, mask, self._cb, None)
        if not self.ptr:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def _trampoline(self, evt, mask):
        # An exception cannot cross the C frame (ctypes would print and
        # return 0): keep it for the test to re-raise.
        try:
            ret = self.fn(self, mask)
        except BaseException as e:  # noqa: B902
            callback_errors.append(e)
            return EVENTCB_CONTINUE
        if ret == EVENTCB_CLEANUP:
            self.ptr = None  # the default cleanup frees it after we return
        return ret

    @property
    def fd(self):
        return lib.vent_event_fd(self.ptr)

    @property
    def reason(self):
        return lib.vent_event_reason(self.ptr)

    def set_events(self, mask):
        return lib.vent_event_set_events(self.ptr, mask)

    def set_timeout_ms(self, ms):
        return lib.vent_event_set_timeout_ms(self.ptr, ms)

    def add(self, dsp):
        return lib.vent_event_add(dsp, self.ptr)

    def remove(self):
        return lib.vent_event_remove(self.ptr)

    def free(self):
        if self.ptr:
            check(lib.vent_event_free(self.ptr))
            self.ptr = None


def fd_count():
    return len(os.listdir("/proc/self/fd"))
