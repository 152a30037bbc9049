"""The hub-lag watchdog: how late a 0.1 s sleep wakes up, all the time.

This is the inflight probe's ``greenthread_overhead`` measured in every
process without a prober: under eventlet, a hub that something blocked or
kept busy; under threading, a thread that waited for the GIL or a CPU.
Each wake-up is observed in ``nova_lite_hub_lag_seconds``; the recent
worst feeds ``/health``'s ``hub:lag`` check.
"""

import collections
import time

from nova_lite import concurrency
from nova_lite.metrics import registry

INTERVAL = 0.1


class HubWatchdog:
    """Sleeps ``INTERVAL`` in a loop of its own thread (green or native)."""

    def __init__(self, window=60.0):
        self._window = window
        # (monotonic time of the wake-up, lag in s); pruned to the window.
        self._recent = collections.deque()
        self._stopping = False
        self._thread = None
        self.last_tick = None

    def start(self):
        self.last_tick = time.monotonic()
        self._thread = concurrency.spawn(self._run)

    def stop(self):
        self._stopping = True

    def _run(self):
        while not self._stopping:
            start = time.monotonic()
            concurrency.sleep(INTERVAL)
            now = time.monotonic()
            lag = max(0.0, now - start - INTERVAL)
            registry.HUB_LAG.observe(lag)
            self._record(now, lag)

    def _record(self, now, lag):
        self.last_tick = now
        self._recent.append((now, lag))
        while self._recent and self._recent[0][0] < now - self._window:
            self._recent.popleft()

    def worst(self, seconds):
        """The largest lag of the last ``seconds``, in s (0 if none)."""
        cutoff = time.monotonic() - seconds
        return max((lag for at, lag in list(self._recent) if at >= cutoff),
                   default=0.0)

    def stalled_for(self):
        """Seconds since the loop last woke up (a wedged hub or GIL)."""
        if self.last_tick is None:
            return 0.0
        return max(0.0, time.monotonic() - self.last_tick)
