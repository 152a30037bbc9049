"""Clock offsets: the NTP-style estimator, composition against the
database server's clock, host_clocks, and what services learn from it."""

import random

import pytest

from nova_lite import context
from nova_lite.db import clocks as db_clocks
from nova_lite.inflight import clocks
from nova_lite.inflight import manager as inflight_manager
from nova_lite.inflight import probe
from nova_lite.metrics import stamps
from nova_lite.testing import waiters


def _sample(offset_ms, there_ms, back_ms, host='h1', in_service_ms=1.0,
            sent_at=1000.0):
    """A probe of a service whose clock is ``offset_ms`` ahead of the
    prober's, ``there_ms`` to it and ``back_ms`` back (true transit)."""
    received_at = sent_at + (there_ms + offset_ms) / 1000.0
    replied_at = received_at + in_service_ms / 1000.0
    total_ms = there_ms + in_service_ms + back_ms
    reply = {'received_at': received_at, 'replied_at': replied_at,
             'sleep_requested': 0.0, 'sleep_actual': 0.0, 'host': host,
             'binary': 'nova-lite-compute', 'version': '1.0',
             'greenthreads': 3}
    return probe.sample_from_reply(
        'compute', sent_at, 5.0, sent_at + total_ms / 1000.0,
        5.0 + total_ms / 1000.0, reply)


def test_one_uneven_round_trip_is_off_by_half_its_asymmetry():
    sample = _sample(0.0, there_ms=24.5, back_ms=3.4)
    assert sample.clock_offset == pytest.approx(10.55)
    offset = clocks.from_sample(sample)
    # ... and its bound says so: the truth (0) lies within it.
    assert offset.bound_ms == pytest.approx(13.95)
    assert abs(offset.offset_ms) <= offset.bound_ms


def test_window_estimate_is_the_lowest_round_trip_not_the_last():
    window = clocks.Window(seconds=80)
    symmetric = [_sample(0.0, there_ms=legs, back_ms=legs)
                 for legs in (2.1, 1.8, 2.6, 3.0)]
    uneven = _sample(0.0, there_ms=24.5, back_ms=3.4)
    for now, sample in enumerate(symmetric[:2] + [uneven] + symmetric[2:]):
        window.add('h1', clocks.from_sample(sample), now)
    estimate = window.estimate('h1', now=5)
    assert abs(estimate.offset_ms) < 0.01
    assert estimate.bound_ms == pytest.approx(1.8)
    # The uneven sample, last, would have said 10.55 ms.
    window.add('h1', clocks.from_sample(uneven), 6)
    assert window.estimate('h1', now=6) == estimate


def test_estimate_is_within_its_bound_whatever_the_legs():
    rand = random.Random(17)
    for true_offset in (0.0, 3000.0, -42.5):
        window = clocks.Window(seconds=80)
        for now in range(8):
            window.add('h1', clocks.from_sample(_sample(
                true_offset, there_ms=rand.uniform(0.2, 30),
                back_ms=rand.uniform(0.2, 30))), now)
        estimate = window.estimate('h1', now=8)
        assert abs(estimate.offset_ms - true_offset) <= estimate.bound_ms


def test_window_forgets_old_offsets():
    window = clocks.Window(seconds=10)
    window.add('h1', clocks.Offset(5.0, 0.5), now=0)
    window.add('h1', clocks.Offset(7.0, 2.0), now=6)
    assert window.estimate('h1', now=9) == clocks.Offset(5.0, 0.5)
    # The tight one left the window: the next best still in it.
    assert window.estimate('h1', now=12) == clocks.Offset(7.0, 2.0)
    assert window.keys(now=12) == ['h1']
    assert window.estimate('h1', now=17) is None
    assert window.keys(now=17) == []


def test_offsets_compose_and_so_do_bounds():
    host_vs_prober = clocks.Offset(2900.0, 1.5)
    prober_vs_reference = clocks.Offset(100.0, 0.25)
    assert host_vs_prober + prober_vs_reference == clocks.Offset(3000.0,
                                                                 1.75)


