"""os-volumes and os-volume_attachments with webob requests (SQLite, the
file coordination backend; a lock held by a separate process)."""

import pytest
from oslo_config import cfg

from nova_lite.api import policies
from nova_lite.api import wsgi
from nova_lite import coordination
from nova_lite.testing import locks
from tests.unit.test_api import _request
from tests.unit.test_api import ADMIN
from tests.unit.test_api import MEMBER
from tests.unit.test_api import Recorder

VOLUMES = '/v2.1/os-volumes'
SERVER = '0b5a5c0e-5f38-4c37-9d2a-0d8c1d6a1c01'
OTHER_SERVER = '0b5a5c0e-5f38-4c37-9d2a-0d8c1d6a1c02'
UNKNOWN = '6f1b1c51-1111-4a3e-8e6c-000000000000'


@pytest.fixture
def api_conf(conf):
    conf.set_override('auth_strategy', 'noauth2', group='api')
    return conf


@pytest.fixture
def coordinator(api_conf):
    coord = coordination.Coordinator(api_conf, 'test-api')
    coord.start()
    yield coord
    coord.stop()


@pytest.fixture
def app(api_conf, db, coordinator):
    for uuid in (SERVER, OTHER_SERVER):
        db.instance_create(uuid, host='h1', vm_state='active',
                           power_state='running')
        db.instance_update(uuid, project_id='admin', user_id='admin')
    return wsgi.build_app(api_conf, db, conductor=Recorder(),
                          coordinator=coordinator)


def _attachments(server_id=SERVER):
    return '/v2.1/servers/%s/os-volume_attachments' % server_id


def _create_volume(app, token=ADMIN, **fields):
    body = {'volume': dict({'size': 1}, **fields)}
    resp = _request(app, 'POST', VOLUMES, token=token, body=body)
    assert resp.status_int == 200, resp.text
    return resp.json['volume']


def _attach(app, volume_id, server_id=SERVER, device=None, token=ADMIN):
    body = {'volumeAttachment': {'volumeId': volume_id}}
    if device is not None:
        body['volumeAttachment']['device'] = device
    return _request(app, 'POST', _attachments(server_id), token=token,
                    body=body)


def _fault(resp, status, name):
    assert resp.status_int == status, resp.text
    assert list(resp.json) == [name], resp.text
    message = resp.json[name]['message']
    assert '\n' not in message and 'Traceback' not in message
    return message


def test_create_show_list_delete_in_novas_shapes(app, db):
    volume = _create_volume(app, size='2', display_name='data',
                            display_description='for the db',
                            availability_zone='nova', metadata={},
                            volume_type=None, snapshot_id=None)
    created_at = db.volume_get(volume['id'])['created_at']
    assert volume == {
        'id': volume['id'], 'status': 'available', 'size': 2,
        'availabilityZone': 'nova',
        'createdAt': created_at.strftime('%Y-%m-%dT%H:%M:%S.%f'),
        'displayName': 'data', 'displayDescription': 'for the db',
        'volumeType': None, 'snapshotId': None, 'metadata': {},
        'attachments': [{}]}
    shown = _request(app, 'GET', '%s/%s' % (VOLUMES, volume['id']))
    assert shown.json == {'volume': volume}
    for path in (VOLUMES, VOLUMES + '/detail'):
        assert _request(app, 'GET', path).json == {'volumes': [volume]}
    deleted = _request(app, 'DELETE', '%s/%s' % (VOLUMES, volume['id']))
    assert (deleted.status_int, deleted.body) == (202, b'')
    assert db.volume_get_all() == []
    _fault(_request(app, 'GET', '%s/%s' % (VOLUMES, volume['id'])), 404,
           'itemNotFound')
    _fault(_request(app, 'DELETE', '%s/%s' % (VOLUMES, volume['id'])), 404,
           'itemNotFound')


