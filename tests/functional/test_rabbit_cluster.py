"""nova_lite on a 3-node RabbitMQ cluster with quorum queues
(``nova_lite.testing.rabbit_cluster``): real daemons (api, conductor,
scheduler, a fake-driver compute, inflight) on a multi-host transport_url
with ``rabbit_quorum_queue`` and ``rabbit_transient_quorum_queue``.

While servers are created through the API at a steady rate, the node that
leads the compute and conductor queues is killed with -9.  Then every
create that got a 202 ends ACTIVE (none lost), every daemon answers a ping
within 30 s of the kill, and no daemon exited.  The queue inspector
reads the quorum queues' depth and consumers before and after.

The cluster takes 10-40 s to start on a 2-core machine, and the test
kills a node of it: one cluster for one test.  It runs on both backends
(about a minute each); the failover paths differ by backend (green or
native heartbeat and reconnect), so both are worth the time.
"""

import subprocess
import sys
import time

import pytest
from oslo_config import cfg

from nova_lite import baserpc
from nova_lite import concurrency
from nova_lite import context
from nova_lite.inflight import queues
from nova_lite import rpc
from nova_lite.testing import api
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import rabbit_cluster
from nova_lite.testing import waiters
from tests.functional import test_api

SERVERS = '/v2.1/servers'
# The target: every daemon answers a ping within 30 s of the kill.
PING_BOUND = 30.0
CREATES_PER_SECOND = 4.0
CREATE_SECONDS_BEFORE = 4.0
CREATE_SECONDS_AFTER = 8.0

# The queues whose leader the test kills: the compute's and the
# conductor's, shared and per host.
KILLED_QUEUES = ('compute', 'compute.cpu1', 'conductor', 'conductor.ctl1')

QUORUM = {
    'oslo_messaging_rabbit': {
        'rabbit_quorum_queue': True,
        'rabbit_transient_quorum_queue': True,
        # A dead peer is noticed within 10 s (a kill -9 closes the
        # sockets at once; this is for the silent cases).
        'heartbeat_timeout_threshold': 10,
        'heartbeat_rate': 2,
        'rabbit_retry_interval': 1,
        'rabbit_retry_backoff': 1,
        'rabbit_interval_max': 2,
    },
}


@pytest.fixture
def cluster():
    try:
        with rabbit_cluster.RabbitCluster(size=3) as cluster:
            print('\ncluster of 3 started in %.1f s' % cluster.start_seconds)
            yield cluster
        print('cluster stopped in %.1f s' % cluster.stop_seconds)
    except nl_fixtures.BrokerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def deployment(cluster):
    inflight = {'inflight': {'probe_interval': 2, 'sleep_seconds': 0.05,
                             'ping_timeout': 5}}
    overrides = dict(QUORUM, fake_driver={'operation_seconds': 0.2})
    # oslo.messaging shuffles the URL's hosts: node 1 is made to lead the
    # queues the test kills the leader of (as the daemons would declare
    # them), whichever node each daemon happens to connect to.
    cluster.declare_quorum_queues(KILLED_QUEUES)
    with test_api.api_deployment(cluster, {
            'conductor': ('nova-lite-conductor', 'ctl1', None),
            'scheduler': ('nova-lite-scheduler', 'ctl1', None),
            # Room for every server the test creates.
            'compute': ('nova-lite-compute', 'cpu1', {'compute': {
                'vcpus': 1024, 'memory_mb': 1 << 22, 'disk_gb': 1 << 14}}),
            'inflight': ('nova-lite-inflight', 'prober', inflight)},
            overrides=overrides) as env:
        yield env


class Creator:
    """POSTs servers at a steady rate in a thread of its own; keeps
    every answer (a 202's server id, or what went wrong)."""

    def __init__(self, client, rate):
        self.client = client
        self.period = 1.0 / rate
        self.accepted = []
        self.refused = []
        self._stop = concurrency.Event()
        self._thread = None

    def start(self):
        self._thread = concurrency.spawn(self._run)

    def stop(self):
        self._stop.set()
        self._thread.wait()

    def _run(self):
        index = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            index += 1
            try:
                resp = self.client.post(SERVERS, {'server': {
                    'name': 'c%d' % index, 'imageRef': 'cirros',
                    'flavorRef': '1'}})
            except Exception as exc:  # noqa: BLE001 - a client error
                self.refused.append(repr(exc))
            else:
                if resp.status == 202:
                    self.accepted.append(resp.json['server']['id'])
                else:
                    self.refused.append('%s %s' % (resp.status, resp.body))
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def _services(env):
    """(topic, host) of every daemon's service."""
    return [(row['topic'], row['host'])
            for row in env.db.service_get_all()]


