"""Resize with real daemons on a real broker: a conductor, a scheduler and
three small computes, each its own process (fake driver)."""

import signal
import uuid

import pytest

from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.testing import waiters
from tests.functional.test_daemons import _wait_up

SMALL = dict(name='t.small', vcpus=1, memory_mb=256, root_gb=1,
             flavorid='s')
BIG = dict(name='t.big', vcpus=2, memory_mb=512, root_gb=2, flavorid='b')
# Small hosts, and no overcommit: the claims are easy to count.
COMPUTE = {'compute': {'vcpus': 4, 'memory_mb': 2048, 'disk_gb': 10},
           'scheduler': {'cpu_allocation_ratio': 1.0,
                         'ram_allocation_ratio': 1.0,
                         'disk_allocation_ratio': 1.0}}


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture
def deploy(factory, db, client_rpc):
    """``deploy(conductor={...}, cpu2={...}, ...)``: the daemons, each
    with these extra options on top of COMPUTE's."""
    for flavor in (SMALL, BIG):
        db.flavor_create(**flavor)

    def start(**extra):
        def options(name):
            merged = {group: dict(values) for group, values in
                      COMPUTE.items()}
            for group, values in extra.get(name, {}).items():
                merged.setdefault(group, {}).update(values)
            return merged
        daemons = {
            'conductor': factory.start_daemon('nova-lite-conductor', 'ctl1',
                                              extra=options('conductor')),
            'scheduler': factory.start_daemon('nova-lite-scheduler', 'ctl1',
                                              extra=options('scheduler'))}
        for host in ('cpu1', 'cpu2', 'cpu3'):
            daemons[host] = factory.start_daemon('nova-lite-compute', host,
                                                 extra=options(host))
        for daemon in daemons.values():
            _wait_up(db, daemon)
        return daemons
    return start


def _built(conf, db, ctxt, host='cpu1'):
    """An active t.small instance, on ``host`` (the first one goes to
    cpu1: all are empty, and it is first by name)."""
    instance_uuid = str(uuid.uuid4())
    work = db.instance_create_with_work(
        instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
        task_state='scheduling', flavorid='s', flavor_name='t.small',
        vcpus=1, memory_mb=256, root_gb=1)
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
        ctxt, instance_uuid, work_id=work['id'])
    instance = waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=20, what='the build')
    assert host is None or instance['host'] == host
    return instance_uuid


def _settled(db, instance_uuid, timeout=30):
    def ended():
        if db.work_get_all(unfinished=True, instance_uuid=instance_uuid):
            return None
        instance = db.instance_get(instance_uuid)
        return instance if instance['task_state'] is None else None
    return waiters.wait_for(ended, timeout=timeout, what='the work to end')


def _claims(db):
    return sorted((a['instance_uuid'], a['host'], a['vcpus'])
                  for a in db.allocation_get_all())


def _used(db):
    return {n['host']: (n['vcpus_used'], n['memory_mb_used'],
                        n['local_gb_used'])
            for n in db.compute_node_get_all()}


def _resize(conf, db, ctxt, instance_uuid):
    accepted = conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(
        ctxt, instance_uuid, 'b')
    return accepted, _settled(db, instance_uuid)


def test_resize_confirm_and_revert(deploy, db, conf, ctxt):
    deploy()
    client = conductor_rpcapi.ConductorRPCAPI(conf)
    first, second = _built(conf, db, ctxt), _built(conf, db, ctxt, None)

    _, resized = _resize(conf, db, ctxt, first)
    [migration] = db.migration_get_all(instance_uuid=first)
    # cpu1 is the source (not allowed as target); the emptiest other one.
    target = migration['dest_host']
    assert target == resized['host'] and target in ('cpu2', 'cpu3')
    assert (resized['vm_state'], resized['flavorid']) == ('resized', 'b')
    client.confirm_resize(ctxt, first)
    confirmed = _settled(db, first)

    assert (confirmed['vm_state'], confirmed['host']) == ('active', target)
    assert db.migration_get(migration['uuid'])['status'] == 'confirmed'
    assert (first, target, 2) in _claims(db)
    assert [c for c in _claims(db) if c[0] == first] == [(first, target, 2)]

    second_host = db.instance_get(second)['host']
    _, resized = _resize(conf, db, ctxt, second)
    [migration] = db.migration_get_all(instance_uuid=second)
    client.revert_resize(ctxt, second)
    reverted = _settled(db, second)

    assert (reverted['vm_state'], reverted['host'], reverted['flavorid'],
            reverted['vcpus']) == ('active', second_host, 's', 1)
    assert db.migration_get(migration['uuid'])['status'] == 'reverted'
    assert [c for c in _claims(db) if c[0] in (second, migration['uuid'])] \
        == [(second, second_host, 1)]
    # What is left: first's new flavor and second's old one.
    used = _used(db)
    assert sum(u[0] for u in used.values()) == 3


