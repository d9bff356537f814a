#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvent from Python ctypes: heap events, timeouts, error codes, threads."""
import ctypes
import errno
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ventffi as v  # noqa: E402
from ventffi import lib  # noqa: E402

v.skip_if_sanitized_without_preload()


class VentTestCase(unittest.TestCase):
    def setUp(self):
        signal.alarm(30)
        self.nfds = v.fd_count()
        self.dsp = lib.vent_new_dispatcher(v.CLOCK_MONOTONIC)
        self.assertTrue(self.dsp)
        self.loop_thread = threading.get_ident()
        self.events = []
        self.fds = []

    def tearDown(self):
        v.raise_callback_errors()
        for e in self.events:
            e.free()
        lib.vent_free_dispatcher(self.dsp)
        for fd in self.fds:
            os.close(fd)
        self.assertEqual(v.fd_count(), self.nfds, "fd leaked")
        signal.alarm(0)

    def pipe(self):
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.fds += [r, w]
        return r, w

    def event(self, fd, mask, fn):
        e = v.Event(fd, mask, fn)
        self.events.append(e)
        return e

    def wait_until(self, cond, limit=10.0):
        deadline = time.monotonic() + limit
        while not cond():
            v.raise_callback_errors()
            self.assertLess(time.monotonic(), deadline, "timed out")
            self.assertGreaterEqual(lib.vent_wait(self.dsp, 1000, None), 0)


class TestEvents(VentTestCase):
    def test_pipe_event_with_timeout(self):
        r, w = self.pipe()
        seen = []

        def cb(ev, mask):
            self.assertEqual(threading.get_ident(), self.loop_thread)
            seen.append((ev.reason, mask, time.monotonic()))
            if ev.reason == v.REASON_EVENT_OCCURED:
                os.read(r, 100)
            return v.EVENTCB_CONTINUE

        ev = self.event(r, v.EPOLLIN, cb)
        self.assertEqual(ev.fd, r)
        self.assertEqual(ev.set_timeout_ms(50), 0)
        start = time.monotonic()
        self.assertEqual(ev.add(self.dsp), 0)
        self.wait_until(lambda: seen)
        reason, mask, when = seen[0]
        self.assertEqual(reason, v.REASON_TIMEOUT)
        self.assertEqual(mask, 0)
        self.assertGreaterEqual(when - start, 0.050 - 0.001)  # never early
        # Oneshot: no second timeout; the fd still works.
        self.assertEqual(lib.vent_wait(self.dsp, 80, None), 0)
        os.write(w, b"x")
        self.wait_until(lambda: len(seen) == 2)
        self.assertEqual(seen[1][0], v.REASON_EVENT_OCCURED)
        self.assertTrue(seen[1][1] & v.EPOLLIN)

    def test_timer_rearm(self):
        fired = []

        def cb(ev, mask):
            fired.append((ev.reason, mask))
            if len(fired) < 3:
                self.assertEqual(ev.set_timeout_ms(5), 0)
            return v.EVENTCB_CONTINUE

        tim = self.event(-1, 0, cb)
        self.assertEqual(tim.fd, -1)
        self.assertEqual(tim.set_timeout_ms(5), 0)
        self.assertEqual(tim.add(self.dsp), 0)
        self.wait_until(lambda: len(fired) == 3)
        self.assertEqual(fired, [(v.REASON_TIMEOUT, 0)] * 3)
        self.assertEqual(lib.vent_wait(self.dsp, 30, None), 0)
        # 0 cancels.
        self.assertEqual(tim.set_timeout_ms(10), 0)
        self.assertEqual(tim.set_timeout_ms(0), 0)
        self.assertEqual(lib.vent_wait(self.dsp, 40, None), 0)
        self.assertEqual(len(fired), 3)

    def test_remove_then_readd(self):
        r, w = self.pipe()
        calls = []

        def cb(ev, mask):
            calls.append(mask)
            os.read(r, 100)
            return v.EVENTCB_REMOVE

        ev = self.event(r, v.EPOLLIN, cb)
        self.assertEqual(ev.add(self.dsp), 0)
        os.write(w, b"x")
        self.wait_until(lambda: calls)
        os.write(w, b"y")
        self.assertEqual(lib.vent_wait(self.dsp, 50, None), 0)
        self.assertEqual(len(calls), 1)
        self.assertEqual(ev.remove(), -errno.EINVAL)  # removed already
        self.assertEqual(ev.add(self.dsp), 0)  # REMOVE keeps the object
        self.wait_until(lambda: len(calls) == 2)

    def test_cleanup_frees_keeps_fd(self):
        r, w = self.pipe()
        calls = []

        def cb(ev, mask):
            calls.append(mask)
            return v.EVENTCB_CLEANUP

        ev = self.event(r, v.EPOLLIN, cb)
        self.assertEqual(ev.add(self.dsp), 0)
        os.write(w, b"x")
        self.wait_until(lambda: calls)
        self.assertIsNone(ev.ptr)  # freed by the default cleanup
        os.fstat(r)  # ... which did not close the fd
        self.assertEqual(lib.vent_wait(self.dsp, 30, None), 0)
        self.assertEqual(len(calls), 1)

    def test_set_events_disable(self):
        r, w = self.pipe()
        calls = []
        ev = self.event(r, v.EPOLLIN, lambda ev, m: calls.append(m) or 0)
        self.assertEqual(ev.add(self.dsp), 0)
        self.assertEqual(ev.set_events(0), 0)
        os.write(w, b"x")
        self.assertEqual(lib.vent_wait(self.dsp, 50, None), 0)
        self.assertEqual(ev.set_events(v.EPOLLIN), 0)
        self.assertEqual(lib.vent_wait(self.dsp, 1000, None), 1)
        self.assertEqual(len(calls), 1)
        self.assertTrue(calls[0] & v.EPOLLIN)

    def test_free_added_event(self):
        r, w = self.pipe()
        calls = []
        ev = self.event(r, v.EPOLLIN, lambda ev, m: calls.append(m) or 0)
        self.assertEqual(ev.set_timeout_ms(5), 0)
        self.assertEqual(ev.add(self.dsp), 0)
        ev.free()  # removes first
        os.write(w, b"x")
        self.assertEqual(lib.vent_wait(self.dsp, 30, None), 0)
        self.assertEqual(calls, [])

    def test_free_dispatcher_runs_cleanup(self):
        r, _ = self.pipe()
        ev = v.Event(r, v.EPOLLIN, lambda ev, m: 0)
        self.assertEqual(ev.add(self.dsp), 0)
        cleanup_dispatcher = lib.vent_cleanup_dispatcher(self.dsp)
        self.assertEqual(cleanup_dispatcher, 0)
        ev.ptr = None  # the default cleanup freed it
        os.fstat(r)


