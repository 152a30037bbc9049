"""Capacity and claims: the scheduler's RAM, vCPU and disk filters, its
claims (``allocations``), and their release when a build fails or the
instance is deleted (fake:// transport, services in this process)."""

import uuid

import pytest

from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import concurrency
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite import exception
from nova_lite.scheduler import rpcapi as scheduler_rpcapi
from nova_lite.testing import waiters

TINY = dict(vcpus=1, memory_mb=512, root_gb=1)


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture(autouse=True)
def no_overcommit(conf):
    for resource in ('cpu', 'ram', 'disk'):
        conf.set_override('%s_allocation_ratio' % resource, 1.0,
                          group='scheduler')


def _computes(factory, db, **capacity):
    """h1 and h2 with 4 vCPUs, 2048 MB and 10 GB each, unless told."""
    for host in ('h1', 'h2'):
        factory.start_service('compute', host=host)
        values = dict(vcpus=4, memory_mb=2048, local_gb=10)
        values.update(capacity.get(host, {}))
        db.compute_node_update(host, **values)


def _instance(db, host=None, **flavor):
    instance_uuid = str(uuid.uuid4())
    db.instance_create(instance_uuid, host=host)
    if flavor:
        db.instance_update(instance_uuid, **flavor)
    return instance_uuid


def _claims(db):
    return sorted((a['instance_uuid'], a['host'])
                  for a in db.allocation_get_all())


def _used(db, host):
    [node] = [n for n in db.compute_node_get_all() if n['host'] == host]
    return node['vcpus_used'], node['memory_mb_used'], node['local_gb_used']


@pytest.mark.parametrize('short', [dict(memory_mb=256), dict(vcpus=0),
                                   dict(local_gb=0)],
                         ids=['RamFilter', 'CoreFilter', 'DiskFilter'])
def test_a_host_without_room_is_filtered_out(factory, db, conf, ctxt,
                                             short):
    factory.start_service('scheduler', host='s1')
    _computes(factory, db, h1=short)
    _instance(db, host='h2')          # h2 is the busier one
    instance_uuid = _instance(db, **TINY)

    host = scheduler_rpcapi.SchedulerRPCAPI(conf).select_host(
        ctxt, instance_uuid=instance_uuid)

    assert host == 'h2'
    assert _claims(db) == [(instance_uuid, 'h2')]
    assert _used(db, 'h2') == (1, 512, 1)
    assert _used(db, 'h1') == (0, 0, 0)


def test_no_host_with_room_is_no_valid_host_and_no_claim(factory, db, conf,
                                                         ctxt):
    factory.start_service('scheduler', host='s1')
    _computes(factory, db)
    instance_uuid = _instance(db, vcpus=1, memory_mb=4096, root_gb=1)

    with pytest.raises(exception.NoValidHost) as err:
        scheduler_rpcapi.SchedulerRPCAPI(conf).select_host(
            ctxt, instance_uuid=instance_uuid)
    assert 'has room for 1 vCPUs, 4096 MB RAM' in str(err.value)
    assert _claims(db) == []


def test_allocation_ratios_allow_overcommit(factory, db, conf, ctxt):
    conf.set_override('cpu_allocation_ratio', 2.0, group='scheduler')
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')
    db.compute_node_update('h1', vcpus=1, memory_mb=8192, local_gb=100)
    client = scheduler_rpcapi.SchedulerRPCAPI(conf)
    for _ in range(2):
        assert client.select_host(
            ctxt, instance_uuid=_instance(db, **TINY)) == 'h1'
    with pytest.raises(exception.NoValidHost):
        client.select_host(ctxt, instance_uuid=_instance(db, **TINY))
    assert _used(db, 'h1') == (2, 1024, 2)


def test_without_an_instance_the_choice_is_unfiltered_and_unclaimed(
        factory, db, conf, ctxt):
    factory.start_service('scheduler', host='s1')
    _computes(factory, db, h1=dict(memory_mb=0, vcpus=0, local_gb=0))
    client = scheduler_rpcapi.SchedulerRPCAPI(conf)
    assert client.select_host(ctxt) == 'h1'
    # Nor does an instance without a flavor snapshot claim anything.
    assert client.select_host(ctxt, instance_uuid=_instance(db)) == 'h1'
    assert _claims(db) == []


def test_concurrent_schedules_claim_exactly_the_room(factory, db, conf,
                                                     ctxt):
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')
    db.compute_node_update('h1', vcpus=3, memory_mb=8192, local_gb=100)
    instances = [_instance(db, **TINY) for _ in range(10)]
    client = scheduler_rpcapi.SchedulerRPCAPI(conf)
    start = concurrency.Event()

    def schedule(instance_uuid):
        start.wait()
        try:
            return client.select_host(ctxt, instance_uuid=instance_uuid)
        except exception.NoValidHost:
            return None

    workers = [concurrency.spawn(schedule, u) for u in instances]
    start.set()
    chosen = [worker.wait() for worker in workers]

    assert chosen.count('h1') == 3 and chosen.count(None) == 7
    assert len(_claims(db)) == 3
    assert _used(db, 'h1') == (3, 1536, 3)


