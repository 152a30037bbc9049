"""Inflight: phase arithmetic, stats, the endpoint, the round, the sinks."""

import socket
import uuid

import pytest

from nova_lite import baserpc
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import context
from nova_lite import exception
from nova_lite.inflight import manager as inflight_manager
from nova_lite.inflight import probe
from nova_lite.inflight import sinks
from nova_lite.inflight import stats
from nova_lite import concurrency
from nova_lite.testing import managers
from nova_lite.testing import waiters


def _reply(received_at, replied_at, requested=0.5, actual=0.502):
    return {'received_at': received_at, 'replied_at': replied_at,
            'sleep_requested': requested, 'sleep_actual': actual,
            'host': 'h1', 'binary': 'nova-lite-compute', 'version': '1.0',
            'greenthreads': 4}


def test_phases_split_a_round_trip():
    result = probe.phases(sent_at=100.000, sent_mono=5.0,
                          returned_at=100.515, returned_mono=5.515,
                          reply=_reply(100.010, 100.510))
    assert result['to_service'] == pytest.approx(10.0)
    assert result['in_service'] == pytest.approx(500.0)
    assert result['greenthread_overhead'] == pytest.approx(2.0)
    assert result['from_service'] == pytest.approx(5.0)
    assert result['total'] == pytest.approx(515.0)
    assert result['transit'] == pytest.approx(15.0)
    assert result['clock_offset'] == pytest.approx(2.5)
    assert result['skew'] is False


def test_negative_leg_is_skew_not_latency():
    # The service's clock is 50 ms behind: to_service would be -40 ms.
    result = probe.phases(sent_at=100.000, sent_mono=5.0,
                          returned_at=100.515, returned_mono=5.515,
                          reply=_reply(99.960, 100.460))
    assert result['skew'] is True
    assert result['to_service'] is None and result['from_service'] is None
    # What does not depend on the clocks is still reported.
    assert result['transit'] == pytest.approx(15.0)
    assert result['clock_offset'] == pytest.approx(-47.5)


def test_percentiles_and_summary():
    values = list(range(1, 101))
    assert stats.percentile(values, 50) == 50
    assert stats.percentile(values, 99) == 99
    assert stats.percentile(values, 100) == 100
    assert stats.percentile([], 50) is None
    summary = stats.summarize([3.0, None, 1.0, 2.0])
    assert summary['count'] == 3
    assert (summary['min'], summary['avg'], summary['max']) == (1.0, 2.0, 3.0)
    assert stats.summarize([None]) is None


def test_round_robin_rotates_every_round():
    assert inflight_manager.round_robin([1, 2, 3], 1) == [2, 3, 1]
    assert inflight_manager.round_robin([1, 2, 3], 3) == [1, 2, 3]
    assert inflight_manager.round_robin([], 5) == []


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def test_inflight_endpoint_reports_stamps(factory, db, conf, ctxt):
    # Long enough for all of them to be seen in flight at once.
    conf.set_override('operation_seconds', 4, group='fake_driver')
    factory.start_service('compute', host='h1')
    client = baserpc.BaseRPCAPI(conf, 'compute')

    def sample():
        return probe.probe(client, ctxt, 'compute', host='h1', sleep=0.05,
                           timeout=5)

    idle = min((sample() for _ in range(2)), key=lambda s: s.greenthreads)
    assert idle.answered, idle
    assert idle.host == 'h1' and idle.binary == 'nova-lite-compute'
    # The service's time includes the sleep and how late it woke up.
    assert idle.in_service >= 50.0 + idle.greenthread_overhead - 1.0
    assert idle.total >= idle.in_service
    # N operations in flight: each holds a greenthread (or a thread) and an
    # executor worker while it waits on its driver task.
    in_flight = 8
    for _ in range(in_flight):
        compute_rpcapi.ComputeRPCAPI(conf).spawn(ctxt, 'h1',
                                                 str(uuid.uuid4()))
    waiters.wait_for(lambda: [i['task_state'] for i in db.instance_get_all()]
                     == ['spawning'] * in_flight, timeout=10,
                     what='%d spawns in flight' % in_flight)
    loaded = sample()
    assert loaded.greenthreads >= idle.greenthreads + in_flight, (idle,
                                                                   loaded)
    assert loaded.workers >= in_flight + 1, loaded
    waiters.wait_for(lambda: [i['vm_state'] for i in db.instance_get_all()]
                     == ['active'] * in_flight, timeout=15,
                     what='the spawns to finish')


