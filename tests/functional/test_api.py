"""nova-lite-api over real HTTP, in front of real daemons on a real broker:
conductor, scheduler, two computes and the API, each its own process."""

import contextlib
import json
import signal
import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_lite import baserpc
from nova_lite import concurrency
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite import rpc
from nova_lite.testing import api
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import services as nl_services
from nova_lite.testing import waiters

SERVERS = '/v2.1/servers'
# Operations of 1 s: a reboot surely still holds its server when a
# concurrent live migration asks for it.
OPERATION_SECONDS = 1.0


class Deployment:
    def __init__(self, conf_fixture, factory, db, port):
        self.conf_fixture = conf_fixture
        self.factory = factory
        self.db = db
        self.port = port
        self.url = 'http://127.0.0.1:%d' % port
        self.admin = api.APIClient(self.url, token='admin:admin')
        self.daemons = {}

    def client(self, token):
        return api.APIClient(self.url, token=token)

    def log(self, name):
        return self.daemons[name].log_text()

    def start(self, name, binary, host, extra=None):
        """Start (or start again) daemon ``name``; it is not waited for."""
        self.daemons[name] = self.factory.start_daemon(binary, host,
                                                       extra=extra)
        return self.daemons[name]


def _wait_up(db, daemon):
    try:
        waiters.wait_for_service(db, daemon.host, daemon.binary)
    except waiters.WaitTimeout:
        pytest.fail('%s never came up; its log:\n%s' % (
            daemon.binary, daemon.log_text()[-3000:]))


@contextlib.contextmanager
def api_deployment(rabbit, plan, api_host='api1', overrides=None):
    """``plan`` (``{name: (binary, host, extra)}``) and nova-lite-api
    (``api``, noauth2) as daemons, up and answering; a config of its own,
    so that the function-scoped fixtures of other tests keep the global
    one."""
    port = api.free_port()
    with nl_fixtures.ConfFixture(
            conf=cfg.ConfigOpts(), transport_url=rabbit.url,
            overrides=overrides) as conf_fixture, \
            nl_services.ServiceFactory(conf_fixture) as factory:
        db = db_api.API(conf_fixture.conf)
        migration.db_sync(db)
        env = Deployment(conf_fixture, factory, db, port)
        plan = dict(plan, api=('nova-lite-api', api_host, {'api': {
            'host': '127.0.0.1', 'port': port, 'auth_strategy': 'noauth2'}}))
        for name, (binary, host, extra) in plan.items():
            env.start(name, binary, host, extra=extra)
        for daemon in env.daemons.values():
            _wait_up(db, daemon)
        api.wait_for_api(env.admin)
        yield env
        db.dispose()


@pytest.fixture(scope='module')
def deployment(rabbit):
    """One deployment for the module."""
    with api_deployment(rabbit, {
            'conductor': ('nova-lite-conductor', 'ctl1', None),
            'scheduler': ('nova-lite-scheduler', 'ctl1', None),
            'compute1': ('nova-lite-compute', 'cpu1', None),
            'compute2': ('nova-lite-compute', 'cpu2', None)},
            overrides={'fake_driver': {
                'operation_seconds': OPERATION_SECONDS}}) as env:
        yield env


def _create(client, name, flavor='1'):
    resp = client.post(SERVERS, {'server': {
        'name': name, 'imageRef': 'cirros', 'flavorRef': flavor}})
    assert resp.status == 202, resp
    return resp


def _active(env, name):
    server_id = _create(env.admin, name).json['server']['id']
    return api.wait_for_server(env.admin, server_id, 'ACTIVE')


def _action(client, server_id, body):
    return client.post('%s/%s/action' % (SERVERS, server_id), body)


LIVE = {'os-migrateLive': {'host': None, 'block_migration': False,
                           'disk_over_commit': False}}
REBOOT = {'reboot': {'type': 'SOFT'}}


