"""One inflight probe: the four phases of a round trip, from four stamps.

(A service without ``inflight``, such as a real Nova's, is pinged instead:
``nova_lite.inflight.methods``; its Sample has ``total`` only.)

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

INFLIGHT = 'inflight'
PING = 'ping'

PHASES = ('to_service', 'in_service', 'greenthread_overhead', 'from_service',
          'total')


@dataclasses.dataclass
class Sample:
    """One probe's outcome; phases are in ms, None when not measured.

    ``method`` is how it was probed: ``inflight`` (the four-way split) or
    ``ping`` (a round trip, ``total``, only).  The inflight daemon adds
    what it knows of the service besides: its heartbeat's verdict (``up``)
    and age in s, the ready and unacknowledged (None: not known) messages
    and the consumers of its ``topic.host`` queue, and the round's
    ``flags`` (``nova_lite.inflight.verdicts``).
    """

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
    method: str | None = None
    up: bool | None = None
    heartbeat_age: float | None = None
    queue_messages: int | None = None
    queue_unacked: int | None = None
    queue_consumers: int | None = None
    flags: list = dataclasses.field(default_factory=list)

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
    return Sample(topic=topic, method=INFLIGHT, host=reply['host'],
                  binary=reply['binary'],
                  version=reply['version'],
                  greenthreads=reply['greenthreads'],
                  # Not in a baseapi 1.1 service's reply.
                  workers=reply.get('workers'), backend=reply.get('backend'),
                  sent_at=sent_at,
                  **phases(sent_at, sent_mono, returned_at, returned_mono,
                           reply))


# What oslo.messaging's dispatcher raises for a method, or a namespace
# version, that the service does not serve.  Over a real broker it comes
# back as a RemoteError naming it (oslo_messaging is not among the
# allowed exception modules); the fake driver re-raises it as itself.
_UNSUPPORTED = ('NoSuchMethod', 'UnsupportedVersion')


def unsupported(exc):
    """True when ``exc`` says the service does not serve the method."""
    import oslo_messaging as messaging

    if isinstance(exc, (messaging.NoSuchMethod, messaging.UnsupportedVersion)):
        return True
    return (isinstance(exc, messaging.RemoteError) and
            exc.exc_type in _UNSUPPORTED)


def one_line(exc):
    text = str(exc).strip().splitlines()
    return '%s: %s' % (type(exc).__name__, text[0] if text else '')


def probe(client, ctxt, topic, host=None, sleep=1.0, timeout=None):
    """Send one inflight probe with ``client`` (a BaseRPCAPI); a Sample.

    Never raises for what the target does: a timeout or an error becomes
    part of the Sample, except that the service does not serve
    ``inflight`` (``unsupported(exc)``): that is raised, for the caller to
    ping it instead (``nova_lite.inflight.methods``).
    """
    # Imported here: oslo.messaging is not needed for the arithmetic above.
    import oslo_messaging as messaging

    sent_at = time.time()
    sent_mono = time.monotonic()
    try:
        reply = client.inflight(ctxt, sent_at, sleep, host=host,
                                timeout=timeout)
    except messaging.MessagingTimeout:
        return Sample(topic=topic, host=host, timed_out=True, sent_at=sent_at,
                      method=INFLIGHT)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        if unsupported(exc):
            raise
        return Sample(topic=topic, host=host, error=one_line(exc),
                      sent_at=sent_at, method=INFLIGHT)
    returned_mono = time.monotonic()
    returned_at = time.time()
    return sample_from_reply(topic, sent_at, sent_mono, returned_at,
                             returned_mono, reply)
