"""The nova-lite-api WSGI app with webob requests (fake:// transport;
conductor, scheduler and computes in this process where a test builds)."""

import io
import json
import uuid

import pytest
import webob
from oslo_config import cfg

from nova_lite.api import auth
from nova_lite.api import policies
from nova_lite.api import wsgi
from nova_lite import config
from nova_lite import exception
from nova_lite.testing import waiters

ADMIN = 'admin:admin'
MEMBER = 'alice:project-a'


def _request(app, method, path, token=ADMIN, body=None, raw=None,
             headers=None):
    req = webob.Request.blank(path, method=method, headers=headers or {})
    if token:
        req.headers['X-Auth-Token'] = token
    if body is not None:
        raw = json.dumps(body).encode()
    if raw is not None:
        req.body = raw
        req.content_type = 'application/json'
    return req.get_response(app)


class Recorder:
    """A conductor stand-in: records each call and its context."""

    def __init__(self, error=None):
        self.calls = []
        self.error = error

    def __getattr__(self, name):
        def call(ctxt, *args, **kwargs):
            self.calls.append((name, ctxt, args, kwargs))
            if self.error is not None:
                raise self.error
        return call


@pytest.fixture
def api_conf(conf):
    conf.set_override('auth_strategy', 'noauth2', group='api')
    return conf


@pytest.fixture
def conductor():
    return Recorder()


@pytest.fixture
def app(api_conf, db, conductor):
    return wsgi.build_app(api_conf, db, conductor=conductor)


@pytest.fixture
def cloud_app(api_conf, db, factory):
    """The app in front of real in-process services on fake://."""
    factory.start_service('conductor', host='c1')
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')
    factory.start_service('compute', host='h2')
    return wsgi.build_app(api_conf, db)


def _create(app, name='vm', flavor='1', token=ADMIN):
    resp = _request(app, 'POST', '/v2.1/servers', token=token, body={
        'server': {'name': name, 'imageRef': 'cirros', 'flavorRef': flavor}})
    assert resp.status_int == 202, resp.text
    return resp.json['server']['id']


def _show(app, server_id, token=ADMIN):
    return _request(app, 'GET', '/v2.1/servers/%s' % server_id, token=token)


def test_version_discovery_needs_no_token(app):
    for path in ('/', '/v2.1', '/v2.1/'):
        resp = _request(app, 'GET', path, token=None)
        assert resp.status_int == 200, path
    versions = _request(app, 'GET', '/', token=None).json['versions']
    assert [(v['id'], v['min_version'], v['version'], v['status'])
            for v in versions] == [('v2.1', '2.1', '2.1', 'CURRENT')]
    version = _request(app, 'GET', '/v2.1', token=None).json['version']
    assert version['links'][0]['href'] == 'http://localhost/v2.1/'


def test_no_token_is_401_as_json_with_request_ids(app):
    resp = _request(app, 'GET', '/v2.1/servers', token=None)
    assert resp.status_int == 401
    assert resp.json == {'unauthorized': {
        'code': 401, 'message': 'Authentication required'}}
    request_id = resp.headers['x-openstack-request-id']
    assert request_id.startswith('req-')
    assert resp.headers['x-compute-request-id'] == request_id


