"""Resize's claim accounting on SQLite, PostgreSQL and MariaDB: the same
queries (``nova_lite.db.resizes``) move the same claims on every backend."""

import uuid

import pytest

from nova_lite.db import resizes
from nova_lite import exception
from tests.functional.test_sql_backends import backend  # noqa: F401
from tests.functional.test_sql_backends import conf_fixture  # noqa: F401
from tests.functional.test_sql_backends import db  # noqa: F401

SMALL = dict(flavorid='s', flavor_name='t.small', vcpus=1, memory_mb=256,
             root_gb=1)
BIG = dict(flavorid='b', flavor_name='t.big', vcpus=2, memory_mb=512,
           root_gb=2)


def _used(db):  # noqa: F811
    return {n['host']: (n['vcpus_used'], n['memory_mb_used'],
                        n['local_gb_used'])
            for n in db.compute_node_get_all()}


def _claims(db):  # noqa: F811
    return sorted((a['instance_uuid'], a['host'], a['vcpus'])
                  for a in db.allocation_get_all())


@pytest.fixture
def resized(db):  # noqa: F811
    """An instance on h1 resized to h2 (finished, not yet confirmed):
    ``(instance_uuid, migration_uuid, work)``."""
    for host in ('h1', 'h2'):
        db.compute_node_update(host, hypervisor_type='fake', vcpus=4,
                              memory_mb=2048, local_gb=10)
    instance_uuid, migration_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    db.instance_create(instance_uuid, host='h1', vm_state='active')
    db.instance_update(instance_uuid, **SMALL)
    assert db.allocation_claim(instance_uuid, ['h1'], 1, 256, 1) == 'h1'

    with pytest.raises(exception.SameFlavor):
        db.resize_create(instance_uuid, migration_uuid, SMALL, 'c1',
                         'resize_prep', ('active',))
    work = db.resize_create(instance_uuid, migration_uuid, BIG, 'c1',
                            'resize_prep', ('active',))
    with pytest.raises(exception.InstanceActionInProgress):
        db.resize_create(instance_uuid, str(uuid.uuid4()), BIG, 'c1',
                         'resize_prep', ('active',))
    # The scheduler's claim for the migration, then the steps.
    assert db.allocation_claim(migration_uuid, ['h2'], 2, 512, 2,
                               for_resize=True) == 'h2'
    work = db.resize_step(work, 'prep', dest='h2',
                          migration=dict(dest_host='h2', attempts=1))
    # A step from the wrong side (a late one of an earlier attempt)
    # matches nothing.
    assert not db.migration_advance(migration_uuid, resizes.PREPARED,
                                    resizes.SCHEDULING, 'h1', 'dest')
    assert db.migration_advance(migration_uuid, resizes.PREPARED,
                                resizes.SCHEDULING, 'h2', 'dest')
    # A repeated step matches nothing.
    assert not db.migration_advance(migration_uuid, resizes.PREPARED,
                                    resizes.SCHEDULING, 'h2', 'dest')
    assert db.migration_advance(migration_uuid, resizes.MIGRATED,
                                resizes.PREPARED, 'h1', 'source')
    assert db.migration_finish(migration_uuid, 'h2')
    assert not db.migration_finish(migration_uuid, 'h2')
    # The target's finish leaves the instance to the conductor, which
    # frees it as it records the end.
    assert db.instance_get(instance_uuid)['task_state'] == 'resize_prep'
    db.resize_step(work, 'done', finished=True,
                   instance=dict(task_state=None))
    return instance_uuid, migration_uuid


def test_a_claim_after_its_resize_ended_is_not_made(db, resized):  # noqa: F811
    instance_uuid, migration_uuid = resized
    # A scheduler whose answer came too late (its resize gave up, or
    # went on): nothing is claimed, nothing left behind.
    assert db.allocation_claim(migration_uuid, ['h1', 'h2'], 1, 1, 1,
                               for_resize=True) is None
    assert _used(db) == {'h1': (1, 256, 1), 'h2': (2, 512, 2)}