def test_create_show_list_reboot_migrate_delete(deployment):
    env = deployment
    created = _create(env.admin, 'life')
    server_id = created.json['server']['id']
    assert created.headers['location'].endswith('/v2.1/servers/' + server_id)
    # Recorded before the cast: a GET right after the POST finds it.
    shown = env.admin.get('%s/%s' % (SERVERS, server_id))
    assert shown.status == 200
    assert shown.json['server']['status'] in ('BUILD', 'ACTIVE')

    server = api.wait_for_server(env.admin, server_id, 'ACTIVE')
    assert server['name'] == 'life'
    assert server['flavor']['id'] == '1'
    assert server['image']['id'] == 'cirros'
    assert (server['tenant_id'], server['user_id']) == ('admin', 'admin')
    assert server['OS-EXT-SRV-ATTR:host'] in ('cpu1', 'cpu2')
    assert server['OS-EXT-STS:vm_state'] == 'active'
    assert server['hostId']
    listed = env.admin.get(SERVERS).json['servers']
    assert {'id': server_id, 'name': 'life'} in [
        {'id': s['id'], 'name': s['name']} for s in listed]
    detail = env.admin.get(SERVERS + '/detail').json['servers']
    assert server_id in [s['id'] for s in detail]

    assert _action(env.admin, server_id, REBOOT).status == 202
    assert env.admin.get('%s/%s' % (SERVERS, server_id)).json[
        'server']['status'] == 'REBOOT'
    api.wait_for_server(env.admin, server_id, 'ACTIVE')

    source = server['OS-EXT-SRV-ATTR:host']
    other = 'cpu2' if source == 'cpu1' else 'cpu1'
    live = {'os-migrateLive': dict(LIVE['os-migrateLive'], host=other)}
    assert _action(env.admin, server_id, live).status == 202
    migrated = waiters.wait_for(
        lambda: (lambda s: s['OS-EXT-SRV-ATTR:host'] == other and
                 s['OS-EXT-STS:task_state'] is None and s)(
            env.admin.get('%s/%s' % (SERVERS, server_id)).json['server']),
        timeout=30, what='the live migration to %s' % other)
    assert migrated['status'] == 'ACTIVE'

    deleted = env.admin.delete('%s/%s' % (SERVERS, server_id))
    assert deleted.status == 204 and deleted.body == ''
    api.wait_for_gone(env.admin, server_id)
    assert server_id not in [s['id'] for s in
                             env.admin.get(SERVERS).json['servers']]
    gone = env.admin.get(SERVERS + '?deleted=true').json['servers']
    assert server_id in [s['id'] for s in gone]


def test_request_id_on_every_response_and_in_every_daemons_log(deployment):
    env = deployment
    for resp in (env.admin.get('/'), env.client(None).get(SERVERS),
                 env.admin.get(SERVERS + '/nope')):
        request_id = resp.headers['x-openstack-request-id']
        assert request_id.startswith('req-')
        assert resp.headers['x-compute-request-id'] == request_id
    created = _create(env.admin, 'traced')
    request_id = created.headers['x-openstack-request-id']
    api.wait_for_server(env.admin, created.json['server']['id'], 'ACTIVE')
    for name in ('api', 'conductor', 'scheduler'):
        waiters.wait_for(lambda: request_id in env.log(name), timeout=10,
                         what='%s in the %s log' % (request_id, name))
    waiters.wait_for(
        lambda: request_id in env.log('compute1') + env.log('compute2'),
        timeout=10, what='%s in a compute log' % request_id)
    line = [text for text in env.log('conductor').splitlines()
            if request_id in text and 'Building instance' in text]
    assert line, env.log('conductor')[-2000:]


def test_a_reboot_racing_a_live_migration_one_202_one_409(deployment):
    env = deployment
    server_id = _active(env, 'racer')['id']
    bodies = [REBOOT, LIVE]
    results = concurrency.map_concurrently(
        lambda body: _action(env.admin, server_id, body), bodies, 2)
    statuses = sorted(resp.status for resp in results)
    assert statuses == [202, 409], results
    refused = [resp for resp in results if resp.status == 409][0]
    assert list(refused.json) == ['conflictingRequest']
    assert refused.json['conflictingRequest']['code'] == 409
    # A third while the winner runs: refused too, and nothing changes.
    assert env.admin.delete('%s/%s' % (SERVERS, server_id)).status == 409
    api.wait_for_server(env.admin, server_id, 'ACTIVE')
    assert env.admin.delete('%s/%s' % (SERVERS, server_id)).status == 204


