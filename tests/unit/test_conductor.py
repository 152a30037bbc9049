"""The conductor: guarded instance actions and takeover of a dead
conductor's work (fake:// transport, services in this process)."""

import datetime
import uuid

import pytest

from nova_lite import concurrency
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import models
from nova_lite import exception
from nova_lite.testing import waiters


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def _start_cloud(factory):
    """A conductor, a scheduler and one compute, all in this process."""
    return {'conductor': factory.start_service('conductor', host='c1'),
            'scheduler': factory.start_service('scheduler', host='s1'),
            'compute': factory.start_service('compute', host='h1')}


@pytest.fixture
def cloud(factory):
    return _start_cloud(factory)


def _active_instance(conf, db, ctxt):
    instance_uuid = str(uuid.uuid4())
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt, instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=10, what='the build')
    return instance_uuid


def _build_work(db, instance_uuid, conductor_host):
    """A build as build_instance records it, left at its first step."""
    return db.instance_create_with_work(instance_uuid, 'build', 'scheduling',
                                        conductor_host,
                                        task_state='scheduling')


def _settled(db, instance_uuid):
    return db.instance_get(instance_uuid)['task_state'] is None


def test_build_is_recorded_as_finished_work(cloud, conf, db, ctxt):
    instance_uuid = _active_instance(conf, db, ctxt)

    work = db.work_get_all(instance_uuid=instance_uuid)
    assert [(w['action'], w['step'], w['host'], w['conductor_host'])
            for w in work] == [('build', 'done', 'h1', 'c1')]
    assert work[0]['finished_at'] is not None
    assert db.work_get_all(unfinished=True) == []


def test_of_concurrent_actions_on_one_instance_exactly_one_wins(
        factory, conf, db, ctxt):
    # The winner holds the instance until its compute host is done: 1 s,
    # long after all eight requests below were answered.
    conf.set_override('operation_seconds', 1, group='fake_driver')
    _start_cloud(factory)
    instance_uuid = _active_instance(conf, db, ctxt)
    client = conductor_rpcapi.ConductorRPCAPI(conf)

    def attempt(action):
        try:
            return getattr(client, action + '_instance')(ctxt, instance_uuid)
        except exception.InstanceActionInProgress as exc:
            return exc

    results = concurrency.map_concurrently(attempt,
                                           ['reboot', 'destroy'] * 4, 8)

    accepted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(accepted) == 1, results
    assert len(refused) == 7
    assert 'already' in str(refused[0])
    # The winner runs to the end, and frees the instance for the next one.
    waiters.wait_for(lambda: _settled(db, instance_uuid), timeout=15,
                     what='the winning action to finish')
    if accepted[0]['action'] == 'reboot':
        assert client.destroy_instance(ctxt, instance_uuid)['host'] == 'h1'


def test_actions_refused_by_state_and_unknown_instances(cloud, conf, db,
                                                        ctxt):
    instance_uuid = _active_instance(conf, db, ctxt)
    client = conductor_rpcapi.ConductorRPCAPI(conf)
    client.destroy_instance(ctxt, instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'deleted', timeout=10, what='the destroy')

    with pytest.raises(exception.InvalidState, match='is deleted'):
        client.reboot_instance(ctxt, instance_uuid)
    with pytest.raises(exception.InstanceNotFound):
        client.reboot_instance(ctxt, str(uuid.uuid4()))
    # A refused action leaves no work behind.
    assert db.work_get_all(unfinished=True) == []
    assert [w['action'] for w in db.work_get_all()] == ['build', 'destroy']


def test_migrate_through_the_conductor_picks_another_host(
        cloud, factory, conf, db, ctxt):
    factory.start_service('compute', host='h2')
    instance_uuid = _active_instance(conf, db, ctxt)
    src = db.instance_get(instance_uuid)['host']
    client = conductor_rpcapi.ConductorRPCAPI(conf)

    with pytest.raises(exception.InvalidInput, match='already on'):
        client.migrate_instance(ctxt, instance_uuid, dest=src)
    accepted = client.migrate_instance(ctxt, instance_uuid)

    assert accepted['host'] == src and accepted['dest'] != src
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['host'] ==
                     accepted['dest'] and _settled(db, instance_uuid),
                     timeout=15, what='the migration')


def test_claim_has_one_winner_and_fences_the_old_owner(db):
    db.instance_create('i-1', vm_state='active', host='h1')
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    assert work['host'] == 'h1'
    assert db.instance_get('i-1')['task_state'] == 'reboot_pending'

    first = db.work_claim(work, 'c2')
    second = db.work_claim(work, 'c3')

    assert first['conductor_host'] == 'c2' and first['takeovers'] == 1
    assert second is None
    # The old owner, if it was only slow, can no longer move the work on.
    with pytest.raises(exception.WorkTakenOver):
        db.work_update(work, step='done', finished=True,
                       instance={'host': 'h-elsewhere'})
    assert db.work_get(work['id'])['step'] == 'casting'
    assert db.instance_get('i-1')['host'] == 'h1'
    # Its new owner can, and the instance changes with the work.
    db.work_update(first, step='done', finished=True,
                   instance={'task_state': None})
    assert db.instance_get('i-1')['task_state'] is None


