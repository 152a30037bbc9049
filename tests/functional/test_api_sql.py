"""nova-lite-api's DB calls and views on SQLite, PostgreSQL and MariaDB:
flavors, the recorded build, usage per host, compute nodes, and the WSGI
app over each (the conductor is a stand-in; the daemons are covered by
test_api)."""

import uuid

import pytest
import webob

from nova_lite.api import wsgi
from nova_lite.db import api as db_api
from nova_lite import exception
from tests.functional.test_sql_backends import backend  # noqa: F401
from tests.functional.test_sql_backends import conf_fixture  # noqa: F401
from tests.functional.test_sql_backends import db  # noqa: F401
from tests.unit.test_api import Recorder


def _get(app, path):
    req = webob.Request.blank(path, headers={'X-Auth-Token': 'admin:admin'})
    return req.get_response(app)


def test_flavors_builds_usage_and_nodes(db, conf):  # noqa: F811
    db.flavor_create('m1.small', 1, 2048, 20, '2')
    db.flavor_create('big', 8, 16384, 160, str(uuid.uuid4()))
    with pytest.raises(exception.FlavorExists):
        db.flavor_create('m1.small', 1, 1, 1, '9')
    assert [f['name'] for f in db.flavor_get_all()] == ['m1.small', 'big']
    with pytest.raises(exception.FlavorNotFound):
        db.flavor_get('nope')
    db.compute_node_update('h1', hypervisor_type='fake', vcpus=4,
                           memory_mb=8192, local_gb=100)
    db.compute_node_update('h1', vcpus=8)
    [node] = db.compute_node_get_all()
    assert (node['host'], node['vcpus'], node['memory_mb']) == (
        'h1', 8, 8192)

    conf.set_override('auth_strategy', 'noauth2', group='api')
    conductor = Recorder()
    app = wsgi.build_app(conf, db, conductor=conductor)
    req = webob.Request.blank('/v2.1/servers', method='POST', headers={
        'X-Auth-Token': 'admin:admin'}, json={'server': {
            'name': 'vm', 'imageRef': 'cirros', 'flavorRef': '2'}})
    created = req.get_response(app)
    assert created.status_int == 202, created.text
    server_id = created.json['server']['id']
    [work] = db.work_get_all(instance_uuid=server_id)
    assert work['conductor_host'] == db_api.UNASSIGNED
    claimed = db.work_claim(work, 'c1', takeover=False)
    assert (claimed['conductor_host'], claimed['takeovers']) == ('c1', 0)
    assert db.work_claim(work, 'c2', takeover=False) is None
    assert db.allocation_claim(server_id, ['h1'], 1, 2048, 20) == 'h1'
    db.instance_update(server_id, host='h1', vm_state='active')
    db.instance_create(str(uuid.uuid4()), host='h1', vm_state='deleted')
    assert db.instance_count_by_host() == {'h1': 1}
    assert [i['uuid'] for i in db.instance_get_all(
        project_id='admin', deleted=False)] == [server_id]
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.3')
    [hypervisor] = _get(app, '/v2.1/os-hypervisors/detail').json[
        'hypervisors']
    assert (hypervisor['vcpus'], hypervisor['memory_mb_used'],
            hypervisor['free_disk_gb'], hypervisor['running_vms']) == (
        8, 2048, 80, 1)
    [server] = _get(app, '/v2.1/servers/detail').json['servers']
    assert (server['id'], server['status'], server['flavor']['id']) == (
        server_id, 'ACTIVE', '2')
