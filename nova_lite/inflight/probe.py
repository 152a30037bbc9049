"""One inflight probe: the four phases of a round trip, from four stamps.

    caller                       service
    sent_at (wall) ──to_service──▶ received_at (wall)
                                   │ in_service (includes the sleep)
    returned_at ◀──from_service── replied_at (wall)

``total`` comes from the caller's monotonic clock and ``in_service`` from the
service's own stamps, so ``total - in_service`` (the transit, both ways) is
true whatever the clocks say.  ``to_service`` and ``from_service`` compare
two hosts' wall clocks: when either comes out negative the clocks are
skewed, and the split is reported as skew, never as latency.  The clock
offset is estimated the NTP way: ((t1 - t0) + (t2 - t3)) / 2.
"""

import dataclasses
import time

PHASES = ('to_service', 'in_service', 'greenthread_overhead', 'from_service',
          'total')


@dataclasses.dataclass
class Sample:
    """One probe's outcome; phases are in ms, None when not measured."""

    topic: str
    host: str
    binary: str | None = None
    version: str | None = None
    to_service: float | None = None
    in_service: float | None = None
    greenthread_overhead: float | None = None
    from_service: float | None = None
    total: float | None = None
    transit: float | None = None
    clock_offset: float | None = None
    skew: bool = False
    greenthreads: int | None = None
    workers: int | None = None
    backend: str | None = None
    timed_out: bool = False
    error: str | None = None
    sent_at: float = dataclasses.field(default_factory=time.time)
    # Set by the inflight daemon: its member id in the probing group
    # (``host-pid``) and the wall-clock round (None outside the ring).
    prober: str | None = None
    round_no: int | None = None

    @property
    def answered(self):
        return not self.timed_out and self.error is None

    def as_dict(self):
        return dataclasses.asdict(self)


def phases(sent_at, sent_mono, returned_at, returned_mono, reply):
    """The phases in ms from the caller's stamps and the service's reply."""
    received_at = reply['received_at']
    replied_at = reply['replied_at']
    total = (returned_mono - sent_mono) * 1000.0
    in_service = max(0.0, (replied_at - received_at) * 1000.0)
    to_service = (received_at - sent_at) * 1000.0
    from_service = (returned_at - replied_at) * 1000.0
    skew = to_service < 0 or from_service < 0
    result = {
        'total': total,
        'in_service': in_service,
        'transit': max(0.0, total - in_service),
        'greenthread_overhead': max(
            0.0, (reply['sleep_actual'] - reply['sleep_requested']) * 1000.0),
        'clock_offset': ((received_at - sent_at) +
                         (replied_at - returned_at)) / 2 * 1000.0,
        'skew': skew,
        'to_service': None if skew else to_service,
        'from_service': None if skew else from_service,
    }
    return result


def sample_from_reply(topic, sent_at, sent_mono, returned_at, returned_mono,
                      reply):
    """A Sample for an answered probe."""
    return Sample(topic=topic, host=reply['host'], binary=reply['binary'],
                  version=reply['version'],
                  greenthreads=reply['greenthreads'],
                  # Not in a baseapi 1.1 service's reply.
                  workers=reply.get('workers'), backend=reply.get('backend'),
                  sent_at=sent_at,
                  **phases(sent_at, sent_mono, returned_at, returned_mono,
                           reply))


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return '%s: %s' % (type(exc).__name__, text[0] if text else '')


def probe(client, ctxt, topic, host=None, sleep=1.0, timeout=None):
    """Send one inflight probe with ``client`` (a BaseRPCAPI); a Sample.

    Never raises for what the target does: a timeout or an error becomes
    part of the Sample.
    """
    # Imported here: oslo.messaging is not needed for the arithmetic above.
    import oslo_messaging as messaging

    sent_at = time.time()
    sent_mono = time.monotonic()
    try:
        reply = client.inflight(ctxt, sent_at, sleep, host=host,
                                timeout=timeout)
    except messaging.MessagingTimeout:
        return Sample(topic=topic, host=host, timed_out=True, sent_at=sent_at)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        return Sample(topic=topic, host=host, error=_one_line(exc),
                      sent_at=sent_at)
    returned_mono = time.monotonic()
    returned_at = time.time()
    return sample_from_reply(topic, sent_at, sent_mono, returned_at,
                             returned_mono, reply)
