"""The conductor: guarded instance actions and takeover of a dead
conductor's work (fake:// transport, services in this process)."""

import datetime
import uuid

import pytest

from nova_lite.compute import rpcapi as compute_rpcapi
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


def _sent_casts(monkeypatch):
    """Record every compute cast a conductor sends, as it sends it.

    A conductor sends its cast before it records the step ``done``, so
    once the work is done this list is final: a test can assert an absence
    without waiting on the asynchronous delivery.
    """
    sent = []
    for method in ('spawn', 'reboot', 'destroy', 'migrate'):
        real = getattr(compute_rpcapi.ComputeRPCAPI, method)

        def record(self, ctxt, host, instance_uuid, *args, _real=real,
                   _method=method, **kwargs):
            sent.append((_method, host, instance_uuid))
            return _real(self, ctxt, host, instance_uuid, *args, **kwargs)
        monkeypatch.setattr(compute_rpcapi.ComputeRPCAPI, method, record)
    return sent


def test_takeover_does_not_resend_what_the_compute_host_started(
        factory, conf, db, ctxt, monkeypatch):
    db.instance_create('i-1', vm_state='active', host='h1')
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    # The compute host got the cast before c-dead died: it shows its own
    # running state.
    db.instance_update('i-1', task_state='rebooting')
    factory.start_service('compute', host='h1')
    sent = _sent_casts(monkeypatch)
    factory.start_service('conductor', host='c2')

    # The new conductor's start-up pass takes the work over (under the
    # threading backend a second, direct pass here would race it).
    waiters.wait_for(lambda: db.work_get(work['id'])['step'] == 'done',
                     timeout=10, what='the takeover to finish the work')
    assert sent == []


def test_a_takeover_resends_what_the_compute_host_has_not_started(
        factory, conf, db, ctxt, monkeypatch):
    db.instance_create('i-1', vm_state='active', host='h1')
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    compute = factory.start_service('compute', host='h1')
    rebooted = waiters.CastWaiter(compute.manager, 'reboot')
    sent = _sent_casts(monkeypatch)

    factory.start_service('conductor', host='c2')

    assert rebooted.wait(timeout=10) == {'instance_uuid': 'i-1',
                                         'work_id': work['id']}
    assert sent == [('reboot', 'h1', 'i-1')]
    waiters.wait_for(lambda: _settled(db, 'i-1'), timeout=10,
                     what='the reboot to finish')


def test_a_resend_that_crosses_the_original_reboots_once(
        factory, conf, db, ctxt, monkeypatch):
    """c-dead's cast is still queued at the compute host when c2 takes
    over: the instance still shows reboot_pending, so c2 re-sends, and the
    compute host gets the same work twice."""
    db.instance_create('i-1', vm_state='active', host='h1')
    compute = factory.start_service('compute', host='h1')
    compute.manager.driver.unwrapped.instances['i-1'] = {'state': 'running'}
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    reboots = []
    real_reboot = compute.manager.driver.reboot
    compute.manager.driver.reboot = lambda *a: (reboots.append(a),
                                                real_reboot(*a))[1]
    # Hold the original at the compute host until the re-send is out.
    resent = concurrency.Event()
    handled = []
    real_handler = compute.manager.reboot

    def held_handler(context, **kwargs):
        if not handled:
            handled.append('original')
            resent.wait(10)
        else:
            handled.append('resent')
        real_handler(context, **kwargs)
        handled.append('done')
    compute.manager.reboot = held_handler
    compute_rpcapi.ComputeRPCAPI(conf).reboot(ctxt, 'h1', 'i-1',
                                              work_id=work['id'])
    waiters.wait_for(lambda: handled, timeout=10,
                     what='the original to reach the compute host')
    sent = _sent_casts(monkeypatch)

    factory.start_service('conductor', host='c2')
    waiters.wait_for(lambda: db.work_get(work['id'])['step'] == 'done',
                     timeout=10, what='the takeover')
    assert sent == [('reboot', 'h1', 'i-1')]
    # The re-sent copy runs to the end before the original goes on: the
    # instance shows no task by then, as before any request.
    waiters.wait_for(lambda: 'done' in handled, timeout=10,
                     what='the re-sent copy to be handled')
    resent.set()

    waiters.wait_for(lambda: handled.count('done') == 2, timeout=10,
                     what='both copies to be handled')
    assert len(reboots) == 1
    assert _settled(db, 'i-1')


