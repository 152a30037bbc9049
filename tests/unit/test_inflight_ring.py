"""The probing group: shares, start rounds, leaves, lease expiry, fallback.

Every ring here is a real tooz member on the ``file://`` backend (a
directory under the test's ``state_path``), several of them in this one
process, as several inflight daemons on one host would be.
"""

import logging

import prometheus_client
import pytest
from tooz import coordination as tooz_coordination

from nova_lite import concurrency
from nova_lite import exception
from nova_lite.inflight import ring
from nova_lite.testing import waiters

INTERVAL = 10.0
# 30 services on 3 topics: enough for every member to get some.
SERVICES = [{'topic': topic, 'host': 'h%02d' % n}
            for topic in ('compute', 'conductor', 'scheduler')
            for n in range(10)]


class Clock:
    """The wall clock the rings read, set by the test."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    # 2 s into round 100 of 10 s.
    return Clock(100 * INTERVAL + 2.0)


@pytest.fixture
def make_ring(conf, clock):
    conf.set_override('probe_interval', INTERVAL, group='inflight')
    made = []

    def make(name):
        member = ring.ProbeRing(conf, name, clock=clock)
        made.append(member)
        return member

    yield make
    # tooz's coordinator takes about a second to stop (its executor's
    # worker): all at once.
    for stopping in [concurrency.spawn(m.stop) for m in made]:
        stopping.wait()


def _metric(name):
    return prometheus_client.REGISTRY.get_sample_value(name)


def _keys(services):
    return sorted(ring.service_key(s) for s in services)


def _watch(*members):
    for member in members:
        member.watch_once()


def _assert_partition(members, round_no):
    """The shares of ``members`` in ``round_no`` are disjoint and cover
    every service; returns them."""
    shares = [_keys(m.share(SERVICES, round_no)) for m in members]
    every = sorted(key for share in shares for key in share)
    assert every == _keys(SERVICES), shares
    return shares


@pytest.mark.parametrize('count', [2, 3])
def test_shares_are_disjoint_and_cover_every_service(make_ring, count):
    members = [make_ring('i%d-%d' % (n, 100 + n)) for n in range(count)]
    _watch(*members)        # each joins, seeing the ones before it
    _watch(*members)        # each sees the ones after it
    assert [m.members() for m in members] == [count] * count
    for round_no in (101, 102, 150):
        shares = _assert_partition(members, round_no)
        # Each has a share: the ring spreads 30 keys over every member.
        assert all(shares), shares
    # The same ring in every member: the shares do not depend on who asks.
    assert _assert_partition(members, 101) == _assert_partition(
        list(reversed(members)), 101)[::-1]


def test_a_member_alone_probes_everything_from_its_first_round(make_ring):
    alone = make_ring('i1-1')
    alone.watch_once()
    # It joined for round 101, yet nobody else probes round 100.
    assert _keys(alone.share(SERVICES, 100)) == _keys(SERVICES)
    assert _keys(alone.share(SERVICES, 101)) == _keys(SERVICES)
    assert _metric('nova_lite_inflight_owned_services') == len(SERVICES)


def test_a_member_that_joins_counts_from_its_start_round(make_ring, clock):
    first, second = make_ring('i1-1'), make_ring('i2-2')
    _watch(first, second, first)
    # Round 105, 3 s in: 7 s left, more than 2 x watch_interval.
    clock.now = 105 * INTERVAL + 3.0
    rebalances = first.rebalances
    late = make_ring('i3-3')
    late.watch_once()
    _watch(first, second)
    assert first.rebalances == rebalances + 1
    assert [m.members() for m in (first, second, late)] == [3, 3, 3]
    everyone = (first, second, late)
    # Round 105: ignored by all, the newcomer included.
    assert late.share(SERVICES, 105) == []
    assert _assert_partition(everyone, 105)[:2] == _assert_partition(
        (first, second), 105)
    # From round 106 on, it has its share, and the others gave it up.
    shares = _assert_partition(everyone, 106)
    assert shares[2]
    # Joining with less than 2 x watch_interval left: the round after.
    clock.now = 106 * INTERVAL + 9.5
    later = make_ring('i4-4')
    later.watch_once()
    _watch(*everyone)
    assert later.share(SERVICES, 107) == []
    assert _assert_partition(everyone + (later,), 107)[3] == []
    assert _assert_partition(everyone + (later,), 108)[3]


def test_a_member_that_stops_is_dropped_by_the_next_watchers(make_ring):
    first, second, third = (make_ring('i1-1'), make_ring('i2-2'),
                            make_ring('i3-3'))
    _watch(first, second, third, first, second)
    before = _assert_partition((first, second, third), 101)
    rebalances = first.rebalances
    third.stop()
    # Until the watchers run, the others keep the ring they knew.
    assert first.members() == 3
    _watch(first, second)
    assert first.members() == second.members() == 2
    assert first.rebalances == rebalances + 1
    after = _assert_partition((first, second), 101)
    # A consistent hash: only the leaver's keys moved.
    assert set(before[0]) <= set(after[0])
    assert set(before[1]) <= set(after[1])
    assert third.share(SERVICES, 101) == []


def test_a_killed_members_lease_runs_out_on_the_file_backend(
        conf, make_ring):
    """tooz's file driver drops a member whose heartbeat stopped once
    ``timeout`` (our membership_timeout) has passed: kill -9 seen by the
    survivor within the lease, with no leave."""
    conf.set_override('membership_timeout', 1, group='inflight')
    conf.set_override('watch_interval', 0.2, group='inflight')
    survivor, victim = make_ring('i1-1'), make_ring('i2-2')
    assert survivor.url.endswith('?timeout=1')
    _watch(survivor, victim, survivor)
    assert survivor.members() == 2
    # What kill -9 leaves: no more heartbeats, no leave.
    victim._coord.heart.stop()
    victim._coord.heart.wait(5)
    victim._stopping.set()
    victim._coord = victim._partitioner = None
    waiters.wait_for(lambda: survivor.watch_once() or
                     survivor.members() == 1, timeout=15,
                     what='the killed member\'s lease to run out')
    assert _keys(survivor.share(SERVICES, 101)) == _keys(SERVICES)


def test_backend_errors_mean_the_last_known_share(make_ring, monkeypatch,
                                                  caplog):
    first, second = make_ring('i1-1'), make_ring('i2-2')
    _watch(first, second, first)
    known = _keys(first.share(SERVICES, 101))
    assert 0 < len(known) < len(SERVICES)
    assert _metric('nova_lite_inflight_coordination_fallback') == 0

    def unreachable(*args, **kwargs):
        raise tooz_coordination.ToozConnectionError('etcd is gone')

    monkeypatch.setattr(first._coord, 'run_watchers', unreachable)
    second.stop()   # a change the broken member cannot see
    with caplog.at_level(logging.INFO, logger='nova_lite.inflight.ring'):
        first.watch_once()
        first.watch_once()
        assert first.fallback
        assert _metric('nova_lite_inflight_coordination_fallback') == 1
        assert _keys(first.share(SERVICES, 101)) == known
        monkeypatch.undo()
        first.watch_once()
    assert not first.fallback
    assert _metric('nova_lite_inflight_coordination_fallback') == 0
    assert _keys(first.share(SERVICES, 101)) == _keys(SERVICES)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and 'etcd is gone' in warnings[0].getMessage()
    assert any('answers again' in r.getMessage() for r in caplog.records
               if r.levelno == logging.INFO)


def test_never_joined_probes_everything_and_joins_when_it_can(
        conf, make_ring):
    # Nothing listens on port 9: the join fails at once.
    conf.set_override('backend_url', 'etcd3+http://127.0.0.1:9?timeout=1',
                      group='coordination')
    member = make_ring('i1-1')
    member.start()
    assert member.fallback
    assert _metric('nova_lite_inflight_coordination_fallback') == 1
    assert _keys(member.share(SERVICES, 101)) == _keys(SERVICES)
    # The backend comes back (here: the file one); the watcher joins.
    conf.clear_override('backend_url', group='coordination')
    other = make_ring('i2-2')
    other.watch_once()
    member.url = other.url
    waiters.wait_for(lambda: not member.fallback and member.members() == 2,
                     timeout=15, what='the watcher to join')
    assert _metric('nova_lite_inflight_coordination_fallback') == 0


def test_a_dropped_member_joins_again(make_ring, clock):
    """A member the group dropped (its lease ran out while it was stalled)
    sees itself leave and joins again, for a later round."""
    first, second = make_ring('i1-1'), make_ring('i2-2')
    _watch(first, second, first)
    # The group loses second, as its lease running out would.
    second._coord.leave_group(second.group).get()
    _watch(first)
    assert first.members() == 1
    clock.now = 103 * INTERVAL + 1.0
    second.watch_once()     # sees itself gone: joins again for 104
    assert second.share(SERVICES, 103) == []
    _watch(first, second)
    assert first.members() == second.members() == 2
    assert _keys(first.share(SERVICES, 103)) == _keys(SERVICES)
    _assert_partition((first, second), 104)


def test_membership_timeout_goes_into_the_url_unless_it_sets_one(conf):
    url, lease, source = ring.membership_url(conf)
    assert url.startswith('file://') and url.endswith('?timeout=10')
    assert (lease, source) == (10, '[inflight] membership_timeout')
    conf.set_override('backend_url', 'etcd3+http://etcd:2379?timeout=5',
                      group='coordination')
    url, _, _ = ring.membership_url(conf)
    assert url == 'etcd3+http://etcd:2379?timeout=5&membership_timeout=10'
    conf.set_override('backend_url',
                      'etcd3+http://etcd:2379?membership_timeout=4',
                      group='coordination')
    url, lease, source = ring.membership_url(conf)
    assert url == 'etcd3+http://etcd:2379?membership_timeout=4'
    assert lease == '4' and 'URL' in source


def test_a_lease_shorter_than_two_watches_is_a_config_error(conf):
    conf.set_override('membership_timeout', 2, group='inflight')
    conf.set_override('watch_interval', 1.5, group='inflight')
    with pytest.raises(exception.ConfigError) as err:
        ring.ProbeRing(conf, 'i1-1')
    assert 'membership_timeout (2)' in str(err.value)
    assert '2 x watch_interval (1.5)' in str(err.value)


def test_prober_name_is_host_and_pid():
    assert ring.prober_name('i1', 4242) == 'i1-4242'
