"""os-volumes and os-volume_attachments over real HTTP, against a real
nova-lite-api daemon in front of real conductor, scheduler and compute
daemons; and a workflow's locks held by a separate process through
nova_lite.coordination (file backend, the daemons' state_path), exactly as
a conductor workflow holds them."""

import pytest

from nova_lite import coordination
from nova_lite.testing import api
from nova_lite.testing import locks
from nova_lite.testing import waiters
from tests.functional import test_api

VOLUMES = '/v2.1/os-volumes'


@pytest.fixture(scope='module')
def deployment(rabbit):
    with test_api.api_deployment(rabbit, {
            'conductor': ('nova-lite-conductor', 'vctl', None),
            'scheduler': ('nova-lite-scheduler', 'vctl', None),
            'compute': ('nova-lite-compute', 'vcpu', None)},
            api_host='vapi',
            overrides={'fake_driver': {'operation_seconds': 0.1}}) as env:
        yield env


def _server(env, name):
    resp = env.admin.post('/v2.1/servers', {'server': {
        'name': name, 'imageRef': 'cirros', 'flavorRef': '1'}})
    assert resp.status == 202, resp
    return api.wait_for_server(env.admin, resp.json['server']['id'],
                               'ACTIVE')['id']


def _volume(env, size=1, **fields):
    resp = env.admin.post(VOLUMES, {'volume': dict(size=size, **fields)})
    assert resp.status == 200, resp
    return resp.json['volume']


def _attachments(server_id):
    return '/v2.1/servers/%s/os-volume_attachments' % server_id


def _attach(env, server_id, volume_id):
    return env.admin.post(_attachments(server_id), {
        'volumeAttachment': {'volumeId': volume_id}})


def test_create_list_show_attach_detach_delete(deployment):
    env = deployment
    server_id = _server(env, 'with-volumes')
    volume = _volume(env, size=3, display_name='data')
    assert (volume['status'], volume['size'], volume['displayName'],
            volume['attachments']) == ('available', 3, 'data', [{}])
    assert volume['id'] in [v['id'] for v in
                            env.admin.get(VOLUMES).json['volumes']]
    assert env.admin.get(VOLUMES + '/detail').json['volumes'][-1] == volume
    assert env.admin.get('%s/%s' % (VOLUMES, volume['id'])).json == {
        'volume': volume}

    attached = _attach(env, server_id, volume['id'])
    assert attached.status == 200, attached
    attachment = attached.json['volumeAttachment']
    assert attachment == {'id': volume['id'], 'volumeId': volume['id'],
                          'serverId': server_id, 'device': '/dev/vdb'}
    assert env.admin.get(_attachments(server_id)).json == {
        'volumeAttachments': [attachment]}
    assert env.admin.get('%s/%s' % (_attachments(server_id), volume['id'])
                         ).json == {'volumeAttachment': attachment}
    shown = env.admin.get('%s/%s' % (VOLUMES, volume['id'])).json['volume']
    assert (shown['status'], shown['attachments']) == ('in-use',
                                                       [attachment])
    refused = env.admin.delete('%s/%s' % (VOLUMES, volume['id']))
    assert refused.status == 400, refused
    assert 'it is in-use' in refused.json['badRequest']['message']

    detached = env.admin.delete('%s/%s' % (_attachments(server_id),
                                           volume['id']))
    assert (detached.status, detached.body) == (202, '')
    assert env.admin.get(_attachments(server_id)).json == {
        'volumeAttachments': []}
    deleted = env.admin.delete('%s/%s' % (VOLUMES, volume['id']))
    assert (deleted.status, deleted.body) == (202, '')
    assert env.admin.get('%s/%s' % (VOLUMES, volume['id'])).status == 404


def test_deleting_a_server_detaches_its_volumes(deployment):
    env = deployment
    server_id = _server(env, 'doomed')
    volume = _volume(env, size=1)
    assert _attach(env, server_id, volume['id']).status == 200
    assert env.admin.delete('/v2.1/servers/%s' % server_id).status == 204
    api.wait_for_gone(env.admin, server_id)
    # Detached as the destroy's last step on the compute host.
    shown = waiters.wait_for(
        lambda: (lambda v: v['status'] == 'available' and v)(env.admin.get(
            '%s/%s' % (VOLUMES, volume['id'])).json['volume']),
        timeout=30, what='the volume to be detached')
    assert shown['attachments'] == [{}]
    deleted = env.admin.delete('%s/%s' % (VOLUMES, volume['id']))
    assert deleted.status == 202, deleted


