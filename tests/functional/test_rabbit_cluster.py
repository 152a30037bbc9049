"""nova_lite on a 3-node RabbitMQ cluster with quorum queues
(``nova_lite.testing.rabbit_cluster``): real daemons (api, conductor,
scheduler, a fake-driver compute, inflight) on a multi-host transport_url
with ``rabbit_quorum_queue`` and ``rabbit_transient_quorum_queue``.

While servers are created through the API at a steady rate, the node that
leads the compute and conductor queues is killed with -9.  Then every
create that got a 202 ends ACTIVE (none lost), every daemon answers a ping
within 30 s of the kill, no daemon exited, and the inflight daemon
probes every service again.  The queue inspector reads the quorum queues'
depth and consumers before and after.

With classic queues instead the test fails (accepted creates stay in
BUILD: their casts went down with the node).  The cluster takes 24-74 s
to start on the loaded 2-core machine, and the test kills a node of it:
one cluster for one test, 100-190 s per backend.  It runs on both
backends: their failover paths differ (green or native heartbeat and
reconnect threads), so both are worth the time.
"""

import json
import os
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
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import rabbit_cluster
from nova_lite.testing import waiters
from tests.functional import test_api

SERVERS = '/v2.1/servers'
# The target: every daemon answers a ping within 30 s of the kill.
PING_BOUND = 30.0
PROBE_INTERVAL = 2
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
        # Every node gone, the killed one too, and their directories.
        assert not any(node.alive() for node in cluster.nodes)
        assert not os.path.exists(cluster.base_dir)
    except nl_fixtures.BrokerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def deployment(cluster):
    inflight = {'inflight': {'probe_interval': PROBE_INTERVAL,
                             'sleep_seconds': 0.05,
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
        self.accepted_at = []  # time.monotonic() of each 202
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
                    self.accepted_at.append(time.monotonic())
                else:
                    self.refused.append('%s %s' % (resp.status, resp.body))
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def _nova_lite(env, module, *args):
    """Run a nova_lite command with the deployment's config."""
    path = env.conf_fixture.write_config_file('cli.conf')
    return subprocess.run(
        [sys.executable, '-m', module, '--config-file', path] + list(args),
        capture_output=True, text=True, timeout=60)


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
            if reply.get('host') == (host or reply.get('host')):
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
    assert depths == {'compute': {'messages': 0, 'unacked': None,
                                  'consumers': 1},
                      'conductor': {'messages': 0, 'unacked': None,
                                    'consumers': 1},
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
                # (compute, None): through the shared queue, so the
                # compute consumes it again too, not only compute.cpu1.
                ping_seconds, ping_errors = _ping_all(
                    client_conf.conf, services + [('compute', None)],
                    killed_at + PING_BOUND)
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
    # next.  It reads the queue-declare-ok counts: RabbitMQ 3.10 counts
    # there a consumer whose connection was on the killed node (kept as
    # "suspected down" until the node is back; rabbit_fifo:query_stat),
    # which list_queues leaves out (query_consumer_count): the compute's
    # old one, if its connection was there.
    seen = []

    def _agrees():
        depth = inspector.depths(['compute'])['compute']
        broker = {row['name']: row for row in cluster.list_queues()}
        seen.append((depth, broker['compute']['consumers']))
        return (depth is not None and
                broker['compute']['consumers'] == 1 and
                depth['consumers'] in (1, 2) and
                depth['messages'] == broker['compute']['messages'] and
                depth)

    try:
        waiters.wait_for(
            _agrees, timeout=30, interval=0.5,
            what='the inspector to read the compute queue as the broker does')
    except waiters.WaitTimeout as exc:
        pytest.fail('%s; last (inspector, broker) readings: %s' % (
            exc, seen[-3:]))
    finally:
        inspector.close()

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
          'creates: %d accepted, %d refused (%s); pings answered after %s;'
          ' compute queue consumers (inspector, broker) %s'
          % (victim.node, new_leaders, len(creator.accepted),
             len(creator.refused), creator.refused[:3], ping_seconds,
             seen[-1]))
    lost = {sid: state for sid, state in states.items()
            if state[0] != 'ACTIVE'}
    assert not lost, lost
    assert all(seconds is not None for seconds in ping_seconds.values()), (
        ping_seconds, ping_errors)
    assert all(code is None for code in exited.values()), exited
    # The API went on accepting creates after the kill (its casts went to
    # the queues' new leaders), and those are ACTIVE too.
    assert any(at > killed_at + 1 for at in creator.accepted_at), (
        killed_at, creator.accepted_at)
    assert victim.node not in new_leaders.values()

    # The inflight daemon probed every service again after the kill (its
    # samples of a whole round taken since), and nova-lite-manage reports
    # them.
    def _probed_again():
        since = time.monotonic() - killed_at - PROBE_INTERVAL
        answered = {(row['topic'], row['host'])
                    for row in env.db.inflight_samples_since(since)
                    if not row['timed_out'] and not row['error']}
        return answered >= set(services) and answered

    waiters.wait_for(_probed_again, timeout=30,
                     what='a probe of every service after the kill')
    report = _nova_lite(env, 'nova_lite.cmd.manage', 'inflight', 'report',
                        '--json')
    assert report.returncode == 0, report.stderr
    rows = {(row['topic'], row['host']): row
            for row in json.loads(report.stdout)}
    assert all(rows[service]['samples'] >= 1 for service in services), rows

    # nova-lite-ping, a tool of its own, on the multi-host URL.
    result = _nova_lite(env, 'nova_lite.cmd.ping', 'compute@cpu1', '-c',
                        '1', '-t', '10', '--sleep', '0')
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.password not in result.stdout + result.stderr


def _cluster_cli(*args):
    return subprocess.run(
        [sys.executable, '-m', 'nova_lite.testing.rabbit_cluster'] +
        list(args), capture_output=True, text=True, timeout=300)


def test_cli_leaves_a_cluster_running_until_stop(rabbit_reachable_dir):
    """``start`` (what ``deploy --rabbit-cluster`` runs in-process) leaves
    its nodes running after it exits; ``stop`` ends them.  One node: the
    joining is the other test's."""
    state_dir = os.path.join(rabbit_reachable_dir, 'cluster')
    started = _cluster_cli('start', '--size', '1', '--state-dir', state_dir)
    state_path = os.path.join(state_dir, rabbit_cluster.STATE_FILE)
    stopped = node = None
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        with open(os.path.join(state_dir, rabbit_cluster.URL_FILE)) as f:
            url = f.read().strip()
        password = url.split('@')[0].rpartition(':')[2]
        assert password and password not in started.stdout + started.stderr
        assert 'rabbit_cluster stop --state-dir %s' % state_dir in (
            started.stdout)
        with open(state_path) as handle:
            (node,) = json.load(handle)['nodes']
        os.kill(node['pid'], 0)  # still running after "start" exited
        with nl_fixtures.ConfFixture(conf=cfg.ConfigOpts(),
                                     transport_url=url) as fixture:
            inspector = queues.QueueInspector(fixture.conf)
            try:
                assert inspector.depths(['none']) == {'none': None}
                assert inspector._connection.connected
            finally:
                inspector.close()
    finally:
        if os.path.exists(state_path):
            stopped = _cluster_cli('stop', '--state-dir', state_dir)
    assert stopped is not None and stopped.returncode == 0, (
        stopped and stopped.stdout + stopped.stderr)
    waiters.wait_for(lambda: not _alive(node['pid']), timeout=30,
                     what='the node to be gone')
    assert not os.path.exists(node['base_dir'])
    assert not os.path.exists(state_path)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
