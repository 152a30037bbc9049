"""The probing group on a real etcd: shares, a leave, a lease that runs out.

ProbeRings in this process, each its own tooz member on etcd (what the
inflight daemons of several hosts do); the daemons themselves are in
the scale tests.
"""

import uuid

from oslo_config import cfg
import pytest

from nova_lite import concurrency
from nova_lite import conf as nova_conf
from nova_lite.inflight import ring
from nova_lite.testing import waiters

SERVICES = [{'topic': 'compute', 'host': 'c%02d' % n} for n in range(24)]


@pytest.fixture
def rings(etcd_url):
    # No broker, no database: the group alone.
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite')
    conf.set_override('backend_url', etcd_url, group='coordination')
    # A group of this test's own: etcd outlives the tests.
    conf.set_override('group', 'test-%s' % uuid.uuid4().hex[:8],
                      group='inflight')
    conf.set_override('membership_timeout', 2, group='inflight')
    conf.set_override('watch_interval', 0.2, group='inflight')
    made = []

    def make(name):
        member = ring.ProbeRing(conf, name)
        made.append(member)
        member.start()
        return member

    yield make
    for stopping in [concurrency.spawn(m.stop) for m in made]:
        stopping.wait()


def _keys(services):
    return sorted(ring.service_key(s) for s in services)


def test_members_share_leave_and_expire_on_etcd(rings):
    members = [rings('e%d-%d' % (n, n)) for n in range(3)]
    assert members[0].url.endswith('membership_timeout=2')
    waiters.wait_for(lambda: all(m.members() == 3 for m in members),
                     timeout=15, what='three members seen by each')
    assert not any(m.fallback for m in members)
    # A round every member counts in.
    round_no = max(m.next_start_round() for m in members) + 1
    shares = [_keys(m.share(SERVICES, round_no)) for m in members]
    assert all(shares), shares
    assert sorted(sum(shares, [])) == _keys(SERVICES)
    # A graceful stop leaves at once.
    members[2].stop()
    waiters.wait_for(lambda: members[0].members() == members[1].members()
                     == 2, timeout=10, what='the leave to be seen')
    # What kill -9 leaves: no heartbeat, no leave; the lease runs out.
    victim = members[1]
    victim._stopping.set()
    victim._watcher.join(5)
    victim._coord.heart.stop()
    waiters.wait_for(lambda: members[0].members() == 1, timeout=15,
                     what='the killed member\'s lease to run out')
    assert _keys(members[0].share(SERVICES, round_no)) == _keys(SERVICES)
    assert members[0].rebalances >= 2