def _refused_while_held(env, server_id, volume_id, spare_id):
    """Every change that needs the held locks is 409, and the volume is
    intact."""
    deleted = env.admin.delete('%s/%s' % (VOLUMES, volume_id))
    assert deleted.status == 409, deleted
    # Locked, not in-use: the lock is tried before the volume's state.
    assert deleted.json['conflictingRequest']['message'] == (
        'Volume %s is locked: an action on server %s holds it; try again '
        'when it ends' % (volume_id, server_id))
    shown = env.admin.get('%s/%s' % (VOLUMES, volume_id))
    assert shown.status == 200
    assert shown.json['volume']['status'] == 'in-use'
    assert shown.json['volume']['attachments'] == [{
        'id': volume_id, 'volumeId': volume_id, 'serverId': server_id,
        'device': '/dev/vdb'}]
    detached = env.admin.delete('%s/%s' % (_attachments(server_id),
                                           volume_id))
    assert detached.status == 409, detached
    assert ('Instance %s is locked' % server_id in
            detached.json['conflictingRequest']['message'])
    attached = _attach(env, server_id, spare_id)
    assert attached.status == 409, attached
    assert env.admin.get(_attachments(server_id)).json[
        'volumeAttachments'] == [shown.json['volume']['attachments'][0]]


def test_volume_delete_during_a_workflow_is_409_and_the_volume_intact(
        deployment):
    """The issue's "volume delete during a resize", against the locks a
    conductor workflow holds (the resize itself drives them later)."""
    env = deployment
    server_id = _server(env, 'locked')
    volume_id = _volume(env)['id']
    spare_id = _volume(env)['id']
    assert _attach(env, server_id, volume_id).status == 200
    names = coordination.lock_names(server_id, [volume_id])
    conf = env.conf_fixture.conf

    with locks.holder_for(conf, names) as holder:
        _refused_while_held(env, server_id, volume_id, spare_id)
        holder.release()
        assert holder.popen.returncode == 0
    # The workflow ended: the same requests go through.
    assert _attach(env, server_id, spare_id).status == 200
    assert env.admin.delete('%s/%s' % (_attachments(server_id), spare_id)
                            ).status == 202

    with locks.holder_for(conf, names) as holder:
        _refused_while_held(env, server_id, volume_id, spare_id)
        # A holder killed with SIGKILL: its locks die with it.
        holder.kill()
    assert _attach(env, server_id, spare_id).status == 200
    assert env.admin.delete('%s/%s' % (_attachments(server_id), volume_id)
                            ).status == 202
    assert env.admin.delete('%s/%s' % (VOLUMES, volume_id)).status == 202
    assert env.admin.get('%s/%s' % (VOLUMES, volume_id)).status == 404


def test_python_novaclient_attaches_lists_detaches(deployment):
    from keystoneauth1 import session as ks_session
    from keystoneauth1 import token_endpoint
    from novaclient import client as nova_client
    from novaclient import exceptions as nova_exceptions

    env = deployment
    auth = token_endpoint.Token(env.url + '/v2.1', 'admin:admin')
    nova = nova_client.Client('2.1', session=ks_session.Session(auth=auth))
    server_id = _server(env, 'novaclient-volumes')
    volume_id = _volume(env)['id']
    attachment = nova.volumes.create_server_volume(server_id, volume_id,
                                                   device='/dev/vdc')
    assert (attachment.id, attachment.serverId, attachment.volumeId,
            attachment.device) == (volume_id, server_id, volume_id,
                                   '/dev/vdc')
    assert [a.volumeId for a in nova.volumes.get_server_volumes(
        server_id)] == [volume_id]
    assert nova.volumes.get_server_volume(server_id, volume_id
                                          ).device == '/dev/vdc'
    with pytest.raises(nova_exceptions.Conflict):
        with locks.holder_for(env.conf_fixture.conf,
                              coordination.lock_names(server_id)):
            nova.volumes.delete_server_volume(server_id, volume_id)
    nova.volumes.delete_server_volume(server_id, volume_id)
    assert nova.volumes.get_server_volumes(server_id) == []
    with pytest.raises(nova_exceptions.NotFound):
        nova.volumes.get_server_volume(server_id, volume_id)


def test_the_api_log_names_its_coordination_backend(deployment):
    text = deployment.log('api')
    assert 'Coordination backend file://%s/locks started' % (
        deployment.conf_fixture.state_path) in text
