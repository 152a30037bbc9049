"""The conductor off the happy path, with real daemons on a real broker:
repeated build requests, and migrations to hosts that cannot take them."""

import uuid

import pytest

from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite import exception
from nova_lite.testing import waiters
# The fixture: conductor, scheduler and computes cpu1 and cpu2, each its
# own process.
from tests.functional.test_daemons import deployment  # noqa: F401

COMPUTE = 'nova-lite-compute'


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def _built(conf, db, ctxt):
    instance_uuid = str(uuid.uuid4())
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt,
                                                          instance_uuid)
    return instance_uuid, waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=20,
        what='the instance to become active')


def test_repeated_build_requests_are_ignored_across_processes(
        deployment, db, conf, ctxt):
    instance_uuid, first = _built(conf, db, ctxt)
    # The scheduler would now pick the other compute for a new build.
    db.service_set_disabled(first['host'], COMPUTE, True)

    client = conductor_rpcapi.ConductorRPCAPI(conf)
    for _ in range(2):   # a client retrying, or a message re-delivered
        client.build_instance(ctxt, instance_uuid)

    conductor = deployment['conductor']
    waiters.wait_for(
        lambda: conductor.log_text().count(
            'instance %s exists already; repeated request ignored'
            % instance_uuid) == 2, timeout=20,
        what='the conductor to handle both repeats')
    now = db.instance_get(instance_uuid)
    assert (now['host'], now['vm_state'], now['task_state']) == (
        first['host'], 'active', None)
    assert [w['action'] for w in
            db.work_get_all(instance_uuid=instance_uuid)] == ['build']
    assert compute_rpcapi.ComputeRPCAPI(conf).get_info(
        ctxt, first['host'], instance_uuid)['state'] == 'running'


def test_migrate_refuses_a_destination_that_cannot_take_it(
        deployment, db, conf, ctxt):
    instance_uuid, before = _built(conf, db, ctxt)
    other = {'cpu1': 'cpu2', 'cpu2': 'cpu1'}[before['host']]
    db.service_set_disabled(other, COMPUTE, True)
    client = conductor_rpcapi.ConductorRPCAPI(conf)

    # The caller gets the conductor's error by name, over the broker.
    with pytest.raises(exception.ComputeHostNotFound, match='no-such-host'):
        client.migrate_instance(ctxt, instance_uuid, dest='no-such-host')
    with pytest.raises(exception.ComputeServiceUnavailable,
                       match='disabled'):
        client.migrate_instance(ctxt, instance_uuid, dest=other)

    after = db.instance_get(instance_uuid)
    assert (after['host'], after['vm_state'], after['task_state']) == (
        before['host'], 'active', None)
    assert db.work_get_all(unfinished=True) == []
    # Expected errors: the conductor logs no traceback for them.
    assert 'Exception during message handling' not in \
        deployment['conductor'].log_text()
    # Enabled again, the same destination is accepted.
    db.service_set_disabled(other, COMPUTE, False)
    assert client.migrate_instance(ctxt, instance_uuid,
                                   dest=other)['dest'] == other
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['host'] == other
                     and db.instance_get(instance_uuid)['task_state'] is None,
                     timeout=20, what='the migration')