def test_guard_and_record_are_one_transaction(db):
    db.instance_create('i-1', vm_state='active', host='h1',
                       task_state='rebooting')
    with pytest.raises(exception.InstanceActionInProgress):
        db.work_create('i-1', 'destroy', 'casting', 'c1',
                       guard=('destroy_pending', ('active', 'error')))
    assert db.work_get_all() == []


def test_takeover_finishes_a_dead_conductors_build(factory, conf, db, ctxt):
    # Left at its first step by conductor c-dead, which never heartbeats.
    instance_uuid = str(uuid.uuid4())
    work = _build_work(db, instance_uuid, 'c-dead')
    factory.start_service('scheduler', host='s1')
    compute = factory.start_service('compute', host='h1')
    spawned = waiters.CastWaiter(compute.manager, 'spawn')

    factory.start_service('conductor', host='c2')   # takes over at start

    spawned.wait(timeout=10)
    waiters.wait_for(lambda: db.work_get(work['id'])['finished_at'],
                     timeout=10, what='the work to finish')
    done = db.work_get(work['id'])
    assert (done['conductor_host'], done['takeovers'], done['step']) == (
        'c2', 1, 'done')
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=10, what='the instance to be active')


def test_takeover_does_not_resend_what_the_compute_host_started(
        factory, conf, db, ctxt):
    db.instance_create('i-1', vm_state='active', host='h1')
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    # The compute host got the cast before c-dead died: it shows its own
    # running state.
    db.instance_update('i-1', task_state='rebooting')
    compute = factory.start_service('compute', host='h1')
    rebooted = waiters.CastWaiter(compute.manager, 'reboot')
    factory.start_service('conductor', host='c2')

    # The new conductor's start-up pass takes the work over (under the
    # threading backend a second, direct pass here would race it).
    waiters.wait_for(lambda: db.work_get(work['id'])['step'] == 'done',
                     timeout=10, what='the takeover to finish the work')
    assert rebooted.calls == []


def test_live_conductors_work_is_left_alone(factory, conf, db, ctxt):
    factory.start_service('conductor', host='c1')
    other = factory.start_service('conductor', host='c2')
    db.instance_create('i-1', vm_state='active', host='h1')
    # Recorded after c1 started: c1 runs it (here: nobody does), so it is
    # not c1's orphan and c1 is up, so it is not c2's to take.
    work = db.work_create('i-1', 'reboot', 'casting', 'c1',
                          guard=('reboot_pending', ('active',)))

    other.manager._take_over_orphaned_work(ctxt)

    assert db.work_get(work['id'])['conductor_host'] == 'c1'
    assert db.work_get(work['id'])['finished_at'] is None


def test_a_restarted_conductor_resumes_its_own_work(factory, conf, db,
                                                    ctxt):
    instance_uuid = str(uuid.uuid4())
    work = _build_work(db, instance_uuid, 'c1')
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')

    factory.start_service('conductor', host='c1')

    waiters.wait_for(lambda: db.work_get(work['id'])['finished_at'],
                     timeout=10, what='c1 to resume its work')
    done = db.work_get(work['id'])
    assert (done['conductor_host'], done['takeovers']) == ('c1', 0)


def test_a_build_with_no_compute_fails_and_closes_its_work(factory, conf,
                                                           db, ctxt):
    factory.start_service('conductor', host='c1')
    factory.start_service('scheduler', host='s1')
    instance_uuid = str(uuid.uuid4())

    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt, instance_uuid)

    instance = waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'error'
        and db.instance_get(instance_uuid), timeout=10, what='the failure')
    assert 'No valid host' in instance['fault']
    assert instance['task_state'] is None
    [work] = db.work_get_all(instance_uuid=instance_uuid)
    assert work['step'] == 'failed' and work['finished_at'] is not None


def test_finished_work_is_purged_after_the_retention(db, monkeypatch):
    db.instance_create('i-1', vm_state='active', host='h1')
    old = db.work_create('i-1', 'reboot', 'casting', 'c1')
    db.work_update(old, step='done', finished=True)
    unfinished = db.work_create('i-1', 'destroy', 'casting', 'c1')
    # An hour later, with a retention of one minute:
    later = models.utcnow() + datetime.timedelta(hours=1)
    monkeypatch.setattr(models, 'utcnow', lambda: later)

    assert db.work_purge_finished(60) == 1
    assert [w['id'] for w in db.work_get_all()] == [unfinished['id']]