def test_release_is_once_and_a_reschedule_replaces_the_claim(factory, db):
    factory.start_service('compute', host='h1')
    db.compute_node_update('h1', vcpus=2, memory_mb=2048, local_gb=10)
    instance_uuid = _instance(db, **TINY)
    assert db.allocation_claim(instance_uuid, ['h1'], 1, 512, 1) == 'h1'
    assert db.allocation_claim(instance_uuid, ['h1'], 1, 512, 1) == 'h1'
    assert _used(db, 'h1') == (1, 512, 1)
    assert db.allocation_release(instance_uuid) is True
    assert db.allocation_release(instance_uuid) is False
    assert _used(db, 'h1') == (0, 0, 0)


def _cloud(factory, db, conf):
    factory.start_service('conductor', host='c1')
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')
    db.compute_node_update('h1', vcpus=4, memory_mb=2048, local_gb=10)


def _build(db, conf, ctxt):
    instance_uuid = str(uuid.uuid4())
    work = db.instance_create_with_work(
        instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
        task_state='scheduling', **TINY)
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
        ctxt, instance_uuid, work_id=work['id'])
    return instance_uuid, work


def _settled_in(db, instance_uuid, vm_state):
    instance = db.instance_get(instance_uuid)
    return instance['vm_state'] == vm_state and instance['task_state'] is None


def test_a_build_claims_and_a_delete_releases(factory, db, conf, ctxt):
    _cloud(factory, db, conf)
    instance_uuid, _ = _build(db, conf, ctxt)
    waiters.wait_for(lambda: _settled_in(db, instance_uuid, 'active'),
                     timeout=10, what='the build')
    assert _claims(db) == [(instance_uuid, 'h1')]

    conductor_rpcapi.ConductorRPCAPI(conf).destroy_instance(ctxt,
                                                            instance_uuid)
    waiters.wait_for(lambda: _settled_in(db, instance_uuid, 'deleted'),
                     timeout=10, what='the delete')
    waiters.wait_for(lambda: _claims(db) == [], timeout=10,
                     what='the release')
    assert _used(db, 'h1') == (0, 0, 0)


def test_a_spawn_that_fails_releases_the_claim(factory, db, conf, ctxt):
    conf.set_override('fail_operations', ['spawn'], group='fake_driver')
    _cloud(factory, db, conf)
    instance_uuid, _ = _build(db, conf, ctxt)
    waiters.wait_for(lambda: _settled_in(db, instance_uuid, 'error'),
                     timeout=10, what='the failed build')
    assert 'fail_operations' in db.instance_get(instance_uuid)['fault']
    waiters.wait_for(lambda: _claims(db) == [], timeout=10,
                     what='the release')
    assert _used(db, 'h1') == (0, 0, 0)


def test_a_cast_that_fails_after_scheduling_releases_the_claim(
        factory, db, conf, ctxt, monkeypatch):
    _cloud(factory, db, conf)

    def broken_spawn(*args, **kwargs):
        raise RuntimeError('the broker is gone')
    monkeypatch.setattr(compute_rpcapi.ComputeRPCAPI, 'spawn', broken_spawn)
    instance_uuid, work = _build(db, conf, ctxt)
    waiters.wait_for(lambda: db.work_get(work['id'])['step'] == 'failed',
                     timeout=10, what='the failed build')
    assert db.instance_get(instance_uuid)['vm_state'] == 'error'
    waiters.wait_for(lambda: _claims(db) == [], timeout=10,
                     what='the release')
    assert _used(db, 'h1') == (0, 0, 0)


def test_a_finished_migration_moves_the_claim(factory, db, conf, ctxt):
    _cloud(factory, db, conf)
    factory.start_service('compute', host='h2')
    db.compute_node_update('h2', vcpus=4, memory_mb=2048, local_gb=10)
    instance_uuid, _ = _build(db, conf, ctxt)
    waiters.wait_for(lambda: _settled_in(db, instance_uuid, 'active'),
                     timeout=10, what='the build')
    src = db.instance_get(instance_uuid)['host']
    dest = 'h2' if src == 'h1' else 'h1'

    conductor_rpcapi.ConductorRPCAPI(conf).migrate_instance(
        ctxt, instance_uuid, dest=dest)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['host'] == dest
                     and _settled_in(db, instance_uuid, 'active'),
                     timeout=15, what='the migration')

    assert _claims(db) == [(instance_uuid, dest)]
    assert _used(db, dest) == (1, 512, 1)
    assert _used(db, src) == (0, 0, 0)