def test_build_through_the_conductor_from_build_to_active(cloud_app, db):
    created = _request(cloud_app, 'POST', '/v2.1/servers', body={
        'server': {'name': 'web', 'imageRef': 'http://glance/images/cirros',
                   'flavorRef': 'http://nova/flavors/2', 'min_count': 1,
                   'max_count': '1', 'networks': 'auto'}})
    assert created.status_int == 202, created.text
    server_id = created.json['server']['id']
    assert created.headers['Location'] == (
        'http://localhost/v2.1/servers/%s' % server_id)
    # Recorded before the cast, with its flavor snapshot.
    instance = db.instance_get(server_id)
    assert (instance['display_name'], instance['image_ref'],
            instance['flavorid'], instance['memory_mb'],
            instance['project_id']) == ('web', 'cirros', '2', 2048, 'admin')
    assert _show(cloud_app, server_id).json['server']['status'] in (
        'BUILD', 'ACTIVE')
    server = waiters.wait_for(
        lambda: (lambda s: s['status'] == 'ACTIVE' and s)(
            _show(cloud_app, server_id).json['server']), timeout=10,
        what='the server to be ACTIVE')
    assert server['OS-EXT-SRV-ATTR:host'] in ('h1', 'h2')
    assert server['OS-EXT-STS:power_state'] == 1
    assert server['flavor'] == {'id': '2', 'links': [{
        'rel': 'bookmark', 'href': 'http://localhost/flavors/2'}]}
    [work] = db.work_get_all(instance_uuid=server_id)
    assert (work['conductor_host'], work['takeovers'], work['step']) == (
        'c1', 0, 'done')
    hypervisors = {h['hypervisor_hostname']: h for h in _request(
        cloud_app, 'GET', '/v2.1/os-hypervisors/detail').json['hypervisors']}
    used = hypervisors[server['OS-EXT-SRV-ATTR:host']]
    assert (used['running_vms'], used['memory_mb_used'], used['vcpus_used'],
            used['local_gb_used']) == (1, 2048, 1, 20)
    assert used['hypervisor_type'] == 'fake' and used['vcpus'] >= 1


def test_members_see_their_own_servers_without_admin_attributes(app):
    mine = _create(app, 'mine', token=MEMBER)
    theirs = _create(app, 'theirs', token='bob:project-b')
    listed = _request(app, 'GET', '/v2.1/servers', token=MEMBER).json
    assert [s['id'] for s in listed['servers']] == [mine]
    server = _show(app, mine, token=MEMBER).json['server']
    assert server['status'] == 'BUILD'
    assert not [key for key in server if key.startswith('OS-EXT-S')]
    # Another project's server does not exist for a member (Nova's
    # project-only queries), whatever the policy says.
    assert _show(app, theirs, token=MEMBER).status_int == 404
    admin = _show(app, mine).json['server']
    assert admin['OS-EXT-STS:task_state'] == 'scheduling'
    assert admin['OS-EXT-STS:vm_state'] == 'building'
    assert 'OS-EXT-SRV-ATTR:host' in admin
    everyone = _request(app, 'GET', '/v2.1/servers?all_tenants=1').json
    assert {s['id'] for s in everyone['servers']} == {mine, theirs}
    assert _request(app, 'GET', '/v2.1/servers?all_tenants=1',
                    token=MEMBER).status_int == 403


def test_list_pages_by_limit_and_marker_newest_first(app):
    ids = [_create(app, 'vm%d' % n) for n in range(5)]
    first = _request(app, 'GET', '/v2.1/servers/detail?limit=2').json
    assert [s['id'] for s in first['servers']] == ids[::-1][:2]
    next_href = first['servers_links'][0]['href']
    second = _request(app, 'GET', next_href[len('http://localhost'):]).json
    assert [s['id'] for s in second['servers']] == ids[::-1][2:4]
    named = _request(app, 'GET', '/v2.1/servers?name=vm[13]').json
    assert {s['id'] for s in named['servers']} == {ids[1], ids[3]}
    assert _request(app, 'GET', '/v2.1/servers?marker=nope').status_int == 400
    assert _request(app, 'GET', '/v2.1/servers?limit=-1').status_int == 400


@pytest.mark.parametrize('body', [
    b'{"server": ', b'[1, 2]', b'\xff', b'',
    {'server': {'name': 'x', 'imageRef': 'i'}},
    {'server': {'name': ' ', 'imageRef': 'i', 'flavorRef': '1'}},
    {'server': {'name': 'x', 'imageRef': 'i', 'flavorRef': '99'}},
    {'server': {'name': 'x', 'imageRef': 'i', 'flavorRef': '1',
                'max_count': 3}},
    {'server': {'name': 'x', 'imageRef': 'i', 'flavorRef': '1',
                'bogus': 1}},
    {'server': 'x'}, {'servers': {}},
])
def test_malformed_create_is_400(app, db, body):
    kwargs = {'raw': body} if isinstance(body, bytes) else {'body': body}
    resp = _request(app, 'POST', '/v2.1/servers', **kwargs)
    assert resp.status_int == 400, resp.text
    assert list(resp.json) == ['badRequest']
    assert db.instance_get_all() == []