def test_faults_401_403_400_404_405_406_413(deployment):
    env = deployment
    member = env.client('alice:project-a')
    checks = [
        (env.client(None).get(SERVERS), 401, 'unauthorized'),
        (member.get('/v2.1/os-services'), 403, 'forbidden'),
        (member.get('/v2.1/os-hypervisors/detail'), 403, 'forbidden'),
        (env.admin.post(SERVERS, raw=b'{"server": '), 400, 'badRequest'),
        (env.admin.post(SERVERS, {'server': {'name': 'x'}}), 400,
         'badRequest'),
        (env.admin.post(SERVERS, {'server': {
            'name': 'x', 'imageRef': 'i', 'flavorRef': '99'}}), 400,
         'badRequest'),
        (env.admin.get(SERVERS + '/no-such-server'), 404, 'itemNotFound'),
        (env.admin.delete(SERVERS + '/no-such-server'), 404,
         'itemNotFound'),
        (_action(env.admin, 'no-such-server', REBOOT), 404, 'itemNotFound'),
        (env.admin.put(SERVERS), 405, 'badMethod'),
        (env.admin.get(SERVERS, headers={
            'X-OpenStack-Nova-API-Version': '2.60'}), 406, 'computeFault'),
        (env.admin.post(SERVERS, raw=b'x' * 115000), 413, 'overLimit'),
    ]
    for resp, status, name in checks:
        assert resp.status == status, resp
        assert resp.headers['content-type'].startswith('application/json')
        assert list(resp.json) == [name], resp
        assert resp.json[name]['code'] == status
        assert 'Traceback' not in resp.body
    # A member owns its servers, and may not live-migrate them.
    mine = _create(member, 'alices').json['server']['id']
    assert member.get('%s/%s' % (SERVERS, mine)).status == 200
    assert _action(member, mine, LIVE).status == 403
    assert env.client('bob:project-b').get(
        '%s/%s' % (SERVERS, mine)).status == 404
    shown = member.get('%s/%s' % (SERVERS, mine)).json['server']
    assert not [key for key in shown if key.startswith('OS-EXT-S')]
    assert [s['id'] for s in member.get(SERVERS).json['servers']] == [mine]
    api.wait_for_server(env.admin, mine, 'ACTIVE')
    assert _action(member, mine, {'reboot': {'type': 'SIDEWAYS'}}
                   ).status == 400
    assert _action(member, mine, {'reboot': {}, 'x': 1}).status == 400
    assert member.delete('%s/%s' % (SERVERS, mine)).status == 204


def test_versions_flavors_services_hypervisors(deployment):
    env = deployment
    root = env.client(None).get('/').json
    assert [(v['id'], v['version'], v['min_version'])
            for v in root['versions']] == [('v2.1', '2.1', '2.1')]
    assert env.client(None).get('/v2.1/').json['version']['id'] == 'v2.1'
    flavors = env.admin.get('/v2.1/flavors/detail').json['flavors']
    assert [(f['id'], f['name'], f['vcpus'], f['ram'], f['disk'])
            for f in flavors][:5] == [
        ('1', 'm1.tiny', 1, 512, 1), ('2', 'm1.small', 1, 2048, 20),
        ('3', 'm1.medium', 2, 4096, 40), ('4', 'm1.large', 4, 8192, 80),
        ('5', 'm1.xlarge', 8, 16384, 160)]
    services = env.admin.get('/v2.1/os-services').json['services']
    rows = {(s['host'], s['binary']): s for s in services}
    for key in (('api1', 'nova-lite-api'), ('ctl1', 'nova-lite-conductor'),
                ('cpu1', 'nova-lite-compute')):
        assert rows[key]['state'] == 'up', rows
        assert rows[key]['status'] == 'enabled'
    cpu1 = rows[('cpu1', 'nova-lite-compute')]
    disabled = env.admin.put('/v2.1/os-services/%d' % cpu1['id'], {
        'status': 'disabled', 'disabled_reason': 'maintenance'})
    assert disabled.status == 200, disabled
    assert (disabled.json['service']['status'],
            disabled.json['service']['disabled_reason']) == (
        'disabled', 'maintenance')
    enabled = env.admin.put('/v2.1/os-services/enable', {
        'host': 'cpu1', 'binary': 'nova-lite-compute'})
    assert enabled.json == {'service': {
        'host': 'cpu1', 'binary': 'nova-lite-compute', 'status': 'enabled'}}
    hypervisors = env.admin.get('/v2.1/os-hypervisors/detail').json[
        'hypervisors']
    assert sorted(h['hypervisor_hostname'] for h in hypervisors) == [
        'cpu1', 'cpu2']
    assert all(h['vcpus'] >= 1 and h['memory_mb'] > 0 and h['state'] == 'up'
               for h in hypervisors)