@pytest.mark.parametrize('body, words', [
    ({}, "'volume' is a required property"),
    ({'volume': {}}, "'size' is a required property"),
    ({'volume': {'size': 1}, 'extra': 1}, 'additional properties'),
    ({'volume': {'size': 1, 'colour': 'red'}}, 'additional properties '
     'are not allowed (colour)'),
    ({'volume': {'size': 0}}, 'size'),
    ({'volume': {'size': -1}}, 'size'),
    ({'volume': {'size': 1.5}}, 'size'),
    ({'volume': {'size': True}}, 'size'),
    ({'volume': {'size': 'ten'}}, 'size'),
    ({'volume': {'size': 2 ** 31}}, 'size'),
    ({'volume': {'size': 1, 'display_name': 7}}, 'display_name'),
    ({'volume': {'size': 1, 'availability_zone': 'az9'}}, "'az9'"),
    ({'volume': {'size': 1, 'volume_type': 'ssd'}}, 'no volume types'),
    ({'volume': {'size': 1, 'metadata': {'a': 'b'}}}, 'no metadata'),
    ({'volume': {'size': 1, 'metadata': 'a'}}, 'metadata'),
    ({'volume': 'big'}, 'volume: expected an object'),
])
def test_malformed_create_is_one_line_400(app, db, body, words):
    resp = _request(app, 'POST', VOLUMES, body=body)
    assert words in _fault(resp, 400, 'badRequest')
    assert db.volume_get_all() == []


def test_a_snapshot_is_404_as_in_nova(app, db):
    resp = _request(app, 'POST', VOLUMES, body={'volume': {
        'size': 1, 'snapshot_id': UNKNOWN}})
    assert _fault(resp, 404, 'itemNotFound') == (
        'Snapshot %s could not be found.' % UNKNOWN)
    assert db.volume_get_all() == []


def test_attach_list_show_detach(app, db):
    first = _create_volume(app)['id']
    second = _create_volume(app)['id']
    attached = _attach(app, first)
    assert attached.status_int == 200, attached.text
    assert attached.json == {'volumeAttachment': {
        'id': first, 'volumeId': first, 'serverId': SERVER,
        'device': '/dev/vdb'}}
    assert _attach(app, second).json['volumeAttachment'][
        'device'] == '/dev/vdc'
    listed = _request(app, 'GET', _attachments()).json['volumeAttachments']
    assert [(a['volumeId'], a['device']) for a in listed] == sorted(
        [(first, '/dev/vdb'), (second, '/dev/vdc')],
        key=lambda pair: [first, second].index(pair[0]))
    shown = _request(app, 'GET', '%s/%s' % (_attachments(), first))
    assert shown.json == attached.json
    volume = _request(app, 'GET', '%s/%s' % (VOLUMES, first)).json['volume']
    assert (volume['status'], volume['attachments']) == (
        'in-use', [attached.json['volumeAttachment']])
    assert db.volume_ids_attached(SERVER) == sorted([first, second])

    detached = _request(app, 'DELETE', '%s/%s' % (_attachments(), first))
    assert (detached.status_int, detached.body) == (202, b'')
    volume = _request(app, 'GET', '%s/%s' % (VOLUMES, first)).json['volume']
    assert (volume['status'], volume['attachments']) == ('available', [{}])
    _fault(_request(app, 'GET', '%s/%s' % (_attachments(), first)), 404,
           'itemNotFound')
    # The freed name is the first free one again.
    assert _attach(app, first).json['volumeAttachment'][
        'device'] == '/dev/vdb'