@pytest.mark.parametrize('body', [
    {}, {'reboot': {'type': 'SIDEWAYS'}}, {'reboot': {}},
    {'reboot': {'type': 'SOFT'}, 'os-migrateLive': {}},
    {'os-migrateLive': {'block_migration': 'maybe'}},
    {'os-migrateLive': {'host': 7}}, {'os-migrateLive': {'force': True}},
    {'createImage': {'name': 'snap'}},
])
def test_malformed_action_is_400(app, conductor, body):
    server_id = _create(app)
    resp = _request(app, 'POST', '/v2.1/servers/%s/action' % server_id,
                    body=body)
    assert resp.status_int == 400, resp.text
    assert [name for name, *_ in conductor.calls] == ['build_instance']


def test_actions_call_the_conductor_with_the_requests_context(app,
                                                              conductor):
    server_id = _create(app)
    incoming = 'req-%s' % uuid.uuid4()
    resp = _request(app, 'POST', '/v2.1/servers/%s/action' % server_id,
                    body={'os-migrateLive': {
                        'host': 'h2', 'block_migration': 'False',
                        'disk_over_commit': False}},
                    headers={'X-OpenStack-Request-ID': incoming})
    assert resp.status_int == 202 and resp.body == b''
    name, ctxt, args, kwargs = conductor.calls[-1]
    assert (name, args, kwargs) == ('migrate_instance', (server_id,),
                                    {'dest': 'h2'})
    assert ctxt.request_id == resp.headers['x-openstack-request-id']
    assert ctxt.global_request_id == incoming
    assert (ctxt.user_id, ctxt.project_id) == ('admin', 'admin')
    build = conductor.calls[0]
    assert build[0] == 'build_instance' and 'work_id' in build[3]
    assert _request(app, 'DELETE', '/v2.1/servers/%s' % server_id
                    ).status_int == 204
    assert conductor.calls[-1][0] == 'destroy_instance'


@pytest.mark.parametrize('error,status,name', [
    (exception.InstanceActionInProgress(instance_uuid='u', action='reboot',
                                        task_state='migrating'), 409,
     'conflictingRequest'),
    (exception.InvalidState(instance_uuid='u', state='error',
                            action='reboot'), 409, 'conflictingRequest'),
    (exception.NoValidHost(reason='none'), 400, 'badRequest'),
    (exception.ComputeHostNotFound(host='h9'), 400, 'badRequest'),
    (RuntimeError('secret detail'), 500, 'computeFault'),
])
def test_conductor_errors_map_to_faults(api_conf, db, error, status, name):
    app = wsgi.build_app(api_conf, db, conductor=Recorder())
    server_id = _create(app)
    failing = wsgi.build_app(api_conf, db, conductor=Recorder(error))
    resp = _request(failing, 'POST', '/v2.1/servers/%s/action' % server_id,
                    body={'reboot': {'type': 'HARD'}})
    assert resp.status_int == status
    assert list(resp.json) == [name]
    assert 'secret detail' not in resp.text
    assert 'Traceback' not in resp.text


def test_the_conductors_guard_gives_409(cloud_app, db):
    server_id = _create(cloud_app)
    waiters.wait_for(lambda: db.instance_get(server_id)['vm_state'] ==
                     'active' and db.instance_get(server_id)['task_state']
                     is None, timeout=10, what='the build')
    db.instance_update(server_id, task_state='migrating')
    resp = _request(cloud_app, 'POST', '/v2.1/servers/%s/action' % server_id,
                    body={'reboot': {'type': 'SOFT'}})
    assert resp.status_int == 409
    assert 'already migrating' in resp.json['conflictingRequest']['message']
    assert _show(cloud_app, server_id).json['server']['status'] == (
        'MIGRATING')
    assert _request(cloud_app, 'DELETE', '/v2.1/servers/%s' % server_id
                    ).status_int == 409


