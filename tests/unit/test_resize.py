"""Resize: the conductor's workflow, retry and rollback, confirm and revert,
and the claims they move (fake:// transport, services in this process)."""

import uuid

import pytest

from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import resizes
from nova_lite import exception
from nova_lite.testing import waiters

SMALL = dict(name='t.small', vcpus=1, memory_mb=256, root_gb=1,
             flavorid='s')
BIG = dict(name='t.big', vcpus=2, memory_mb=512, root_gb=2, flavorid='b')


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture(autouse=True)
def flavors(db, conf):
    for resource in ('cpu', 'ram', 'disk'):
        conf.set_override('%s_allocation_ratio' % resource, 1.0,
                          group='scheduler')
    for flavor in (SMALL, BIG):
        db.flavor_create(**flavor)


def _cloud(factory, db, hosts=('h1', 'h2', 'h3')):
    """A conductor, a scheduler and computes with room for a few."""
    services = {'conductor': factory.start_service('conductor', host='c1'),
                'scheduler': factory.start_service('scheduler', host='s1')}
    for host in hosts:
        services[host] = factory.start_service('compute', host=host)
        db.compute_node_update(host, vcpus=8, memory_mb=4096, local_gb=20)
    return services


def _driver(services, host):
    return services[host].manager.driver.unwrapped


def _built(conf, db, ctxt, flavor=SMALL):
    instance_uuid = str(uuid.uuid4())
    work = db.instance_create_with_work(
        instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
        task_state='scheduling', flavorid=flavor['flavorid'],
        flavor_name=flavor['name'], vcpus=flavor['vcpus'],
        memory_mb=flavor['memory_mb'], root_gb=flavor['root_gb'])
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
        ctxt, instance_uuid, work_id=work['id'])
    return waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=10, what='the build')


def _claims(db):
    return sorted((a['instance_uuid'], a['host'], a['vcpus'])
                  for a in db.allocation_get_all())


def _used(db):
    return {n['host']: (n['vcpus_used'], n['memory_mb_used'],
                        n['local_gb_used'])
            for n in db.compute_node_get_all()}


def _settled(db, instance_uuid):
    """The instance once its resize work has ended (and it is free)."""
    def ended():
        if db.work_get_all(unfinished=True, instance_uuid=instance_uuid):
            return None
        instance = db.instance_get(instance_uuid)
        return instance if instance['task_state'] is None else None
    return waiters.wait_for(ended, timeout=20, what='the resize to end')


def _resize(conf, db, ctxt, instance_uuid, flavorid='b'):
    accepted = conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(
        ctxt, instance_uuid, flavorid)
    return accepted, _settled(db, instance_uuid)


def test_resize_then_confirm_moves_the_claims(factory, conf, db, ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']

    accepted, resized = _resize(conf, db, ctxt, uuid_)

    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert accepted['migration_uuid'] == migration['uuid']
    target = migration['dest_host']
    assert target != source['host']
    assert (resized['vm_state'], resized['host'], resized['flavorid'],
            resized['vcpus']) == ('resized', target, 'b', 2)
    assert migration['status'] == 'finished'
    assert migration['old_flavor']['flavorid'] == 's'
    # Both claims until confirmed: the old flavor on the source, the new
    # one on the target under the migration's uuid.
    assert _claims(db) == sorted([(uuid_, source['host'], 1),
                                  (migration['uuid'], target, 2)])
    assert _driver(services, target).instances[uuid_]['state'] == 'running'
    assert _driver(services, source['host']).instances[uuid_]['state'] == \
        'shutdown'
    assert [(w['action'], w['step']) for w in
            db.work_get_all(instance_uuid=uuid_)][-1] == ('resize', 'done')

    conductor_rpcapi.ConductorRPCAPI(conf).confirm_resize(ctxt, uuid_)
    confirmed = _settled(db, uuid_)

    assert (confirmed['vm_state'], confirmed['host']) == ('active', target)
    assert _claims(db) == [(uuid_, target, 2)]
    assert _used(db)[source['host']] == (0, 0, 0)
    assert _used(db)[target] == (2, 512, 2)
    assert db.migration_get(migration['uuid'])['status'] == 'confirmed'
    assert uuid_ not in _driver(services, source['host']).instances


def test_revert_goes_back_to_the_source_with_the_old_flavor(factory, conf,
                                                            db, ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    _resize(conf, db, ctxt, uuid_)
    [migration] = db.migration_get_all(instance_uuid=uuid_)

    conductor_rpcapi.ConductorRPCAPI(conf).revert_resize(ctxt, uuid_)
    reverted = _settled(db, uuid_)

    assert (reverted['vm_state'], reverted['host'], reverted['flavorid'],
            reverted['vcpus']) == ('active', source['host'], 's', 1)
    assert _claims(db) == [(uuid_, source['host'], 1)]
    assert _used(db)[migration['dest_host']] == (0, 0, 0)
    assert db.migration_get(migration['uuid'])['status'] == 'reverted'
    assert uuid_ not in _driver(services, migration['dest_host']).instances
    assert _driver(services, source['host']).instances[uuid_]['state'] == \
        'running'