class TestErrors(VentTestCase):
    def test_einval(self):
        ev = self.event(-1, 0, lambda ev, m: 0)
        self.assertEqual(ev.set_timeout_ms(-1), -errno.EINVAL)
        self.assertEqual(ev.remove(), -errno.EINVAL)
        self.assertEqual(lib.vent_event_add(None, ev.ptr), -errno.EINVAL)
        self.assertEqual(lib.vent_wait(self.dsp, -2, None), -errno.EINVAL)
        self.assertEqual(lib.vent_event_fd(None), -errno.EINVAL)
        self.assertEqual(lib.vent_event_reason(None), -errno.EINVAL)
        self.assertEqual(lib.vent_event_set_events(None, 1), -errno.EINVAL)
        self.assertEqual(lib.vent_event_set_timeout_ms(None, 1), -errno.EINVAL)
        ctypes.set_errno(0)
        self.assertIsNone(lib.vent_event_new(-1, 0, v.CB(), None))  # NULL callback
        self.assertEqual(ctypes.get_errno(), errno.EINVAL)
        with self.assertRaises(OSError) as cm:
            v.Event(-7, 0, lambda ev, m: 0)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual(v.strerror(-errno.EINVAL), "Invalid argument")

    def test_eexist(self):
        r, _ = self.pipe()
        a = self.event(r, v.EPOLLIN, lambda ev, m: 0)
        b = self.event(r, v.EPOLLIN, lambda ev, m: 0)
        self.assertEqual(a.add(self.dsp), 0)
        self.assertEqual(a.add(self.dsp), -errno.EEXIST)
        self.assertEqual(b.add(self.dsp), -errno.EEXIST)  # same fd
        self.assertEqual(v.strerror(-errno.EEXIST), "File exists")
        with self.assertRaises(OSError) as cm:
            v.check(b.add(self.dsp))
        self.assertEqual(cm.exception.errno, errno.EEXIST)

    def test_nested_wait_ebusy(self):
        got = []

        def cb(ev, mask):
            got.append(lib.vent_wait(self.dsp, 0, None))
            return v.EVENTCB_CONTINUE

        tim = self.event(-1, 0, cb)
        self.assertEqual(tim.set_timeout_ms(1), 0)
        self.assertEqual(tim.add(self.dsp), 0)
        self.wait_until(lambda: got)
        self.assertEqual(got, [-errno.EBUSY])

    def test_sizeof(self):
        self.assertEqual(lib.vent_event_sizeof(), 64)


class TestThreads(VentTestCase):
    def test_callbacks_on_loop_thread(self):
        """Another thread writes and wakes; callbacks run on the loop thread."""
        r, w = self.pipe()
        threads_seen = set()
        got = []

        def cb(ev, mask):
            threads_seen.add(threading.get_ident())
            got.append(os.read(r, 100))
            return v.EVENTCB_CONTINUE

        ev = self.event(r, v.EPOLLIN, cb)
        self.assertEqual(ev.add(self.dsp), 0)

        def writer():
            for i in range(5):
                os.write(w, b"%d" % i)
                self.assertEqual(lib.vent_dispatcher_wake(self.dsp), 0)
                time.sleep(0.01)

        t = threading.Thread(target=writer)
        t.start()
        self.wait_until(lambda: b"".join(got) == b"01234")
        t.join()
        self.assertEqual(threads_seen, {self.loop_thread})