def test_a_build_not_cast_is_still_recorded(api_conf, db):
    app = wsgi.build_app(api_conf, db, conductor=Recorder(
        exception.VersionCapTooLow(method='build_instance', topic='c',
                                   needed='1.2', cap='1.1')))
    server_id = _create(app)
    [work] = db.work_get_all(instance_uuid=server_id)
    assert (work['conductor_host'], work['step']) == ('-', 'scheduling')


def test_unknown_server_path_and_method(app):
    for method, path in (('GET', '/v2.1/servers/nope'),
                         ('DELETE', '/v2.1/servers/nope'),
                         ('GET', '/v2.1/nothing-here')):
        resp = _request(app, method, path)
        assert resp.status_int == 404
        assert list(resp.json) == ['itemNotFound']
    resp = _request(app, 'POST', '/v2.1/servers/nope/action',
                    body={'reboot': {'type': 'SOFT'}})
    assert resp.status_int == 404
    assert _request(app, 'PATCH', '/v2.1/servers').status_int == 405


def test_project_id_in_the_path(app):
    server_id = _create(app)
    assert _request(app, 'GET', '/v2.1/admin/servers/%s' % server_id
                    ).status_int == 200
    resp = _request(app, 'GET', '/v2.1/other/servers')
    assert resp.status_int == 400


def test_body_over_the_limit_is_413(api_conf, db):
    api_conf.set_override('max_request_body_size', 100, group='api')
    app = wsgi.build_app(api_conf, db, conductor=Recorder())
    resp = _request(app, 'POST', '/v2.1/servers', raw=b'x' * 101)
    assert resp.status_int == 413
    assert list(resp.json) == ['overLimit']
    # A chunked body (no Content-Length) is cut off at the limit too.
    req = webob.Request.blank('/v2.1/servers', method='POST', headers={
        'X-Auth-Token': ADMIN, 'Transfer-Encoding': 'chunked'})
    req.body_file_raw = io.BytesIO(b'y' * 500)
    req.environ.pop('CONTENT_LENGTH', None)
    req.is_body_readable = True
    assert req.get_response(app).status_int == 413


@pytest.mark.parametrize('headers,status', [
    ({'X-OpenStack-Nova-API-Version': '2.1'}, 200),
    ({'OpenStack-API-Version': 'compute latest'}, 200),
    ({'OpenStack-API-Version': 'compute 2.2'}, 406),
    ({'X-OpenStack-Nova-API-Version': '3.0'}, 406),
    ({'X-OpenStack-Nova-API-Version': 'two'}, 400),
])
def test_only_microversion_2_1(app, headers, status):
    resp = _request(app, 'GET', '/v2.1/flavors', headers=headers)
    assert resp.status_int == status
    assert resp.headers['OpenStack-API-Version'] == 'compute 2.1'
    assert resp.headers['X-OpenStack-Nova-API-Version'] == '2.1'


def test_services_list_and_both_update_forms_are_admin_only(app, db):
    row = db.service_register('h1', 'nova-lite-compute', 'compute', '1.2')
    db.service_register('a1', 'nova-lite-api', 'api', '1.0')
    listed = _request(app, 'GET', '/v2.1/os-services').json['services']
    assert [(s['host'], s['zone'], s['status'], s['state']) for s in listed
            ] == [('h1', 'nova', 'enabled', 'up'),
                  ('a1', 'internal', 'enabled', 'up')]
    assert _request(app, 'GET', '/v2.1/os-services', token=MEMBER
                    ).status_int == 403
    resp = _request(app, 'PUT', '/v2.1/os-services/disable-log-reason',
                    body={'host': 'h1', 'binary': 'nova-lite-compute',
                          'disabled_reason': 'disk'})
    assert resp.json == {'service': {
        'host': 'h1', 'binary': 'nova-lite-compute', 'status': 'disabled',
        'disabled_reason': 'disk'}}
    resp = _request(app, 'PUT', '/v2.1/os-services/%d' % row['id'],
                    body={'status': 'enabled'})
    assert resp.json['service']['status'] == 'enabled'
    assert not db.service_get('h1', 'nova-lite-compute')['disabled']
    assert _request(app, 'PUT', '/v2.1/os-services/999', body={
        'status': 'enabled'}).status_int == 404
    assert _request(app, 'PUT', '/v2.1/os-services/%d' % row['id'], body={
        'status': 'enabled', 'disabled_reason': 'x'}).status_int == 400
    assert _request(app, 'PUT', '/v2.1/os-services/enable', token=MEMBER,
                    body={'host': 'h1', 'binary': 'nova-lite-compute'}
                    ).status_int == 403


