#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvent embedded in asyncio: the epoll fd is an asyncio reader."""
import asyncio
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


class TestAsyncio(unittest.TestCase):
    def setUp(self):
        signal.alarm(30)
        self.nfds = v.fd_count()

    def tearDown(self):
        v.raise_callback_errors()
        self.assertEqual(v.fd_count(), self.nfds, "fd leaked")
        signal.alarm(0)

    def test_vent_inside_asyncio(self):
        asyncio.run(asyncio.wait_for(self.scenario(), 20))

    async def scenario(self):
        # --- snippet: python-asyncio (README.md) ---
        loop = asyncio.get_running_loop()
        dsp = lib.vent_new_dispatcher(v.CLOCK_MONOTONIC)
        efd = lib.vent_dispatcher_get_efd(dsp)
        # The epoll fd is readable whenever vent has work: run it, without
        # blocking, from asyncio's own loop.
        loop.add_reader(efd, lib.vent_wait, dsp, 0, None)
        # --- end snippet ---
        loop_thread = threading.get_ident()
        threads = set()
        ticks = []
        lines = []
        done = loop.create_future()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

        def on_tick(ev, mask):
            threads.add(threading.get_ident())
            ticks.append((ev.reason, time.monotonic()))
            if len(ticks) < 5:
                ev.set_timeout_ms(10)
            return v.EVENTCB_CONTINUE

        def on_pipe(ev, mask):
            threads.add(threading.get_ident())
            data = os.read(r, 100)
            lines.append(data)
            if data.endswith(b"end") and not done.done():
                done.set_result(True)
            return v.EVENTCB_CONTINUE

        tick = v.Event(-1, 0, on_tick)
        pipe_ev = v.Event(r, v.EPOLLIN, on_pipe)
        try:
            start = time.monotonic()
            self.assertEqual(tick.set_timeout_ms(10), 0)
            self.assertEqual(tick.add(dsp), 0)
            self.assertEqual(pipe_ev.add(dsp), 0)

            # asyncio tasks run alongside: one counts, one feeds the pipe.
            counter = [0]

            async def count():
                while not done.done():
                    counter[0] += 1
                    await asyncio.sleep(0.005)

            async def feed():
                for i in range(5):
                    await asyncio.sleep(0.01)
                    os.write(w, b"line%d\n" % i)
                await asyncio.sleep(0.01)
                os.write(w, b"end")

            await asyncio.gather(count(), feed(), done)
            while len(ticks) < 5:
                await asyncio.sleep(0.01)
                v.raise_callback_errors()
            self.assertEqual(len(ticks), 5)
            self.assertTrue(all(t[0] == v.REASON_TIMEOUT for t in ticks))
            # Each tick re-armed 10 ms from its callback: never early.
            self.assertGreaterEqual(ticks[0][1] - start, 0.010 - 0.001)
            for a, b in zip(ticks, ticks[1:]):
                self.assertGreaterEqual(b[1] - a[1], 0.010 - 0.001)
            self.assertEqual(b"".join(lines).count(b"line"), 5)
            self.assertGreater(counter[0], 1)
            self.assertEqual(threads, {loop_thread})
        finally:
            loop.remove_reader(efd)
            tick.free()
            pipe_ev.free()
            lib.vent_free_dispatcher(dsp)
            os.close(r)
            os.close(w)


if __name__ == "__main__":
    unittest.main(verbosity=2)