def test_the_api_answers_the_inflight_probe(deployment, conf_fixture):
    env = deployment
    conf = conf_fixture.conf
    rpc.init(conf)
    try:
        reply = baserpc.BaseRPCAPI(conf, 'api').ping(
            context.get_admin_context(), 'hello', host='api1')
    finally:
        rpc.cleanup()
    assert (reply['host'], reply['arg']) == ('api1', 'hello')
    assert env.daemons['api'].popen.poll() is None


def test_python_novaclient_creates_lists_reboots_deletes(deployment):
    from keystoneauth1 import session as ks_session
    from keystoneauth1 import token_endpoint
    from novaclient import client as nova_client
    from novaclient import exceptions as nova_exceptions

    env = deployment
    # keystoneauth's token-endpoint ("admin_token") plugin: a fixed
    # endpoint and a fixed token, the noauth2 "user:project".
    auth = token_endpoint.Token(env.url + '/v2.1', 'admin:admin')
    nova = nova_client.Client('2.1', session=ks_session.Session(auth=auth))
    flavor = nova.flavors.find(name='m1.small')
    server = nova.servers.create('novaclient-vm', image='cirros',
                                 flavor=flavor)

    def status():
        return nova.servers.get(server.id).status
    waiters.wait_for(lambda: status() == 'ACTIVE', timeout=30,
                     what='novaclient server ACTIVE')
    assert server.id in [s.id for s in nova.servers.list()]
    found = nova.servers.get(server.id)
    assert (found.name, found.flavor['id']) == ('novaclient-vm', '2')
    nova.servers.reboot(server)
    waiters.wait_for(lambda: status() == 'ACTIVE' and getattr(
        nova.servers.get(server.id), 'OS-EXT-STS:task_state') is None,
        timeout=30, what='reboot to finish')
    nova.servers.delete(server)

    def gone():
        try:
            nova.servers.get(server.id)
        except nova_exceptions.NotFound:
            return True
        return False
    waiters.wait_for(gone, timeout=30, what='novaclient server deleted')
    with pytest.raises(nova_exceptions.Forbidden):
        nova_client.Client('2.1', session=ks_session.Session(
            auth=token_endpoint.Token(env.url + '/v2.1', 'carol:c'))
        ).services.list()


def test_no_secret_in_api_log(deployment, rabbit):
    text = deployment.log('api')
    assert 'Using message broker rabbit://%s:***@' % rabbit.name in text
    assert rabbit.password not in text


def test_sigterm_stops_the_api_and_a_taken_port_is_one_line(
        factory, conf_fixture, db):
    port = api.free_port()
    extra = {'api': {'host': '127.0.0.1', 'port': port,
                     'auth_strategy': 'noauth2'}}
    first = factory.start_daemon('nova-lite-api', 'api-a', extra=extra)
    _wait_up(db, first)
    api.wait_for_api(api.APIClient('http://127.0.0.1:%d' % port))
    path = conf_fixture.write_config_file(
        'api-b.conf', extra=dict(extra, DEFAULT={'host': 'api-b'}))
    second = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.api', '--config-file', path],
        capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith('nova-lite-api: error: Cannot listen on '
                           '127.0.0.1:%d: ' % port), second.stderr
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, first.log_text()[-2000:]
    assert 'Stopped nova-lite-api' in first.log_text()
    rows = json.loads(subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file',
         conf_fixture.write_config_file('manage.conf'), 'service', 'list',
         '--json'], capture_output=True, text=True, timeout=60).stdout)
    assert [r['topic'] for r in rows if r['host'] == 'api-a'] == ['api']