def test_greenthread_overhead_is_how_long_the_sleeper_was_held_up(
        factory, conf, ctxt, monkeypatch):
    """A known block (300 ms of CPU that never yields: it blocks the hub
    under eventlet and holds the GIL under threading, see
    ``managers.spin``) starts just after the probe's 100 ms sleep does, so
    the sleeper wakes about 200 ms late."""
    factory.start_service('compute', host='h1')
    sleeping = concurrency.Event()
    real_sleep = baserpc._timed_sleep

    def signalling_sleep(seconds):
        sleeping.set()
        return real_sleep(seconds)

    def block():
        sleeping.wait(10)
        managers.spin(300)

    monkeypatch.setattr(baserpc, '_timed_sleep', signalling_sleep)
    blocker = concurrency.spawn(block)
    sample = probe.probe(baserpc.BaseRPCAPI(conf, 'compute'), ctxt,
                         'compute', host='h1', sleep=0.1, timeout=5)
    blocker.wait()

    assert sample.answered, sample
    assert 195.0 <= sample.greenthread_overhead < 500.0, sample
    assert sample.in_service >= 100.0 + sample.greenthread_overhead - 1.0


@pytest.mark.parametrize('kwargs,message', [
    ({'sent_at': 1.0, 'sleep': -1}, 'sleep must be >= 0.0'),
    ({'sent_at': 1.0, 'sleep': 3600}, 'sleep must be <= 60.0'),
    ({'sent_at': 'yesterday', 'sleep': 0}, 'sent_at must be a number'),
    ({'sent_at': 1.0, 'sleep': True}, 'sleep must be a number'),
    ({'sleep': 0}, 'sent_at must be a number'),
    ({}, 'sent_at must be a number'),
])
def test_bad_inflight_arguments_are_named_remote_errors(factory, conf, ctxt,
                                                        kwargs, message):
    factory.start_service('compute', host='h1')
    client = baserpc.BaseRPCAPI(conf, 'compute').client.prepare(
        server='h1', version='1.1', timeout=5)
    with pytest.raises(exception.InvalidInput) as err:
        client.call(ctxt, 'inflight', **kwargs)
    assert message in str(err.value)
    # ... and the service keeps serving.
    assert baserpc.BaseRPCAPI(conf, 'compute').ping(
        ctxt, 'ok', host='h1')['arg'] == 'ok'


def test_round_probes_all_within_the_concurrency_bound(db, conf, ctxt,
                                                       monkeypatch):
    conf.set_override('max_concurrent_pings', 3, group='inflight')
    for n in range(10):
        db.service_register('h%02d' % n, 'nova-lite-compute', 'compute',
                            '1.0')
    db.service_register('i1', 'nova-lite-inflight', 'inflight', '1.0')
    # The manager alone, without a service's periodic loop racing the test.
    mgr = inflight_manager.InflightManager(conf=conf, host='i1', db=db,
                                           binary='nova-lite-inflight')
    mgr.init_host()
    running = []
    peak = []

    def fake_probe(context, service):
        running.append(service['host'])
        peak.append(len(running))
        concurrency.sleep(0.02)
        running.remove(service['host'])
        if service['host'] == 'h03':
            return probe.Sample(topic=service['topic'], host='h03',
                                timed_out=True)
        return probe.Sample(topic=service['topic'], host=service['host'],
                            total=20.0, in_service=19.0)

    monkeypatch.setattr(mgr, '_probe_service', fake_probe)
    monkeypatch.setattr(mgr._queues, 'depths', lambda topics: {})
    first = mgr.probe_now(ctxt)
    second = mgr.probe_now(ctxt)
    assert max(peak) == 3
    # Every registered service (10 computes + the inflight service itself),
    # a timeout counted and not fatal, and the start rotated by one.
    assert first['services'] == second['services'] == 11
    assert first['timeouts'] == 1 and first['answered'] == 10
    assert sorted(first['order']) == sorted(second['order'])
    assert second['order'] == first['order'][1:] + first['order'][:1]
    # The database sink kept both rounds.
    stored = db.inflight_samples_since(60)
    assert len(stored) == 22
    assert sum(1 for s in stored if s['timed_out']) == 2


def test_inflight_refuses_timeout_not_above_sleep(factory, conf):
    conf.set_override('sleep_seconds', 2.0, group='inflight')
    conf.set_override('ping_timeout', 2.0, group='inflight')
    with pytest.raises(exception.ConfigError) as err:
        factory.start_service('inflight', host='i1')
    assert 'ping_timeout' in str(err.value)