@unittest.skipUnless(v.HAVE_SOURCES, "libvent has no vent/sources.h")
class TestSources(VentTestCase):
    def source(self):
        # sources.h fills a struct event the caller allocates. The buffer
        # must outlive the dispatcher, whose teardown runs the cleanup.
        buf = ctypes.create_string_buffer(lib.vent_event_sizeof())
        self.bufs = getattr(self, "bufs", []) + [buf]
        return ctypes.addressof(buf)

    def callback(self, fn):
        cb = v.CB(fn)
        self.cbs = getattr(self, "cbs", []) + [cb]
        return cb

    def test_signal_source(self):
        sigs = []

        def cb(evt, mask):
            self.assertEqual(threading.get_ident(), self.loop_thread)
            self.assertEqual(lib.vent_event_reason(evt), v.REASON_EVENT_OCCURED)
            self.assertTrue(mask & v.EPOLLIN)
            si = (v.SignalfdSiginfo * 4)()
            n = lib.vent_signal_read(evt, si, 4)
            sigs.extend(si[i].ssi_signo for i in range(n))
            return v.EVENTCB_CLEANUP  # vent_signal_release()

        before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.assertNotIn(signal.SIGUSR1, before)
        evt = self.source()
        ccb = self.callback(lambda e, m: self._guard(cb, e, m))
        self.assertEqual(lib.vent_signal_init(evt, v.sigset(signal.SIGUSR1), ccb), 0)
        self.assertIn(signal.SIGUSR1, signal.pthread_sigmask(signal.SIG_BLOCK, []))
        self.assertEqual(lib.vent_event_add(self.dsp, evt), 0)
        # A second source for the same signal on this dispatcher.
        dup = self.source()
        self.assertEqual(lib.vent_signal_init(dup, v.sigset(signal.SIGUSR1), ccb), 0)
        self.assertEqual(lib.vent_event_add(self.dsp, dup), -errno.EBUSY)
        lib.vent_signal_release(dup)
        bad = self.source()
        self.assertEqual(lib.vent_signal_init(bad, v.sigset(signal.SIGKILL), ccb),
                         -errno.EINVAL)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        self.wait_until(lambda: sigs)
        self.assertEqual(sigs, [signal.SIGUSR1])
        # The cleanup (vent_signal_release) restored the mask.
        self.assertEqual(signal.pthread_sigmask(signal.SIG_BLOCK, []), before)

    def _guard(self, fn, evt, mask):
        try:
            return fn(evt, mask)
        except BaseException as e:
            v.callback_errors.append(e)
            return v.EVENTCB_CONTINUE

    def test_wakeup_from_thread(self):
        total = [0]
        threads_seen = set()

        def cb(evt, mask):
            threads_seen.add(threading.get_ident())
            total[0] += lib.vent_wakeup_drain(evt)
            return v.EVENTCB_CONTINUE

        waker = self.source()
        ccb = self.callback(lambda e, m: self._guard(cb, e, m))
        self.assertEqual(lib.vent_wakeup_init(waker, ccb), 0)
        self.assertEqual(lib.vent_event_set_timeout_ms(waker, 10000), 0)
        self.assertEqual(lib.vent_event_add(self.dsp, waker), 0)
        rcs = []

        def signaller():
            for _ in range(100):
                rcs.append(lib.vent_wakeup_signal(waker, 1))
                if len(rcs) % 10 == 0:
                    time.sleep(0.001)

        t = threading.Thread(target=signaller)
        t.start()
        self.wait_until(lambda: total[0] == 100)
        t.join()
        self.assertEqual(rcs, [0] * 100)
        self.assertEqual(threads_seen, {self.loop_thread})
        self.assertEqual(lib.vent_wakeup_signal(None, 1), -errno.EINVAL)
        # teardown's free_dispatcher() runs the cleanup: closes the eventfd.

    def test_pid_exit(self):
        done = []

        def cb(evt, mask):
            info = (ctypes.c_int * 32)()  # siginfo_t
            done.append((lib.vent_event_reason(evt), lib.vent_pid_wait(evt, info),
                         info[0], info[6]))  # si_signo, si_status
            return v.EVENTCB_CLEANUP

        pid = os.fork()
        if pid == 0:
            os._exit(7)
        evt = self.source()
        ccb = self.callback(lambda e, m: self._guard(cb, e, m))
        self.assertEqual(lib.vent_pid_init(evt, pid, ccb), 0)
        self.assertEqual(lib.vent_pid_init(self.source(), 0, ccb), -errno.EINVAL)
        self.assertEqual(lib.vent_event_add(self.dsp, evt), 0)
        self.wait_until(lambda: done)
        self.assertEqual(done, [(v.REASON_EVENT_OCCURED, 0, signal.SIGCHLD, 7)])
        with self.assertRaises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # vent_pid_wait() reaped it


if __name__ == "__main__":
    unittest.main(verbosity=2)