def test_two_probers_agree_on_a_host_against_the_reference():
    """Host h1 is 3000 ms ahead of the database server; prober p1 is 100 ms
    ahead of it, p2 50 ms behind.  Each sees h1 differently, both store the
    same offset against the reference."""
    rows = {}
    for prober, prober_offset in (('p1', 100.0), ('p2', -50.0)):
        book = clocks.ClockBook(prober, seconds=80)
        book.add_reference(clocks.Offset(prober_offset, 0.2), now=0)
        samples = [_sample(3000.0 - prober_offset, there_ms=there,
                           back_ms=back)
                   for there, back in ((2.0, 2.2), (24.5, 3.4))]
        book.add_samples(samples, now=1)
        rows[prober] = {row['host']: row for row in book.host_clocks(now=2)}
        # The samples stored against the reference, each with its bound.
        stored = book.against_reference(samples[1], now=2)
        assert abs(stored.offset_ms - 3000.0) <= stored.bound_ms
    for prober, prober_offset in (('p1', 100.0), ('p2', -50.0)):
        h1 = rows[prober]['h1']
        assert h1['measured_by'] == prober
        assert abs(h1['offset_ms'] - 3000.0) <= h1['bound_ms']
        assert h1['bound_ms'] == pytest.approx(2.1 + 0.2)
        # The prober's own row is its measured offset.
        assert rows[prober][prober] == {
            'host': prober, 'offset_ms': prober_offset, 'bound_ms': 0.2,
            'measured_by': prober}
    assert rows['p1']['h1']['offset_ms'] == pytest.approx(
        rows['p2']['h1']['offset_ms'])


def test_without_its_own_offset_a_prober_stores_none():
    book = clocks.ClockBook('p1', seconds=80)
    sample = _sample(5.0, 1.0, 1.0)
    book.add_samples([sample], now=0)
    assert book.host_clocks(now=0) == []
    assert book.against_reference(sample, now=0) is None
    lost = probe.Sample(topic='compute', host='h1', timed_out=True)
    book.add_reference(clocks.Offset(0.0, 0.0), now=0)
    assert book.against_reference(lost, now=0) is None


def test_round_trip_offset_arithmetic():
    # Sent at 100.000 s, 4 ms round trip, the server said 99.500 s: this
    # host is 502 ms ahead, give or take 2 ms.
    offset_ms, bound_ms = db_clocks.round_trip_offset(100.0, 99.5, 0.004)
    assert (offset_ms, bound_ms) == (pytest.approx(502.0),
                                     pytest.approx(2.0))


def test_sqlite_reference_is_this_hosts_clock(db):
    assert db.reference_offset() == {'offset_ms': 0.0, 'bound_ms': 0.0}


def test_host_clocks_are_upserted(db):
    db.host_clocks_set([{'host': 'h1', 'offset_ms': 3000.25,
                         'bound_ms': 1.5, 'measured_by': 'i1'},
                        {'host': 'i1', 'offset_ms': 0.0, 'bound_ms': 0.0,
                         'measured_by': 'i1'}])
    first = db.host_clock_get('h1')
    db.host_clocks_set([{'host': 'h1', 'offset_ms': 2999.75,
                         'bound_ms': 0.5, 'measured_by': 'i2'}])
    row = db.host_clock_get('h1')
    assert (row['offset_ms'], row['bound_ms'], row['measured_by']) == (
        2999.75, 0.5, 'i2')
    assert row['updated_at'] >= first['updated_at']
    assert [r['host'] for r in db.host_clock_get_all()] == ['h1', 'i1']
    assert db.host_clock_get('nohost') is None


def _round_manager(conf, db, monkeypatch, samples):
    conf.set_override('sleep_seconds', 0.0, group='inflight')
    for host in ('h1', 'h2'):
        db.service_register(host, 'nova-lite-compute', 'compute', '1.0')
    mgr = inflight_manager.InflightManager(conf=conf, host='i1', db=db,
                                           binary='nova-lite-inflight')
    mgr.init_host()
    monkeypatch.setattr(mgr, '_probe_service',
                        lambda ctxt, svc: samples[svc['host']])
    monkeypatch.setattr(mgr._queues, 'depths', lambda topics: {})
    return mgr