def test_attach_errors(app, db):
    volume = _create_volume(app)['id']
    other = _create_volume(app)['id']
    assert _attach(app, volume, device='/dev/vdd').status_int == 200
    checks = [
        (_attach(app, other, device='/dev/vdd'), 409, 'conflictingRequest',
         'Device /dev/vdd is already in use on server %s' % SERVER),
        (_attach(app, volume, server_id=OTHER_SERVER), 400, 'badRequest',
         'Cannot attach volume %s: it is in-use, attached to server %s' % (
             volume, SERVER)),
        (_attach(app, other, device='vdb'), 400, 'badRequest',
         "Invalid device 'vdb'"),
        (_attach(app, 'not-a-uuid'), 400, 'badRequest', 'not a uuid'),
        (_attach(app, UNKNOWN), 404, 'itemNotFound',
         'Volume %s could not be found' % UNKNOWN),
        (_attach(app, other, server_id=UNKNOWN), 404, 'itemNotFound',
         'Instance %s could not be found' % UNKNOWN),
        (_request(app, 'POST', _attachments(), body={'volumeAttachment': {
            'volumeId': other, 'tag': 'x'}}), 400, 'badRequest',
         'additional properties are not allowed (tag)'),
        (_request(app, 'POST', _attachments(), body={}), 400, 'badRequest',
         "'volumeAttachment' is a required property"),
        (_request(app, 'DELETE', '%s/%s' % (_attachments(), other)), 404,
         'itemNotFound', 'Volume %s is not attached to server %s' % (
             other, SERVER)),
        (_request(app, 'DELETE', '%s/%s' % (VOLUMES, volume)), 400,
         'badRequest', 'Cannot delete volume %s: it is in-use, attached to '
         'server %s' % (volume, SERVER)),
    ]
    for resp, status, name, words in checks:
        assert words in _fault(resp, status, name)
    assert db.volume_get(other)['status'] == 'available'
    assert db.volume_get(volume)['instance_uuid'] == SERVER


def test_attach_and_detach_refused_while_the_server_has_a_task(app, db):
    volume = _create_volume(app)['id']
    attached = _create_volume(app)['id']
    assert _attach(app, attached).status_int == 200
    db.instance_update(SERVER, task_state='resize_migrating')
    assert 'it is already resize_migrating' in _fault(
        _attach(app, volume), 409, 'conflictingRequest')
    assert 'it is already resize_migrating' in _fault(
        _request(app, 'DELETE', '%s/%s' % (_attachments(), attached)), 409,
        'conflictingRequest')
    assert db.volume_get(volume)['status'] == 'available'
    assert db.volume_get(attached)['instance_uuid'] == SERVER
    db.instance_update(SERVER, task_state=None, vm_state='building')
    assert 'is building' in _fault(_attach(app, volume), 409,
                                   'conflictingRequest')


def test_a_held_lock_is_409_naming_the_server_and_nothing_changes(
        app, db, api_conf):
    volume = _create_volume(app)['id']
    spare = _create_volume(app)['id']
    assert _attach(app, volume).status_int == 200
    names = coordination.lock_names(SERVER, [volume])
    with locks.holder_for(api_conf, names) as holder:
        message = _fault(_request(app, 'DELETE', '%s/%s' % (VOLUMES, volume)),
                         409, 'conflictingRequest')
        # Locked, not in-use: the lock is tried before the state.
        assert message == ('Volume %s is locked: an action on server %s '
                           'holds it; try again when it ends' % (
                               volume, SERVER))
        assert _fault(_request(app, 'DELETE', '%s/%s' % (
            _attachments(), volume)), 409, 'conflictingRequest') == (
            'Instance %s is locked: an action on server %s holds it; try '
            'again when it ends' % (SERVER, SERVER))
        assert 'Instance %s is locked' % SERVER in _fault(
            _attach(app, spare), 409, 'conflictingRequest')
        # Another server's attach does not need these locks.
        assert _attach(app, spare, server_id=OTHER_SERVER).status_int == 200
        assert _request(app, 'DELETE', '%s/%s' % (
            _attachments(OTHER_SERVER), spare)).status_int == 202
        shown = db.volume_get(volume)
        assert (shown['status'], shown['instance_uuid'], shown['device']) == (
            'in-use', SERVER, '/dev/vdb')
        holder.release()
        assert holder.popen.returncode == 0
    assert _request(app, 'DELETE', '%s/%s' % (_attachments(), volume)
                    ).status_int == 202
    assert _request(app, 'DELETE', '%s/%s' % (VOLUMES, volume)
                    ).status_int == 202


