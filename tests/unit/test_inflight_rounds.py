"""Inflight rounds on the wall clock: round numbers, overruns, the shared
probing of two daemons, probe_now, and the ring's metric names."""

import logging
import math
import os
import re
import socket
import time

import prometheus_client
import pytest

from nova_lite import context
from nova_lite.inflight import manager as inflight_manager
from nova_lite.inflight import probe
from nova_lite.inflight import ring
from nova_lite.inflight import sinks
from nova_lite.metrics import registry
from nova_lite import concurrency
from nova_lite.testing import waiters

HOSTS = ['h%02d' % n for n in range(12)]


class OneMemberRing:
    """A ProbeRing stand-in: one member, wall-clock rounds of ``interval``,
    a share chosen by the test (every service by default)."""

    def __init__(self, interval, share=None):
        self.interval = interval
        self._share = share
        self.fallback = False
        self.rebalances = 0
        self.stopped = False

    def round_of(self, when):
        return int(when // self.interval)

    def start(self):
        pass

    def stop(self):
        self.stopped = True

    def members(self):
        return 1

    def share(self, services, round_no):
        return services if self._share is None else self._share(services)


def _manager(conf, db, host='i1'):
    mgr = inflight_manager.InflightManager(conf=conf, host=host, db=db,
                                           binary='nova-lite-inflight')
    mgr.init_host()
    return mgr


def _register(db, hosts=HOSTS):
    for host in hosts:
        db.service_register(host, 'nova-lite-compute', 'compute', '1.0')


def _stored_rounds(db):
    """{round_no: [(prober, host), ...]} of the ring rounds stored."""
    rounds = {}
    for sample in db.inflight_samples_since(600):
        if sample['round_no'] is not None:
            rounds.setdefault(sample['round_no'], []).append(
                (sample['prober'], sample['host']))
    return rounds


def _metric(name):
    return prometheus_client.REGISTRY.get_sample_value(name) or 0.0


@pytest.fixture
def stoppers():
    managers = []
    yield managers
    for stopping in [concurrency.spawn(m.stop_probing) for m in managers]:
        stopping.wait()


def test_rounds_follow_the_wall_clock(db, conf, monkeypatch, stoppers):
    interval = 1.0
    _register(db, HOSTS[:2])
    mgr = _manager(conf, db)
    starts = {}         # round_no -> when the round started
    real_run = mgr._run_round

    def tracked_run(ctxt, round_no=None):
        starts[round_no] = time.time()
        return real_run(ctxt, round_no)

    monkeypatch.setattr(mgr, '_run_round', tracked_run)
    monkeypatch.setattr(mgr, '_probe_service', lambda c, s: probe.Sample(
        topic=s['topic'], host=s['host'], total=1.0, in_service=0.5))
    monkeypatch.setattr(mgr._queues, 'depths', lambda topics: {})
    before = time.time()
    stoppers.append(mgr)
    mgr.start_probing(OneMemberRing(interval))
    rounds = waiters.wait_for(
        lambda: len(_stored_rounds(db)) >= 3 and _stored_rounds(db),
        timeout=30, what='three ring rounds')
    numbers = sorted(rounds)
    # The first round is the one running when the loop started, at once.
    assert (math.floor(before / interval) <= numbers[0] <=
            math.floor(starts[numbers[0]] / interval))
    # The others start at their boundary, never before.
    for number in numbers[1:]:
        assert 0 <= starts[number] - number * interval < interval, (
            number, starts[number])
    for number in numbers:
        assert sorted(host for _, host in rounds[number]) == HOSTS[:2]
        assert {prober for prober, _ in rounds[number]} == {mgr.prober}
    assert mgr.prober == ring.prober_name('i1', os.getpid())


def test_an_overrun_is_counted_logged_and_never_overlaps(
        db, conf, monkeypatch, stoppers, caplog):
    interval = 0.5
    _register(db, HOSTS[:3])
    conf.set_override('max_concurrent_pings', 3, group='inflight')
    mgr = _manager(conf, db)
    rounds = []         # (round_no, start, end) of each ring round
    inside = []
    peak = []
    slow = {}

    real_run = mgr._run_round

    def tracked_run(ctxt, round_no=None):
        inside.append(round_no)
        peak.append(len(inside))
        start = time.time()
        if not slow:
            # The first round runs until the wall clock is well into the
            # next one: an overrun.
            slow['round'] = round_no
            until = (round_no + 1) * interval + interval / 2
            while time.time() < until:
                concurrency.Event().wait(until - time.time())
        try:
            return real_run(ctxt, round_no)
        finally:
            inside.remove(round_no)
            rounds.append((round_no, start, time.time()))

    monkeypatch.setattr(mgr, '_run_round', tracked_run)
    monkeypatch.setattr(mgr, '_probe_service', lambda c, s: probe.Sample(
        topic=s['topic'], host=s['host'], total=1.0, in_service=0.5))
    monkeypatch.setattr(mgr._queues, 'depths', lambda topics: {})
    overruns = _metric('nova_lite_inflight_round_overruns_total')
    observed = _metric('nova_lite_inflight_round_seconds_count')
    stoppers.append(mgr)
    with caplog.at_level(logging.WARNING,
                         logger='nova_lite.inflight.manager'):
        mgr.start_probing(OneMemberRing(interval))
        waiters.wait_for(lambda: len(rounds) >= 3, timeout=30,
                         what='three rounds')
    first, second = rounds[0], rounds[1]
    assert first[0] == slow['round']
    assert _metric('nova_lite_inflight_round_overruns_total') >= overruns + 1
    assert _metric('nova_lite_inflight_round_seconds_count') >= observed + 3
    assert any('Inflight round %d took' % first[0] in r.getMessage()
               for r in caplog.records)
    # The round whose boundary passed meanwhile is skipped; the next one
    # starts at its own boundary, after the slow one ended.
    assert second[0] >= first[0] + 2
    assert second[1] >= second[0] * interval and second[1] >= first[2]
    assert max(peak) == 1


def test_probe_now_probes_everything_outside_the_ring(db, conf, monkeypatch,
                                                      stoppers):
    _register(db, HOSTS[:4])
    mgr = _manager(conf, db)
    probed = []

    def fake_probe(ctxt, service):
        probed.append(service['host'])
        return probe.Sample(topic=service['topic'], host=service['host'],
                            total=1.0, in_service=0.5)

    monkeypatch.setattr(mgr, '_probe_service', fake_probe)
    monkeypatch.setattr(mgr._queues, 'depths', lambda topics: {})
    # A ring that gives this daemon one service, in rounds far apart.
    stoppers.append(mgr)
    mgr.start_probing(OneMemberRing(3600.0, share=lambda s: s[:1]))
    waiters.wait_for(lambda: _stored_rounds(db), timeout=15,
                     what='the first ring round')
    assert [len(hosts) for hosts in _stored_rounds(db).values()] == [1]
    summary = mgr.probe_now(context.get_admin_context())
    assert summary['services'] == 4 and summary['round_no'] is None
    assert summary['prober'] == mgr.prober
    outside = [s for s in db.inflight_samples_since(60)
               if s['round_no'] is None]
    assert sorted(s['host'] for s in outside) == HOSTS[:4]
    assert {s['prober'] for s in outside} == {mgr.prober}


def test_two_daemons_probe_each_service_once_per_round(db, conf,
                                                       monkeypatch,
                                                       stoppers):
    """Two inflight managers, each with a real ProbeRing on the file://
    backend: once both count, every service is probed exactly once per
    round by the two together, and both take a share."""
    interval = 2.0
    conf.set_override('probe_interval', interval, group='inflight')
    conf.set_override('watch_interval', 0.25, group='inflight')
    conf.set_override('membership_timeout', 5, group='inflight')
    _register(db)
    managers = [_manager(conf, db, host) for host in ('i1', 'i2')]
    for mgr in managers:
        monkeypatch.setattr(mgr, '_probe_service', lambda c, s: probe.Sample(
            topic=s['topic'], host=s['host'], total=1.0, in_service=0.5))
        monkeypatch.setattr(mgr._queues, 'depths', lambda topics: {})
        # Two daemons of one process: tell them apart.
        mgr.prober = '%s-%d' % (mgr.host, id(mgr) % 100000)
        stoppers.append(mgr)
        mgr.start_probing()
    waiters.wait_for(lambda: all(m._ring.members() == 2 for m in managers),
                     timeout=30, what='each daemon to see the other')
    # Both joined before now, each for round now + 2 at the latest, and
    # each knows the other: from that round on, the ring is stable.
    first_shared = managers[0]._ring.round_of(time.time()) + 2
    probers = {m.prober for m in managers}

    def shared_rounds():
        rounds = _stored_rounds(db)
        # A round is complete once both daemons started the next one.
        done = [n for n in rounds if n >= first_shared and
                {p for p, _ in rounds.get(n + 1, ())} == probers]
        return len(done) >= 2 and {n: rounds[n] for n in done}

    # The services: the 12 computes (the managers are not registered).
    rounds = waiters.wait_for(shared_rounds, timeout=60,
                              what='two rounds probed by both daemons')
    for number, taken in rounds.items():
        assert sorted(host for _, host in taken) == HOSTS, (number, taken)
        assert {prober for prober, _ in taken} == probers, (number, taken)


def test_statsd_gets_the_ring_of_each_daemon(conf):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(5)
    conf.set_override('port', sock.getsockname()[1], group='statsd')
    conf.set_override('prefix', 'pfx', group='statsd')
    sinks.StatsdSink(conf).emit_ring('i1.example.org', members=3, owned=7,
                                     fallback=True, rebalances=2,
                                     overrun=True, seconds=0.25)
    lines = set()
    while len(lines) < 6:
        lines.update(sock.recvfrom(65535)[0].decode().splitlines())
    base = 'pfx.inflight_prober.i1_example_org.'
    assert lines == {base + 'members:3|g', base + 'owned_services:7|g',
                     base + 'coordination_fallback:1|g',
                     base + 'rebalances:2|c', base + 'round_overruns:1|c',
                     base + 'round:250.000000|ms'}


RING_METRICS = ('nova_lite_inflight_members',
                'nova_lite_inflight_owned_services',
                'nova_lite_inflight_coordination_fallback',
                'nova_lite_inflight_rebalances_total',
                'nova_lite_inflight_round_overruns_total',
                'nova_lite_inflight_round_seconds')


def test_ring_metric_names_are_exported_and_documented():
    exported = prometheus_client.generate_latest().decode()
    readme = open(__file__.rsplit('/tests/', 1)[0] + '/README.md').read()
    for name in RING_METRICS:
        assert re.search(r'^%s(_count)? ' % name, exported, re.M), name
        assert '`%s`' % name in readme, name
    assert registry.INFLIGHT_ROUND_SECONDS._upper_bounds[:-1] == list(
        registry.BUCKETS)


def test_the_inflight_service_probes_as_one_member_and_leaves(factory, db,
                                                              conf):
    """The service's hooks: once it consumes, the manager joins the group
    and runs ring rounds (alone: everything); its stop leaves the group."""
    conf.set_override('sleep_seconds', 0.0, group='inflight')
    factory.start_service('compute', host='h1')
    svc = factory.start_service('inflight', host='i1')
    mgr = svc.manager
    rounds = waiters.wait_for(
        lambda: _stored_rounds(db), timeout=30, what='a ring round')
    taken = rounds[min(rounds)]
    assert sorted(taken) == [(mgr.prober, 'h1'), (mgr.prober, 'i1')]
    assert mgr._ring.members() == 1 and not mgr._ring.fallback
    other = ring.ProbeRing(conf, 'i2-2')
    try:
        other.watch_once()
        waiters.wait_for(lambda: other.watch_once() or other.members() == 2,
                         timeout=15, what='the service in the group')
        svc.stop(graceful_timeout=10)
        factory.services.remove(svc)
        # Left at once: seen at the next watch, long before its lease.
        other.watch_once()
        assert other.members() == 1
    finally:
        other.stop()