def test_a_failing_target_is_retried_elsewhere(deploy, db, conf, ctxt):
    # cpu2 is empty and first by name: the scheduler picks it first.
    daemons = deploy(cpu2={'fake_driver': {
        'fail_operations': 'prep_resize'}})
    instance_uuid = _built(conf, db, ctxt)

    _, resized = _resize(conf, db, ctxt, instance_uuid)

    [migration] = db.migration_get_all(instance_uuid=instance_uuid)
    assert (migration['failed_hosts'], migration['dest_host'],
            migration['attempts']) == (['cpu2'], 'cpu3', 2)
    assert (resized['vm_state'], resized['host']) == ('resized', 'cpu3')
    assert _used(db)['cpu2'] == (0, 0, 0)
    assert not [c for c in _claims(db) if c[1] == 'cpu2']
    assert 'prep_resize fails on this host' in daemons['cpu2'].log_text()


def test_after_max_attempts_active_on_the_source(deploy, db, conf, ctxt):
    deploy(conductor={'scheduler': {'max_attempts': 2}},
           cpu2={'fake_driver': {'fail_operations': 'prep_resize'}},
           cpu3={'fake_driver': {'fail_operations': 'finish_resize'}})
    instance_uuid = _built(conf, db, ctxt)

    _, after = _resize(conf, db, ctxt, instance_uuid)

    assert (after['vm_state'], after['task_state'], after['host'],
            after['flavorid']) == ('active', None, 'cpu1', 's')
    assert after['fault'].startswith('No valid host after 2 attempts: ')
    [migration] = db.migration_get_all(instance_uuid=instance_uuid)
    assert (migration['status'], migration['failed_hosts']) == (
        'error', ['cpu2', 'cpu3'])
    assert _claims(db) == [(instance_uuid, 'cpu1', 1)]
    assert _used(db)['cpu2'] == _used(db)['cpu3'] == (0, 0, 0)


def test_resize_confirm_window_confirms(deploy, db, conf, ctxt):
    deploy(conductor={'DEFAULT': {'resize_confirm_window': 1}})
    instance_uuid = _built(conf, db, ctxt)
    _resize(conf, db, ctxt, instance_uuid)
    [migration] = db.migration_get_all(instance_uuid=instance_uuid)

    waiters.wait_for(lambda: db.migration_get(migration['uuid'])['status']
                     == 'confirmed', timeout=30, what='the auto-confirm')
    confirmed = _settled(db, instance_uuid)
    assert confirmed['vm_state'] == 'active'
    assert _claims(db) == [(instance_uuid, migration['dest_host'], 2)]


def test_the_source_is_no_target_unless_allowed(deploy, db, conf, ctxt):
    deploy()
    instance_uuid = _built(conf, db, ctxt)
    for host in ('cpu2', 'cpu3'):
        db.service_set_disabled(host, 'nova-lite-compute', True)

    _, after = _resize(conf, db, ctxt, instance_uuid)

    assert (after['vm_state'], after['host']) == ('active', 'cpu1')
    assert after['fault'].startswith('No valid host after 1 attempts')
    assert _claims(db) == [(instance_uuid, 'cpu1', 1)]


@pytest.mark.parametrize('step', ['prep', 'resize', 'finish'])
def test_a_conductor_killed_mid_resize_is_taken_over(
        deploy, factory, db, conf, ctxt, step):
    slow = {'fake_driver': {'operation_seconds': 1}}
    daemons = deploy(cpu1=slow, cpu2=slow, cpu3=slow)
    instance_uuid = _built(conf, db, ctxt)
    conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(
        ctxt, instance_uuid, 'b')

    # Killed while its compute call of ``step`` runs.
    work = waiters.wait_for(
        lambda: [w for w in db.work_get_all(instance_uuid=instance_uuid,
                                            unfinished=True)
                 if w['step'] == step], timeout=20,
        what='the resize to reach %s' % step)[0]
    daemons['conductor'].signal(signal.SIGKILL)
    assert daemons['conductor'].wait(timeout=10) == -signal.SIGKILL
    rescuer = factory.start_daemon('nova-lite-conductor', 'ctl2',
                                   extra=COMPUTE)

    resized = _settled(db, instance_uuid, timeout=60)

    assert (resized['vm_state'], resized['host']) == ('resized', 'cpu2')
    done = db.work_get(work['id'])
    assert (done['step'], done['conductor_host'], done['takeovers']) == (
        'done', 'ctl2', 1)
    [migration] = db.migration_get_all(instance_uuid=instance_uuid)
    assert (migration['status'], migration['attempts']) == ('finished', 1)
    assert _claims(db) == sorted([(instance_uuid, 'cpu1', 1),
                                  (migration['uuid'], 'cpu2', 2)])
    assert 'Taking over resize of instance %s' % instance_uuid in \
        rescuer.log_text()
