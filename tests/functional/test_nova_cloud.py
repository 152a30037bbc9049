"""The real-Nova fixture itself: a Nova 34 whose services are up in their
cell database and in os-services, and answer ``baseapi.ping`` on the
``nova`` exchange of their own vhost."""

import datetime
import json
import os
import signal
import subprocess

import oslo_messaging as messaging
import pytest

from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import nova_cloud as nl_nova_cloud

TOPICS = ('conductor', 'scheduler', 'compute')
BINARIES = ('nova-conductor', 'nova-scheduler', 'nova-compute')
# Nova's default [DEFAULT] service_down_time.
SERVICE_DOWN_TIME = 60


@pytest.fixture
def nova_transport(nova_cloud):
    """An oslo.messaging transport (our venv's) on the cloud's vhost.
    oslo.messaging reads its tracing options from cfg.CONF, hence the
    ConfFixture."""
    with nl_fixtures.ConfFixture(
            transport_url=nova_cloud.transport_url) as conf_fixture:
        transport = messaging.get_rpc_transport(conf_fixture.conf)
        yield transport
        transport.cleanup()


def _ping(transport, cloud, topic, arg, timeout=10):
    target = messaging.Target(exchange=cloud.control_exchange, topic=topic,
                              server=cloud.host, namespace='baseapi',
                              version='1.1')
    client = messaging.get_rpc_client(transport, target, timeout=timeout)
    return client.call({}, 'ping', arg=arg)


def _fresh(row):
    """Nova's own verdict: up while the last heartbeat (or the creation)
    is younger than service_down_time."""
    last = row['updated_at'] or row['created_at']
    if isinstance(last, str):
        last = datetime.datetime.fromisoformat(last)
    age = datetime.datetime.utcnow() - last
    return age.total_seconds() < SERVICE_DOWN_TIME


def test_services_are_up_in_the_cell1_database(nova_cloud):
    rows = {row['binary']: row for row in nova_cloud.service_rows('cell1')}
    assert set(BINARIES) <= set(rows), rows
    for binary, topic in zip(BINARIES, TOPICS):
        row = rows[binary]
        assert row['host'] == nova_cloud.host
        assert row['topic'] == topic
        assert not row['disabled']
        assert _fresh(row), row
    # cell0 is mapped and synced but runs no service.
    assert nova_cloud.service_rows('cell0') == []


def test_os_services_lists_them_up(nova_cloud):
    services = nova_cloud.api_get('/os-services')['services']
    by_binary = {service['binary']: service for service in services}
    assert set(BINARIES) <= set(by_binary), services
    for binary in BINARIES:
        assert by_binary[binary]['host'] == nova_cloud.host
        assert by_binary[binary]['state'] == 'up'
        assert by_binary[binary]['status'] == 'enabled'


def test_the_api_needs_the_v21_prefix(nova_cloud):
    """api_url is the v2.1 endpoint: its root answers the version
    document, not a 404."""
    assert nova_cloud.api_url.endswith('/v2.1')
    version = nova_cloud.api_get('')['version']
    assert version['id'] == 'v2.1'
    assert version['status'] == 'CURRENT'


@pytest.mark.parametrize('topic', TOPICS)
def test_every_service_answers_baseapi_ping(nova_cloud, nova_transport,
                                            topic):
    reply = _ping(nova_transport, nova_cloud, topic, 'hello-%s' % topic)
    assert reply == {'service': topic, 'arg': 'hello-%s' % topic}


def test_clouds_yaml_lists_services_through_openstacksdk(nova_cloud):
    """The clouds.yaml entry works without Keystone (openstacksdk of the
    Nova venv: our own venv does not ship it)."""
    script = ('import json, openstack\n'
              'conn = openstack.connect(cloud=%r)\n'
              'print(json.dumps(sorted([s.binary, s.host, s.state] '
              'for s in conn.compute.services())))\n' % nova_cloud.cloud_name)
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=nova_cloud.clouds_yaml)
    result = subprocess.run([nova_cloud.venv.python, '-c', script], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    listed = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted([b, nova_cloud.host, 'up'] for b in BINARIES) == [
        row for row in listed if row[0] in BINARIES]


def test_sigstop_reaches_the_conductor_that_consumes(nova_cloud,
                                                     nova_transport):
    """signal() stops the process that consumes conductor.HOST (a worker
    its master forked): a ping times out until SIGCONT."""
    conductor = nova_cloud.processes['nova-conductor']
    conductor.signal(signal.SIGSTOP)
    try:
        with pytest.raises(messaging.MessagingTimeout):
            _ping(nova_transport, nova_cloud, 'conductor', 'stopped',
                  timeout=3)
    finally:
        conductor.signal(signal.SIGCONT)
    assert _ping(nova_transport, nova_cloud, 'conductor', 'again') == {
        'service': 'conductor', 'arg': 'again'}


def test_restart_after_kill_9(nova_cloud, nova_transport):
    compute = nova_cloud.processes['nova-compute']
    compute.signal(signal.SIGKILL)
    assert compute.popen.wait(timeout=30) == -signal.SIGKILL
    restarted = nova_cloud.restart('nova-compute')
    assert restarted.pid != compute.pid
    nova_cloud.wait_for_queue_consumers('nova-compute')
    assert _ping(nova_transport, nova_cloud, 'compute', 'back') == {
        'service': 'compute', 'arg': 'back'}


def test_a_service_that_dies_names_itself(nova_cloud):
    """A wait on a dead process fails at once, naming it and its log."""
    process = nova_cloud._spawn('doomed', ['/bin/false'])
    nova_cloud.processes['doomed'] = process
    try:
        with pytest.raises(nl_nova_cloud.NovaCloudError,
                           match='doomed exited 1 .*doomed.log'):
            nova_cloud._wait('nothing', lambda: False, ('doomed',))
    finally:
        del nova_cloud.processes['doomed']
        process.stop()


def test_describe_masks_the_broker_password(nova_cloud):
    described = nova_cloud.describe()
    password = nova_cloud.transport_url.split(':')[2].split('@')[0]
    assert password and password not in json.dumps(described)
    assert described['transport_url'].endswith('/' + nova_cloud.vhost)
    assert ':***@' in described['transport_url']
    # Every process of the cloud is alive and counted.
    rss = nova_cloud.rss_bytes()
    assert set(rss) == {'placement-api', 'nova-api'} | set(BINARIES)
    assert all(value > 20 * 2 ** 20 for value in rss.values()), rss