def test_round_stores_offsets_against_the_reference(db, conf, monkeypatch):
    samples = {'h1': _sample(3000.0, 24.5, 3.4, host='h1'),
               'h2': probe.Sample(topic='compute', host='h2',
                                  timed_out=True)}
    mgr = _round_manager(conf, db, monkeypatch, samples)
    monkeypatch.setattr(db, 'reference_offset', lambda probes: {
        'offset_ms': 100.0, 'bound_ms': 0.25})
    mgr.probe_now(context.get_admin_context())
    samples['h1'] = _sample(3000.0, 2.0, 2.0, host='h1')
    mgr.probe_now(context.get_admin_context())
    h1 = db.host_clock_get('h1')
    # The lowest round trip of the window, composed with the prober's own.
    assert h1['offset_ms'] == pytest.approx(3100.0)
    assert h1['bound_ms'] == pytest.approx(2.0 + 0.25)
    assert h1['measured_by'] == 'i1'
    assert db.host_clock_get('i1')['offset_ms'] == 100.0
    assert db.host_clock_get('h2') is None
    stored = [s for s in db.inflight_samples_since(60) if s['host'] == 'h1']
    assert [(round(s['clock_offset'], 6), round(s['clock_offset_bound'], 6))
            for s in stored] == [(3110.55, 14.2), (3100.0, 2.25)]


def test_round_goes_on_when_the_reference_is_unreadable(db, conf,
                                                        monkeypatch):
    samples = {'h1': _sample(5.0, 1.0, 1.0, host='h1'),
               'h2': _sample(0.0, 1.0, 1.0, host='h2')}
    mgr = _round_manager(conf, db, monkeypatch, samples)

    def unreadable(probes):
        raise RuntimeError('database blip')

    monkeypatch.setattr(db, 'reference_offset', unreadable)
    summary = mgr.probe_now(context.get_admin_context())
    assert summary['answered'] == 2
    stored = db.inflight_samples_since(60)
    assert len(stored) == 2
    # No reference, no offset against it: None, never the prober's.
    assert {s['clock_offset'] for s in stored} == {None}
    assert db.host_clock_get_all() == []


@pytest.fixture
def own_offset():
    saved = stamps.own_offset()
    yield
    stamps.set_own_offset(saved)


def test_services_learn_their_offset_with_the_heartbeat(factory, db,
                                                        own_offset):
    stamps.set_own_offset(None)
    db.host_clocks_set([{'host': 'h1', 'offset_ms': 3000.0, 'bound_ms': 1.0,
                         'measured_by': 'i1'}])
    factory.start_service('scheduler', host='h1')
    assert stamps.own_offset() == 3.0
    db.host_clocks_set([{'host': 'h1', 'offset_ms': -20.0, 'bound_ms': 1.0,
                         'measured_by': 'i1'}])
    waiters.wait_for(lambda: stamps.own_offset() == -0.02, timeout=10,
                     what='the heartbeat to learn the new offset')


def test_an_unreadable_offset_never_fails_the_heartbeat(factory, db,
                                                        monkeypatch,
                                                        own_offset):
    db.host_clocks_set([{'host': 'h1', 'offset_ms': 3000.0, 'bound_ms': 1.0,
                         'measured_by': 'i1'}])
    svc = factory.start_service('scheduler', host='h1')
    assert stamps.own_offset() == 3.0
    reads = []

    def unreadable(host):
        reads.append(host)
        raise RuntimeError('database blip')

    monkeypatch.setattr(svc.db, 'host_clock_get', unreadable)
    row = waiters.wait_for_service(db, 'h1', 'nova-lite-scheduler',
                                   min_report_count=3, timeout=10)
    assert reads and row['report_count'] >= 3
    assert svc.heartbeat_failed_at is None
    # The offset known so far is kept.
    assert stamps.own_offset() == 3.0


def test_queue_time_is_corrected_by_both_offsets(own_offset):
    # The sender's clock is 3 s ahead of the reference, the receiver's
    # 0.5 s behind; the message waited 20 ms.
    sent_at = 1000.0 + 3.0
    received_at = 1000.020 - 0.5
    stamps.set_own_offset(-0.5)
    queue, skewed = stamps.queue_seconds(
        {'sent_at': sent_at, 'host': 'h1', 'offset': 3.0}, received_at)
    assert (queue, skewed) == (pytest.approx(0.020), False)
    # Unknown offsets: negative, so clamped to 0 and counted as skew.
    stamps.set_own_offset(None)
    assert stamps.queue_seconds({'sent_at': sent_at, 'host': 'h1',
                                 'offset': None}, received_at) == (0.0,
                                                                   True)
