"""The build nova-lite-api records and casts: ConductorRPCAPI 1.2
build_instance(work_id), claimed once; takeover when its cast is lost
(fake:// transport, services in this process)."""

import datetime
import uuid

import pytest

from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import models
from nova_lite import exception
from nova_lite import rpc
from nova_lite.testing import waiters


def _recorded_build(db):
    """What the API records for a POST /servers."""
    instance_uuid = str(uuid.uuid4())
    work = db.instance_create_with_work(
        instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
        task_state='scheduling', display_name='vm', project_id='p')
    return instance_uuid, work


def _active(db, instance_uuid):
    return waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=10, what='the build')


def test_build_with_work_id_claims_and_runs_it_once(factory, conf, db):
    conductor = factory.start_service('conductor', host='c1')
    factory.start_service('scheduler', host='s1')
    compute = factory.start_service('compute', host='h1')
    instance_uuid, work = _recorded_build(db)
    client = conductor_rpcapi.ConductorRPCAPI(conf)
    ctxt = context.get_admin_context()
    handled = waiters.CastWaiter(conductor.manager, 'build_instance')
    client.build_instance(ctxt, instance_uuid, work_id=work['id'])
    handled.wait()
    instance = _active(db, instance_uuid)
    assert (instance['host'], instance['display_name']) == ('h1', 'vm')
    done = db.work_get(work['id'])
    assert (done['conductor_host'], done['takeovers'], done['step']) == (
        'c1', 0, 'done')
    # The same cast again (a re-delivery): ignored, nothing spawns twice.
    spawns = waiters.CastWaiter(compute.manager, 'spawn')
    again = waiters.CastWaiter(conductor.manager, 'build_instance')
    client.build_instance(ctxt, instance_uuid, work_id=work['id'])
    again.wait()
    assert spawns.calls == []
    assert db.work_get_all(instance_uuid=instance_uuid) == [done]


def test_work_id_needs_1_2(conf):
    conf.set_override('conductor', '1.1', group='upgrade_levels')
    rpc.init(conf)
    try:
        client = conductor_rpcapi.ConductorRPCAPI(conf)
        with pytest.raises(exception.VersionCapTooLow):
            client.build_instance(context.get_admin_context(), 'u',
                                  work_id=1)
    finally:
        rpc.cleanup()


def test_an_unassigned_build_is_taken_over_after_service_down_time(
        factory, conf, db):
    instance_uuid, work = _recorded_build(db)
    fresh_uuid, fresh = _recorded_build(db)
    # Its cast was lost long ago; the other one's may still be on its way.
    old = models.utcnow() - datetime.timedelta(
        seconds=conf.service_down_time + 1)
    db.work_update(work, created_at=old)
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')
    factory.start_service('conductor', host='c1')
    _active(db, instance_uuid)
    taken = db.work_get(work['id'])
    assert (taken['conductor_host'], taken['takeovers']) == ('c1', 1)
    assert db.work_get(fresh['id'])['conductor_host'] == db_api.UNASSIGNED
    assert db.instance_get(fresh_uuid)['vm_state'] == 'building'