def test_a_finished_resize_holds_both_claims(db, resized):  # noqa: F811
    instance_uuid, migration_uuid = resized
    instance = db.instance_get(instance_uuid)
    assert (instance['host'], instance['vm_state'], instance['task_state'],
            instance['flavorid'], instance['vcpus']) == (
        'h2', 'resized', None, 'b', 2)
    assert _claims(db) == sorted([(instance_uuid, 'h1', 1),
                                  (migration_uuid, 'h2', 2)])
    assert _used(db) == {'h1': (1, 256, 1), 'h2': (2, 512, 2)}
    migration = db.migration_get(migration_uuid)
    assert (migration['status'], migration['old_flavor'],
            migration['new_flavor']) == ('finished', SMALL, BIG)


def test_confirm_drops_the_source_claim_and_keys_the_target_one(
        db, resized):  # noqa: F811
    instance_uuid, migration_uuid = resized
    work = db.resize_begin(instance_uuid, 'confirm_resize', 'confirming',
                           'c1', 'resize_confirming', ('resized',))
    assert (work['host'], work['dest'], work['migration_uuid']) == (
        'h1', 'h2', migration_uuid)

    db.resize_confirm(work)

    assert _claims(db) == [(instance_uuid, 'h2', 2)]
    assert _used(db) == {'h1': (0, 0, 0), 'h2': (2, 512, 2)}
    assert db.migration_get(migration_uuid)['status'] == 'confirmed'
    assert db.instance_get(instance_uuid)['vm_state'] == 'active'
    # Fenced: a conductor that lost the work changes nothing.
    with pytest.raises(exception.WorkTakenOver):
        db.resize_confirm(work)


def test_revert_drops_the_target_claim(db, resized):  # noqa: F811
    instance_uuid, migration_uuid = resized
    work = db.resize_begin(instance_uuid, 'revert_resize', 'revert_dest',
                           'c1', 'resize_reverting', ('resized',))
    db.work_claim(work, 'c2')    # taken over: c1 is fenced off
    with pytest.raises(exception.WorkTakenOver):
        db.resize_step(work, 'done', finished=True, release_claim=True)
    assert len(db.allocation_get_all()) == 2

    [work] = db.work_get_all(unfinished=True)
    db.resize_step(work, 'done', finished=True, release_claim=True,
                   migration=dict(status=resizes.REVERTED),
                   instance=dict(SMALL, host='h1', vm_state='active',
                                 task_state=None))

    assert _claims(db) == [(instance_uuid, 'h1', 1)]
    assert _used(db) == {'h1': (1, 256, 1), 'h2': (0, 0, 0)}
    assert db.migration_get_all(status='reverted')[0]['uuid'] == \
        migration_uuid


def test_deleting_a_resized_instance_confirms_it_and_frees_both(
        db, resized):  # noqa: F811
    instance_uuid, _ = resized
    db.allocation_release(instance_uuid)      # the compute's destroy
    assert db.migration_confirm_deleted(instance_uuid) == 1
    assert db.allocation_get_all() == []
    assert _used(db) == {'h1': (0, 0, 0), 'h2': (0, 0, 0)}
    assert db.migration_confirm_deleted(instance_uuid) == 0


def test_migrations_to_confirm_after_the_window(db, resized):  # noqa: F811
    assert db.migrations_to_confirm(3600) == []
    [migration] = db.migrations_to_confirm(0)
    assert migration['uuid'] == resized[1]


def test_an_aborted_migration_releases_its_claim_once(db):  # noqa: F811
    db.compute_node_update('h1', hypervisor_type='fake', vcpus=4,
                           memory_mb=2048, local_gb=10)
    instance_uuid, migration_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    db.instance_create(instance_uuid, host='h1', vm_state='active')
    db.resize_create(instance_uuid, migration_uuid, BIG, 'c1',
                     'resize_prep', ('active',))
    assert db.allocation_claim(migration_uuid, ['h1'], 2, 512, 2) == 'h1'

    assert db.migration_abort(migration_uuid)
    assert not db.migration_abort(migration_uuid)

    assert db.allocation_get_all() == []
    assert _used(db) == {'h1': (0, 0, 0)}
    assert db.migration_get(migration_uuid)['status'] == 'error'
