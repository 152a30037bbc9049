"""Clock offsets, the NTP way, against one reference: the database server.

Each inflight probe gives the probed service's clock minus the prober's,
``((t1 - t0) + (t2 - t3)) / 2`` (``nova_lite.inflight.probe``).  It is off
by half the difference between the two legs of the round trip, which the
prober cannot see, so by at most half the transit (``total -
in_service``): that is its error bound.  One uneven round trip (24.5 ms
there, 3.4 ms back) makes a sample 10.55 ms off.  So, like NTP's clock
filter, a host's estimate is the sample with the **lowest bound** (the
lowest round trip) over a window of ``FILTER_ROUNDS`` rounds, not the
last sample.

One reference: the database server's clock, which every service can read.
Each inflight daemon measures its own offset to it the same way, with a few
``SELECT <server now>`` round trips per round
(``nova_lite.db.clocks.ClockQueries.reference_offset``).  Offsets compose::

    host - reference = (host - prober) + (prober - reference)

and so do the bounds (they add up), so offsets measured by different
probers agree on one scale.  Every value here is in ms.
"""

import collections
import dataclasses
import time

# NTP's clock filter keeps a peer's last 8 samples.  A window of this many
# rounds keeps as many while rounds are regular, and forgets a host that
# stopped answering.
FILTER_ROUNDS = 8
# SELECT <server now> round trips per round; the lowest is kept.
REFERENCE_PROBES = 3


@dataclasses.dataclass(frozen=True)
class Offset:
    """One clock minus another, in ms: the truth lies within ``offset_ms
    ± bound_ms``."""

    offset_ms: float
    bound_ms: float

    def __add__(self, other):
        """(A - B) + (B - C) = A - C; the bounds add up."""
        return Offset(self.offset_ms + other.offset_ms,
                      self.bound_ms + other.bound_ms)


def from_sample(sample):
    """The probed service's clock minus the prober's, bound by half the
    transit; None for a probe that was not answered."""
    if (not sample.answered or sample.clock_offset is None
            or sample.transit is None):
        return None
    return Offset(sample.clock_offset, sample.transit / 2.0)


def lowest_bound(offsets):
    """The offset of ``offsets`` with the lowest bound (None ignored); None
    when there is none."""
    return min((o for o in offsets if o is not None),
               key=lambda o: o.bound_ms, default=None)


class Window:
    """Each key's offsets of the last ``seconds`` (on a monotonic clock);
    a key's estimate is the one with the lowest bound.

    Only offsets that may still become the estimate are kept: one whose
    bound is no lower than a newer one's never will, since the newer one
    stays in the window longer.  So each key's queue holds bounds rising
    from the oldest to the newest, and the estimate is its oldest.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self._kept = {}

    def add(self, key, offset, now):
        kept = self._kept.setdefault(key, collections.deque())
        while kept and kept[-1][1].bound_ms >= offset.bound_ms:
            kept.pop()
        kept.append((now, offset))

    def estimate(self, key, now):
        """``key``'s lowest-bound offset in the window, or None."""
        self._expire(key, now)
        kept = self._kept.get(key)
        return kept[0][1] if kept else None

    def keys(self, now):
        """The keys with an offset in the window."""
        for key in list(self._kept):
            self._expire(key, now)
        return list(self._kept)

    def _expire(self, key, now):
        kept = self._kept.get(key)
        if kept is None:
            return
        while kept and kept[0][0] < now - self.seconds:
            kept.popleft()
        if not kept:
            del self._kept[key]


class ClockBook:
    """What one inflight daemon on ``host`` knows of clocks: its own offset
    to the reference, and each probed host's offset to its own clock, each
    the lowest-bound one over the last ``seconds``."""

    def __init__(self, host, seconds):
        self.host = host
        self._reference = Window(seconds)
        self._hosts = Window(seconds)

    def add_reference(self, offset, now=None):
        """This host's clock minus the reference, measured now."""
        self._reference.add(None, offset, _now(now))

    def reference(self, now=None):
        """This host's clock minus the reference (an Offset), or None while
        it was never measured in the window."""
        return self._reference.estimate(None, _now(now))

    def add_samples(self, samples, now=None):
        now = _now(now)
        for sample in samples:
            offset = from_sample(sample)
            if offset is not None and sample.host:
                self._hosts.add(sample.host, offset, now)

    def against_reference(self, sample, now=None):
        """``sample``'s service clock minus the reference (an Offset), or
        None when the probe was not answered or this host's own offset is
        unknown."""
        offset = from_sample(sample)
        reference = self.reference(now)
        if offset is None or reference is None:
            return None
        return offset + reference

    def host_clocks(self, now=None):
        """One ``host_clocks`` row per host with an estimate in the window,
        this host's own included; none while the reference is unknown."""
        now = _now(now)
        reference = self.reference(now)
        if reference is None:
            return []
        estimates = {host: self._hosts.estimate(host, now) + reference
                     for host in self._hosts.keys(now)}
        # Services on this host read this very clock: its own offset is
        # the measured one, not a probe's.
        estimates[self.host] = reference
        return [{'host': host, 'offset_ms': offset.offset_ms,
                 'bound_ms': offset.bound_ms, 'measured_by': self.host}
                for host, offset in sorted(estimates.items())]


def _now(now):
    return time.monotonic() if now is None else now