def test_without_a_coordinator_a_change_is_503(api_conf, db):
    app = wsgi.build_app(api_conf, db, conductor=Recorder())
    volume = _create_volume(app)['id']
    message = _fault(_request(app, 'DELETE', '%s/%s' % (VOLUMES, volume)),
                     503, 'serviceUnavailable')
    assert 'no coordination backend' in message
    assert db.volume_get(volume)['status'] == 'available'


def test_projects_see_their_own_volumes(app, db):
    mine = _create_volume(app, token=MEMBER)
    theirs = _create_volume(app, token='bob:project-b')
    assert db.volume_get(mine['id'])['project_id'] == 'project-a'
    assert _request(app, 'GET', VOLUMES, token=MEMBER).json == {
        'volumes': [mine]}
    for method in ('GET', 'DELETE'):
        _fault(_request(app, method, '%s/%s' % (VOLUMES, theirs['id']),
                        token=MEMBER), 404, 'itemNotFound')
    _fault(_request(app, 'GET', VOLUMES + '?all_tenants=1', token=MEMBER),
           403, 'forbidden')
    everyone = _request(app, 'GET', VOLUMES + '?all_tenants=1').json
    assert {v['id'] for v in everyone['volumes']} == {mine['id'],
                                                      theirs['id']}
    assert _request(app, 'GET', VOLUMES).json == {'volumes': []}
    # The admin's server: not the member's to attach to, nor to list.
    _fault(_attach(app, mine['id'], token=MEMBER), 404, 'itemNotFound')
    _fault(_request(app, 'GET', _attachments(), token=MEMBER), 404,
           'itemNotFound')
    # Another project's volume is not found for the member's server.
    db.instance_update(OTHER_SERVER, project_id='project-a',
                       user_id='alice')
    _fault(_attach(app, theirs['id'], server_id=OTHER_SERVER, token=MEMBER),
           404, 'itemNotFound')
    assert _attach(app, mine['id'], server_id=OTHER_SERVER,
                   token=MEMBER).status_int == 200


def test_a_policy_file_overrides_the_volume_rules(api_conf, db, coordinator,
                                                  tmp_path):
    policy_file = tmp_path / 'policy.yaml'
    policy_file.write_text(
        '"os_compute_api:os-volumes-attachments:create": "rule:admin_api"\n'
        '"os_compute_api:os-volumes": "!"\n')
    conf_file = tmp_path / 'policy.conf'
    conf_file.write_text('[oslo_policy]\npolicy_file = %s\n' % policy_file)
    policy_conf = cfg.ConfigOpts()
    policy_conf(['--config-file', str(conf_file)])
    app = wsgi.build_app(api_conf, db, conductor=Recorder(),
                         policy=policies.Policy(policy_conf),
                         coordinator=coordinator)
    assert _fault(_request(app, 'GET', VOLUMES), 403, 'forbidden') == (
        "Policy doesn't allow os_compute_api:os-volumes to be performed.")
    volume = db.volume_create(UNKNOWN, 1, project_id='project-a')
    db.instance_create(SERVER, vm_state='active')
    db.instance_update(SERVER, project_id='project-a', user_id='alice')
    assert 'os-volumes-attachments:create' in _fault(
        _attach(app, volume['id'], token=MEMBER), 403, 'forbidden')
    assert _request(app, 'GET', _attachments(), token=MEMBER).json == {
        'volumeAttachments': []}


def test_the_volume_rules_are_documented():
    names = {rule.name for rule in policies.list_rules()}
    assert {'os_compute_api:os-volumes',
            'os_compute_api:os-volumes-attachments:index',
            'os_compute_api:os-volumes-attachments:show',
            'os_compute_api:os-volumes-attachments:create',
            'os_compute_api:os-volumes-attachments:delete'} <= names