def _udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(5)
    return sock


def _read_lines(sock, want):
    lines = []
    while len(lines) < want:
        data, _ = sock.recvfrom(65535)
        lines.extend(data.decode().splitlines())
    return lines


def test_statsd_sink_line_protocol_and_names(conf):
    sock = _udp_listener()
    conf.set_override('port', sock.getsockname()[1], group='statsd')
    conf.set_override('prefix', 'pfx', group='statsd')
    answered = probe.Sample(topic='compute', host='node1.example.org',
                            to_service=1.5, in_service=1000.25,
                            greenthread_overhead=0.75, from_service=2.0,
                            total=1004.5, greenthreads=7)
    lost = probe.Sample(topic='compute', host='node2', timed_out=True)
    sinks.StatsdSink(conf).emit(
        [answered, lost], {'compute': {'messages': 3, 'consumers': 2},
                           'gone': None})
    lines = set(_read_lines(sock, 9))
    base = 'pfx.inflight.compute.node1_example_org'
    assert lines == {
        base + '.to_service:1.500000|ms',
        base + '.in_service:1000.250000|ms',
        base + '.greenthread_overhead:0.750000|ms',
        base + '.from_service:2.000000|ms',
        base + '.total:1004.500000|ms',
        base + '.greenthreads:7|g',
        'pfx.inflight.compute.node2.timeout:1|c',
        'pfx.queue.compute.depth:3|g',
        'pfx.queue.compute.consumers:2|g',
    }


def test_statsd_sink_sweep_names(conf):
    """A pinged Nova service: its total only, its heartbeat, its flags,
    and its topic.host queue (host dots become _), unacked when known."""
    sock = _udp_listener()
    conf.set_override('port', sock.getsockname()[1], group='statsd')
    conf.set_override('prefix', 'pfx', group='statsd')
    stuck = probe.Sample(topic='conductor', host='ctl.example', timed_out=True,
                         method=probe.PING, up=True, heartbeat_age=4.5,
                         flags=['unreachable'])
    pinged = probe.Sample(topic='compute', host='c1', total=2.5,
                          method=probe.PING, up=True, heartbeat_age=1.0)
    sinks.StatsdSink(conf).emit(
        [stuck, pinged], {'conductor.ctl.example': {
            'messages': 0, 'unacked': 3, 'consumers': 1},
            'compute.c1': {'messages': 0, 'unacked': None, 'consumers': 1}})
    lines = set(_read_lines(sock, 12))
    stuck_base = 'pfx.inflight.conductor.ctl_example'
    assert lines == {
        stuck_base + '.up:1|g', stuck_base + '.heartbeat_age:4.5|g',
        stuck_base + '.unreachable:1|c', stuck_base + '.timeout:1|c',
        'pfx.inflight.compute.c1.up:1|g',
        'pfx.inflight.compute.c1.heartbeat_age:1.0|g',
        'pfx.inflight.compute.c1.total:2.500000|ms',
        'pfx.queue.conductor.ctl_example.depth:0|g',
        'pfx.queue.conductor.ctl_example.consumers:1|g',
        'pfx.queue.conductor.ctl_example.unacked:3|g',
        'pfx.queue.compute.c1.depth:0|g',
        'pfx.queue.compute.c1.consumers:1|g',
    }


def test_rounds_never_overlap(db, conf, ctxt, monkeypatch):
    """A probe_now during the periodic round waits for it (they share the
    broker connection that reads queue depths)."""
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    mgr = inflight_manager.InflightManager(conf=conf, host='i1', db=db,
                                           binary='nova-lite-inflight')
    mgr.init_host()
    inside, peak = [], []

    def slow_depths(topics):
        inside.append(1)
        peak.append(len(inside))
        concurrency.sleep(0.05)
        inside.pop()
        return {}

    monkeypatch.setattr(mgr, '_probe_service', lambda c, s: probe.Sample(
        topic=s['topic'], host=s['host'], total=1.0, in_service=0.5))
    monkeypatch.setattr(mgr._queues, 'depths', slow_depths)
    rounds = [concurrency.spawn(mgr.probe_now, ctxt) for _ in range(3)]
    numbers = sorted(r.wait()['round'] for r in rounds)
    assert numbers == [1, 2, 3]
    assert max(peak) == 1