def _ping_all(conf, services, deadline):
    """Ping every service until each has answered once; seconds until
    each answered (None: not within ``deadline``)."""
    ctxt = context.get_admin_context()
    answered = {}
    errors = {}
    started = time.monotonic()
    while len(answered) < len(services) and time.monotonic() < deadline:
        for topic, host in services:
            if (topic, host) in answered:
                continue
            try:
                reply = baserpc.BaseRPCAPI(conf, topic).ping(
                    ctxt, 'after-kill', host=host, timeout=3, retry=3)
            except Exception as exc:  # noqa: BLE001 - not yet
                errors[(topic, host)] = repr(exc)
                continue
            if reply.get('host') == host:
                answered[(topic, host)] = time.monotonic() - started
    return ({service: answered.get(service) for service in services},
            errors)


def test_kill_the_leader_loses_no_accepted_create(cluster, deployment):
    env = deployment
    conf = env.conf_fixture.conf
    leaders = {queue: cluster.leader_of(queue) for queue in KILLED_QUEUES}
    types = {row['name']: row['type'] for row in cluster.list_queues()}
    assert all(types[queue] == 'quorum' for queue in KILLED_QUEUES), types
    victim = cluster.nodes[0]
    assert set(leaders.values()) == {victim}, leaders
    # The inflight daemon's queue inspector reads a quorum queue as it
    # reads a classic one.
    inspector = queues.QueueInspector(conf)
    depths = inspector.depths(['compute', 'conductor', 'no-such-queue'])
    assert depths == {'compute': {'messages': 0, 'consumers': 1},
                      'conductor': {'messages': 0, 'consumers': 1},
                      'no-such-queue': None}, depths
    services = _services(env)
    assert {topic for topic, _ in services} >= {
        'api', 'conductor', 'scheduler', 'compute', 'inflight'}, services

    creator = Creator(env.admin, CREATES_PER_SECOND)
    creator.start()
    try:
        waiters.wait_for(lambda: len(creator.accepted) >=
                         CREATES_PER_SECOND * CREATE_SECONDS_BEFORE,
                         timeout=60, what='creates before the kill')
        victim.kill()
        killed_at = time.monotonic()
        # The test's own client, on the global config (oslo.messaging
        # reads some options from there), also loses node 1.
        with nl_fixtures.ConfFixture(transport_url=cluster.url,
                                     overrides=QUORUM) as client_conf:
            rpc.init(client_conf.conf)
            try:
                ping_seconds, ping_errors = _ping_all(
                    client_conf.conf, services, killed_at + PING_BOUND)
            finally:
                rpc.cleanup()
        waiters.wait_for(lambda: time.monotonic() - killed_at >=
                         CREATE_SECONDS_AFTER or None, timeout=60,
                         what='creates after the kill')
    finally:
        creator.stop()
    new_leaders = {queue: cluster.leader_of(queue).node
                   for queue in ('compute', 'conductor')}
    # Node 1, the URL's first host, is gone: the inspector goes on to the
    # next, and sees the compute consuming again.
    try:
        after = waiters.wait_for(
            lambda: inspector.depths(['compute'])['compute']['consumers']
            == 1 and inspector.depths(['compute']), timeout=30,
            what='the inspector to read the compute queue again')
    finally:
        inspector.close()
    broker = {row['name']: row for row in cluster.list_queues()}
    assert after['compute']['consumers'] == broker['compute']['consumers']

    def _settled():
        states = {}
        for server_id in creator.accepted:
            resp = env.admin.get('%s/%s' % (SERVERS, server_id))
            states[server_id] = (
                (resp.json['server']['status'],
                 resp.json['server'].get('fault', {}).get('message'))
                if resp.status == 200 else (resp.status, None))
        if all(state in ('ACTIVE', 'ERROR') for state, _ in states.values()):
            return states
        return None

    states = waiters.wait_for(_settled, timeout=120,
                              what='every accepted create to settle')
    exited = {name: daemon.popen.poll()
              for name, daemon in env.daemons.items()}
    print('\nkilled %s (led compute and conductor); new leaders %s\n'
          'creates: %d accepted, %d refused (%s); pings answered after %s'
          % (victim.node, new_leaders, len(creator.accepted),
             len(creator.refused), creator.refused[:3], ping_seconds))
    lost = {sid: state for sid, state in states.items()
            if state[0] != 'ACTIVE'}
    assert not lost, lost
    assert all(seconds is not None for seconds in ping_seconds.values()), (
        ping_seconds, ping_errors)
    assert all(code is None for code in exited.values()), exited
    assert len(creator.accepted) >= CREATES_PER_SECOND * (
        CREATE_SECONDS_BEFORE + 1)
    assert victim.node not in new_leaders.values()

    # nova-lite-ping, a tool of its own, on the multi-host URL.
    path = env.conf_fixture.write_config_file('ping.conf')
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.ping', '--config-file', path,
         'compute@cpu1', '-c', '1', '-t', '10', '--sleep', '0'],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.password not in result.stdout + result.stderr
