"""The flags of a sweep round: unreachable, no_consumers, slow."""

import pytest

from nova_lite.inflight import probe
from nova_lite.inflight import verdicts


def _ping(host, total, **kw):
    return probe.Sample(topic='compute', host=host, total=total,
                        method=probe.PING, up=True, **kw)


def _flags(samples, factor=5.0, floor=50.0):
    verdicts.flag_round(samples, factor, floor)
    return {s.host: s.flags for s in samples}


def test_up_by_heartbeat_but_timed_out_is_unreachable():
    samples = [_ping('a', 3.0),
               probe.Sample(topic='compute', host='stuck', timed_out=True,
                            up=True),
               # Down by heartbeat too: nothing contradicts.
               probe.Sample(topic='compute', host='dead', timed_out=True,
                            up=False),
               # An error is an answer of sorts, not a timeout.
               probe.Sample(topic='compute', host='err', error='boom',
                            up=True),
               # Heartbeat not known: no verdict.
               probe.Sample(topic='compute', host='unknown', timed_out=True)]
    assert _flags(samples) == {'a': [], 'stuck': ['unreachable'],
                               'dead': [], 'err': [], 'unknown': []}


def test_messages_without_consumers():
    samples = [_ping('a', 3.0, queue_messages=2, queue_consumers=0),
               _ping('b', 3.0, queue_messages=2, queue_consumers=1),
               _ping('c', 3.0, queue_messages=0, queue_consumers=0),
               _ping('d', 3.0)]
    assert _flags(samples) == {'a': ['no_consumers'], 'b': [], 'c': [],
                               'd': []}


def test_slow_is_far_above_the_median_and_above_the_floor():
    samples = [_ping('a', 3.0), _ping('b', 4.0), _ping('c', 5.0),
               _ping('slow', 60.0),
               probe.Sample(topic='compute', host='lost', timed_out=True)]
    assert verdicts.median_round_trip(samples) == pytest.approx(4.5)
    assert _flags(samples) == {'a': [], 'b': [], 'c': [], 'slow': ['slow'],
                               'lost': []}
    # 60 ms is not above a 100 ms floor, however far above the median.
    assert _flags(samples, floor=100.0)['slow'] == []
    # Nor 10x the median under a factor of 20.
    assert _flags(samples, factor=20.0)['slow'] == []


def test_an_inflight_probes_sleep_is_not_its_round_trip():
    """A nova_lite service sleeps 1 s in an inflight probe; a Nova
    service answers a ping at once: both compare without the sleep."""
    inflight = probe.Sample(topic='conductor', host='lite', total=1004.0,
                            in_service=1001.0, greenthread_overhead=0.5,
                            method=probe.INFLIGHT, up=True)
    assert verdicts.round_trip(inflight) == pytest.approx(3.5)
    samples = [inflight, _ping('n1', 3.0), _ping('n2', 2.5)]
    assert _flags(samples) == {'lite': [], 'n1': [], 'n2': []}
    # A hub blocked for 300 ms is slow, though.
    inflight.greenthread_overhead = 300.5
    inflight.total = 1304.0
    inflight.in_service = 1301.0
    assert _flags(samples)['lite'] == ['slow']


def test_flags_are_the_rounds_only():
    sample = _ping('a', 3.0, queue_messages=1, queue_consumers=0)
    verdicts.flag_round([sample], 5.0, 50.0)
    assert sample.flags == ['no_consumers']
    sample.queue_messages = 0
    verdicts.flag_round([sample], 5.0, 50.0)
    assert sample.flags == []
    assert verdicts.flag_round([], 5.0, 50.0) is None