def test_repeated_build_casts_leave_the_instance_on_one_hypervisor(
        cloud, factory, conf, db, ctxt, monkeypatch):
    computes = [cloud['compute'].manager,
                factory.start_service('compute', host='h2').manager]
    conductor = cloud['conductor'].manager
    builds = waiters.CastWaiter(conductor, 'build_instance')
    spawns = [waiters.CastWaiter(compute, 'spawn') for compute in computes]
    sent = _sent_casts(monkeypatch)
    instance_uuid = str(uuid.uuid4())
    client = conductor_rpcapi.ConductorRPCAPI(conf)

    client.build_instance(ctxt, instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=10, what='the build')
    # The scheduler would now pick the other host: a repeat must not move
    # the instance's record there.
    first_host = db.instance_get(instance_uuid)['host']
    db.service_set_disabled(first_host, 'nova-lite-compute', True)
    for _ in range(2):   # a client retrying, or a message re-delivered
        client.build_instance(ctxt, instance_uuid)

    waiters.wait_for(lambda: len(builds.calls) == 3, timeout=10,
                     what='the three casts to be handled')
    # Every spawn sent so far has been handled by its compute host.
    waiters.wait_for(lambda: sum(len(s.calls) for s in spawns) == len(sent),
                     timeout=10, what='the spawns to be handled')
    running_on = [compute.host for compute in computes
                  if instance_uuid in compute.driver.unwrapped.instances]
    assert len(running_on) == 1, running_on
    assert db.instance_get(instance_uuid)['host'] == running_on[0]
    assert [w['action'] for w in db.work_get_all()] == ['build']


@pytest.mark.parametrize('dest,error', [
    ('no-such-host', exception.ComputeHostNotFound),
    ('h-disabled', exception.ComputeServiceUnavailable),
    ('h-down', exception.ComputeServiceUnavailable),
])
def test_migrate_to_an_unknown_down_or_disabled_host_is_refused(
        cloud, factory, conf, db, ctxt, monkeypatch, dest, error):
    factory.start_service('compute', host='h-disabled')
    db.service_set_disabled('h-disabled', 'nova-lite-compute', True)
    # A compute that last heartbeated an hour ago.
    an_hour_ago = models.utcnow() - datetime.timedelta(hours=1)
    with monkeypatch.context() as patch:
        patch.setattr(models, 'utcnow', lambda: an_hour_ago)
        db.service_register('h-down', 'nova-lite-compute', 'compute', '1.2')
    instance_uuid = _active_instance(conf, db, ctxt)
    before = db.instance_get(instance_uuid)

    with pytest.raises(error, match=dest):
        conductor_rpcapi.ConductorRPCAPI(conf).migrate_instance(
            ctxt, instance_uuid, dest=dest)

    after = db.instance_get(instance_uuid)
    assert (after['host'], after['vm_state'], after['task_state']) == (
        before['host'], 'active', None)
    assert db.work_get_all(unfinished=True) == []
    assert [w['action'] for w in db.work_get_all()] == ['build']


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


def test_conductor_purges_deleted_instances_after_the_retention(
        factory, conf, db, ctxt, monkeypatch):
    conf.set_override('work_retention', 60, group='conductor')
    conductor = factory.start_service('conductor', host='c1').manager
    db.instance_create('gone', vm_state='deleted', host='h1')
    db.instance_create('alive', vm_state='active', host='h1')
    later = models.utcnow() + datetime.timedelta(hours=1)
    monkeypatch.setattr(models, 'utcnow', lambda: later)

    conductor._purge_finished_work(ctxt)

    assert [i['uuid'] for i in db.instance_get_all()] == ['alive']
    assert db.instance_count_by_host() == {'h1': 1}