def test_a_policy_file_overrides_the_defaults(api_conf, db, tmp_path):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text('"os_compute_api:os-services:list": "@"\n'
                           '"os_compute_api:servers:create": "!"\n')
    conf_file = tmp_path / 'policy.conf'
    conf_file.write_text('[oslo_policy]\npolicy_file = %s\n' % policy_file)
    policy_conf = cfg.ConfigOpts()
    policy_conf(['--config-file', str(conf_file)])
    app = wsgi.build_app(api_conf, db, conductor=Recorder(),
                         policy=policies.Policy(policy_conf))
    assert _request(app, 'GET', '/v2.1/os-services', token=MEMBER
                    ).status_int == 200
    resp = _request(app, 'POST', '/v2.1/servers', body={'server': {
        'name': 'x', 'imageRef': 'i', 'flavorRef': '1'}})
    assert resp.status_int == 403
    assert resp.json['forbidden']['message'] == (
        "Policy doesn't allow os_compute_api:servers:create to be "
        "performed.")


def test_keystone_strategy_puts_auth_token_in_front(db, tmp_path):
    # A config of its own: auth_token registers the options of the auth
    # plugin it is given, and those must not outlive this test.
    def app_for(text):
        path = tmp_path / 'keystone.conf'
        path.write_text('[api]\nauth_strategy = keystone\n' + text)
        kconf = cfg.ConfigOpts()
        config.parse_args(['--config-file', str(path)], conf=kconf,
                          default_config_files=[])
        return wsgi.build_app(kconf, db, conductor=Recorder())

    with pytest.raises(exception.ConfigError) as error:
        app_for('')
    assert 'needs [keystone_authtoken] auth_type' in str(error.value)
    # Where a client gets a token; nothing is asked of Keystone for a
    # request without one.
    app = app_for('[keystone_authtoken]\n'
                  'www_authenticate_uri = http://keystone:5000/\n'
                  'auth_type = password\n'
                  'auth_url = http://keystone:5000/v3\n')
    assert _request(app, 'GET', '/', token=None).status_int == 200
    resp = _request(app, 'GET', '/v2.1/servers', token=None)
    assert resp.status_int == 401
    assert resp.headers['WWW-Authenticate'] == (
        'Keystone uri="http://keystone:5000/"')
    assert resp.headers['x-openstack-request-id'].startswith('req-')


def test_keystone_context_from_identity_headers(api_conf, db):
    seen = []

    @webob.dec.wsgify
    def inner(req):
        seen.append(req.environ['nova_lite.context'])
        return webob.Response()
    app = auth.KeystoneContext(inner)
    req = webob.Request.blank('/', headers={
        'X-Identity-Status': 'Confirmed', 'X-User-Id': 'u1',
        'X-Project-Id': 'p1', 'X-Roles': 'member, admin'})
    assert req.get_response(app).status_int == 200
    assert (seen[0].user_id, seen[0].project_id, seen[0].roles,
            seen[0].is_admin) == ('u1', 'p1', ['member', 'admin'], True)
    req = webob.Request.blank('/', headers={'X-Identity-Status': 'Invalid'})
    assert req.get_response(app).status_int == 401


def test_flavors_are_novas_defaults(app):
    flavors = _request(app, 'GET', '/v2.1/flavors', token=MEMBER).json
    assert [(f['id'], f['name']) for f in flavors['flavors']] == [
        ('1', 'm1.tiny'), ('2', 'm1.small'), ('3', 'm1.medium'),
        ('4', 'm1.large'), ('5', 'm1.xlarge')]
    tiny = _request(app, 'GET', '/v2.1/flavors/1').json['flavor']
    assert (tiny['vcpus'], tiny['ram'], tiny['disk']) == (1, 512, 1)
    assert _request(app, 'GET', '/v2.1/flavors/9').status_int == 404
