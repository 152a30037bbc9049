"""Compute: driver tasks, job control in the manager, block jobs, bad input.

In-process services on the fake:// transport, with the fake driver's small
test latencies (nova_lite.testing.fixtures.TEST_DEFAULTS).
"""

import time
import uuid

import pytest
from sqlalchemy import exc as sa_exc

from nova_lite import baserpc
from nova_lite.compute import block_jobs
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import concurrency
from nova_lite import context
from nova_lite import exception
from nova_lite.testing import waiters
from nova_lite import virt
from nova_lite.virt import jobs
from nova_lite.virt import tasks


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def _spawned(factory, db, conf, ctxt, host='h1'):
    svc = factory.start_service('compute', host=host)
    instance_uuid = str(uuid.uuid4())
    compute_rpcapi.ComputeRPCAPI(conf).spawn(ctxt, host, instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=10, what='instance active')
    return svc, instance_uuid


# -- driver tasks ---------------------------------------------------------

@pytest.fixture
def driver_with_events(conf):
    driver = virt.load_driver(conf, 'h1')
    events = tasks.TaskEvents()
    queue = concurrency.HubQueue(lambda e: events.done(e['task_id']))
    driver.register_event_callback(queue.put)
    driver.unwrapped.instances['u1'] = {'state': 'running'}
    yield driver, events
    queue.close()


def test_unknown_driver_name_is_config_error(conf):
    conf.set_override('driver', 'qemu-someday', group='compute')
    with pytest.raises(exception.DriverNotFound) as err:
        virt.load_driver(conf, 'h1')
    assert "'qemu-someday'" in str(err.value) and 'fake' in str(err.value)


def test_completion_event_wakes_the_waiter(driver_with_events):
    driver, events = driver_with_events
    task = tasks.Task(driver, driver.reboot('u1'), 'reboot', 'u1', events,
                      poll_interval=30)
    started = time.monotonic()
    assert task.wait()['state'] == 'success'
    # Woken by the event, not by a 30 s poll: one poll, one after the event.
    assert task.polls == 2
    assert time.monotonic() - started < 10


def test_without_events_it_polls(conf):
    conf.set_override('emit_events', False, group='fake_driver')
    driver = virt.load_driver(conf, 'h1')
    driver.unwrapped.instances['u1'] = {'state': 'running'}
    task = tasks.Task(driver, driver.reboot('u1'), 'reboot', 'u1',
                      tasks.TaskEvents(), poll_interval=0.02)
    assert task.wait()['state'] == 'success'
    assert task.polls >= 3


def test_failed_task_carries_driver_error(driver_with_events):
    driver, events = driver_with_events
    driver.unwrapped.inject_failure('u1', 'reboot', 'disk on fire')
    task = tasks.Task(driver, driver.reboot('u1'), 'reboot', 'u1', events,
                      poll_interval=0.05)
    with pytest.raises(exception.TaskFailed) as err:
        task.wait()
    assert 'disk on fire' in str(err.value)


def test_task_timeout_cancels_it(driver_with_events, conf):
    driver, events = driver_with_events
    conf.set_override('operation_seconds', 5, group='fake_driver')
    slow = virt.load_driver(conf, 'h1')
    slow.unwrapped.instances['u1'] = {'state': 'running'}
    task_id = slow.reboot('u1')
    task = tasks.Task(slow, task_id, 'reboot', 'u1', tasks.TaskEvents(),
                      poll_interval=0.02, timeout=0.1)
    with pytest.raises(exception.TaskTimeout):
        task.wait()
    assert slow.poll_task(task_id)['state'] == 'cancelled'


def test_cancelled_task(driver_with_events, conf):
    conf.set_override('operation_seconds', 5, group='fake_driver')
    driver = virt.load_driver(conf, 'h1')
    driver.unwrapped.instances['u1'] = {'state': 'running'}
    task = tasks.Task(driver, driver.reboot('u1'), 'reboot', 'u1',
                      tasks.TaskEvents(), poll_interval=0.02)
    waiter = concurrency.spawn(task.wait)
    concurrency.sleep(0.05)
    task.cancel()
    with pytest.raises(exception.TaskCancelled):
        waiter.wait()


def test_driver_calls_never_run_on_the_hub(conf):
    """Every call of the wrapped driver runs in a native thread."""
    driver = virt.load_driver(conf, 'h1')
    hub_thread = concurrency.native_thread_id()
    seen = []
    real = driver.unwrapped.get_info

    def recording(instance_uuid):
        seen.append(concurrency.native_thread_id())
        return real(instance_uuid)

    driver.unwrapped.get_info = recording
    driver.unwrapped.instances['u1'] = {'state': 'running'}
    assert driver.get_info('u1') == {'state': 'running'}
    assert seen and seen[0] != hub_thread


# -- the manager ------------------------------------------------------------

def test_spawn_reboot_destroy_lifecycle(factory, db, conf, ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    assert client.get_info(ctxt, 'h1', instance_uuid)['state'] == 'running'
    rebooted = waiters.CastWaiter(svc.manager, 'reboot')
    client.reboot(ctxt, 'h1', instance_uuid)
    rebooted.wait()
    destroyed = waiters.CastWaiter(svc.manager, 'destroy')
    client.destroy(ctxt, 'h1', instance_uuid)
    destroyed.wait()
    row = db.instance_get(instance_uuid)
    assert (row['vm_state'], row['power_state'], row['task_state']) == (
        'deleted', 'nostate', None)
    assert instance_uuid not in svc.manager.driver.unwrapped.instances


def test_driver_error_marks_instance_error_and_service_lives(factory, db,
                                                             conf, ctxt):
    svc = factory.start_service('compute', host='h1')
    instance_uuid = str(uuid.uuid4())
    svc.manager.driver.unwrapped.inject_failure(instance_uuid, 'spawn',
                                                'no space left on device')
    spawned = waiters.CastWaiter(svc.manager, 'spawn')
    compute_rpcapi.ComputeRPCAPI(conf).spawn(ctxt, 'h1', instance_uuid)
    spawned.wait()
    row = db.instance_get(instance_uuid)
    assert row['vm_state'] == 'error'
    assert 'no space left on device' in row['fault']
    assert baserpc.BaseRPCAPI(conf, 'compute').ping(
        ctxt, 'alive', host='h1')['arg'] == 'alive'


@pytest.mark.parametrize('call,error', [
    (lambda c, x, u: c.get_stats(x, 'h1', 'no-such-uuid'),
     exception.InstanceNotFound),
    (lambda c, x, u: c.get_info(x, 'h1', 'no-such-uuid'),
     exception.InstanceNotFound),
    (lambda c, x, u: c.block_job_start(x, 'h1', u, 'vdz', 'copy'),
     exception.DiskNotFound),
    (lambda c, x, u: c.block_job_start(x, 'h1', u, 'vda', 'shred'),
     exception.InvalidBlockJobKind),
    (lambda c, x, u: c.block_job_abort(x, 'h1', u, 'vda', flags=4),
     exception.InvalidFlags),
    (lambda c, x, u: c.block_job_abort(x, 'h1', u, 'vda', flags='all'),
     exception.InvalidInput),
    (lambda c, x, u: c.block_job_abort(x, 'h1', u, 'vda'),
     exception.BlockJobNotFound),
])
def test_bad_input_is_named_error_and_changes_nothing(factory, db, conf,
                                                      ctxt, call, error):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    with pytest.raises(error):
        call(client, ctxt, instance_uuid)
    assert svc.manager.driver.unwrapped.block_jobs == {}
    assert db.instance_get(instance_uuid)['vm_state'] == 'active'
    assert client.get_info(ctxt, 'h1', instance_uuid)['state'] == 'running'


# -- block jobs -------------------------------------------------------------

def test_block_job_start_refuses_a_busy_disk(factory, db, conf, ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    info = client.block_job_start(ctxt, 'h1', instance_uuid, 'vda', 'copy')
    assert info['kind'] == 'copy' and not info['ending']
    with pytest.raises(exception.BlockJobBusy):
        client.block_job_start(ctxt, 'h1', instance_uuid, 'vda', 'commit')
    assert client.block_job_info(ctxt, 'h1', instance_uuid, 'vdb') is None


def test_sync_abort_returns_once_job_is_gone(factory, db, conf, ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    client.block_job_start(ctxt, 'h1', instance_uuid, 'vda', 'copy')
    assert client.block_job_abort(ctxt, 'h1', instance_uuid, 'vda') == {
        'ended': True}
    assert client.block_job_info(ctxt, 'h1', instance_uuid, 'vda') is None


def test_async_abort_returns_at_once(factory, db, conf, ctxt):
    conf.set_override('block_job_abort_seconds', 0.5, group='fake_driver')
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    client.block_job_start(ctxt, 'h1', instance_uuid, 'vda', 'commit')
    assert client.block_job_abort(ctxt, 'h1', instance_uuid, 'vda',
                                  flags=block_jobs.ABORT_ASYNC) == {
        'ended': False}
    assert client.block_job_info(ctxt, 'h1', instance_uuid,
                                 'vda')['ending'] is True
    with pytest.raises(exception.BlockJobEnding) as err:
        client.block_job_abort(ctxt, 'h1', instance_uuid, 'vda')
    assert 'still being ended' in str(err.value)
    waiters.wait_for(lambda: client.block_job_info(
        ctxt, 'h1', instance_uuid, 'vda') is None, timeout=5,
        what='the aborted job to go')


def test_pivot_needs_a_ready_copy(factory, db, conf, ctxt):
    conf.set_override('block_job_seconds', 0.5, group='fake_driver')
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    client.block_job_start(ctxt, 'h1', instance_uuid, 'vda', 'copy')
    with pytest.raises(exception.BlockJobNotReady):
        client.block_job_abort(ctxt, 'h1', instance_uuid, 'vda',
                               flags=block_jobs.PIVOT)
    # Refused, and nothing changed: the job still runs, not "ending".
    assert client.block_job_info(ctxt, 'h1', instance_uuid,
                                 'vda')['ending'] is False
    waiters.wait_for(lambda: client.block_job_info(
        ctxt, 'h1', instance_uuid, 'vda')['ready'], timeout=5,
        what='the copy to be ready')
    assert client.block_job_abort(ctxt, 'h1', instance_uuid, 'vda',
                                  flags=block_jobs.PIVOT) == {'ended': True}


def test_sync_abort_timeout_leaves_a_consistent_state(factory, db, conf,
                                                      ctxt):
    conf.set_override('block_job_abort_seconds', 1.5, group='fake_driver')
    conf.set_override('block_job_abort_timeout', 0.3, group='compute')
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    client = compute_rpcapi.ComputeRPCAPI(conf)
    client.block_job_start(ctxt, 'h1', instance_uuid, 'vdb', 'pull')
    with pytest.raises(exception.BlockJobAbortTimeout) as err:
        client.block_job_abort(ctxt, 'h1', instance_uuid, 'vdb')
    assert 'still being ended' in str(err.value)
    assert client.block_job_info(ctxt, 'h1', instance_uuid,
                                 'vdb')['ending'] is True
    with pytest.raises(exception.BlockJobEnding):
        client.block_job_abort(ctxt, 'h1', instance_uuid, 'vdb')
    waiters.wait_for(lambda: client.block_job_info(
        ctxt, 'h1', instance_uuid, 'vdb') is None, timeout=5,
        what='the job to end eventually')
    # The disk is free again.
    client.block_job_start(ctxt, 'h1', instance_uuid, 'vdb', 'pull')


# -- the libvirt developers' test ---------------------------------------------

def test_100_migrations_with_concurrent_stats(factory, db, conf, ctxt):
    conf.set_override('operation_seconds', 0.08, group='fake_driver')
    conf.set_override('task_poll_interval', 0.01, group='compute')
    managers = {host: factory.start_service('compute', host=host).manager
                for host in ('h1', 'h2')}
    instance_uuid = str(uuid.uuid4())
    compute_rpcapi.ComputeRPCAPI(conf).spawn(ctxt, 'h1', instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=10, what='instance active')
    stats = {'answered': 0, 'moved': 0, 'during_migration': 0,
             'failed': []}
    stop = concurrency.Event()

    def stats_loop():
        while not stop.is_set():
            owner = db.instance_get(instance_uuid)['host']
            try:
                reply = client.get_stats(ctxt, owner, instance_uuid,
                                         timeout=10)
            except (exception.InstanceNotOnHost, exception.InstanceNotFound):
                stats['moved'] += 1   # switched host between look-up and call
            except Exception as exc:  # noqa: BLE001 - the test's verdict
                stats['failed'].append(repr(exc))
            else:
                stats['answered'] += 1
                if reply['during_async_job'] == jobs.MIGRATION_OUT:
                    stats['during_migration'] += 1
            concurrency.sleep(0)

    client = compute_rpcapi.ComputeRPCAPI(conf)
    loops = [concurrency.spawn(stats_loop) for _ in range(4)]
    histories = []
    for n in range(100):
        source, dest = ('h1', 'h2') if n % 2 == 0 else ('h2', 'h1')
        histories.append(managers[source].jobs[instance_uuid])
        managers[source].migrate(ctxt, instance_uuid, dest)
        row = db.instance_get(instance_uuid)
        assert (row['host'], row['vm_state']) == (dest, 'active'), row
        waiters.wait_for(lambda: instance_uuid in
                         managers[dest].driver.unwrapped.instances,
                         timeout=5, what='the destination to adopt it')
    stop.set()
    for loop in loops:
        loop.wait()
    assert stats['failed'] == []
    assert stats['answered'] > 100
    assert stats['during_migration'] > 0
    for mgr in managers.values():
        assert mgr.driver.unwrapped.max_monitor_overlap == 1
    # A QUERY ran beside the migration only inside its window.
    beside = [entry for history in histories for entry in history.history
              if entry[0] == 'begin' and entry[2] == jobs.MIGRATION_OUT]
    assert beside and all(entry[3] is True for entry in beside)


def test_late_task_events_are_dropped_not_kept():
    events = tasks.TaskEvents()
    events.done('task-that-nobody-waits-for')
    assert events._events == {}
    waiter = events.expect('t1')
    events.done('t1')
    assert waiter.is_set()
    events.forget('t1')
    events.done('t1')   # a late duplicate after the waiter finished
    assert events._events == {}


def test_repeated_spawn_destroy_and_migrate_are_ignored(factory, db, conf,
                                                        ctxt):
    """What a conductor that took over may re-send: nothing runs twice."""
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    manager = svc.manager
    calls = []

    def counted(name):
        real = getattr(manager.driver, name)

        def call(*args):
            calls.append(name)
            return real(*args)
        return call

    for name in ('spawn', 'destroy', 'migrate'):
        setattr(manager.driver, name, counted(name))

    manager.spawn(ctxt, instance_uuid)            # already active
    # Already migrating (as the first request left it): the repeat is
    # dropped before it queues behind the running migration.
    db.instance_update(instance_uuid, task_state='migrating')
    manager.migrate(ctxt, instance_uuid, 'h2')
    db.instance_update(instance_uuid, task_state=None)
    manager.destroy(ctxt, instance_uuid)
    manager.destroy(ctxt, instance_uuid)          # already deleted

    assert calls == ['destroy']
    row = db.instance_get(instance_uuid)
    assert (row['vm_state'], row['task_state'], row['fault']) == (
        'deleted', None, None)


# -- off the happy path ---------------------------------------------------------

def _driver_calls(manager, *names):
    """Count the driver's calls of ``names`` (a list, in call order)."""
    calls = []

    def counted(name):
        real = getattr(manager.driver, name)

        def call(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)
        return call

    for name in names:
        setattr(manager.driver, name, counted(name))
    return calls


def _claimed(db, instance_uuid, action, conductor_host='c1'):
    """Claim the instance as the conductor does; the work record."""
    task_state = {'reboot': 'reboot_pending', 'destroy': 'destroy_pending',
                  'migrate': 'migrate_pending'}[action]
    return db.work_create(instance_uuid, action, 'casting', conductor_host,
                          guard=(task_state, ('active', 'error')))


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


@pytest.mark.parametrize('operation,args,where', [
    ('reboot', (), 'driver'),
    ('reboot', (), 'db'),
    ('destroy', (), 'driver'),
    ('migrate', ('h2',), 'driver'),
    ('migrate', ('h2',), 'db'),
])
def test_an_unexpected_error_never_leaves_task_state_set(
        factory, db, conf, ctxt, operation, args, where):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    manager = svc.manager
    if operation == 'migrate':
        factory.start_service('compute', host='h2')   # it prepares
    work = _claimed(db, instance_uuid, operation)
    if where == 'driver':
        setattr(manager.driver, operation,
                _raise(RuntimeError('hypervisor bug')))
    else:
        # The operation's last write fails once (e.g. the DB went away).
        real_update = db.instance_update
        failures = []

        def update_once(uuid, **values):
            if values.get('task_state', 'x') is None and not failures:
                failures.append(values)
                raise sa_exc.OperationalError('UPDATE', {}, 'gone away')
            return real_update(uuid, **values)
        manager.db.instance_update = update_once

    getattr(manager, operation)(ctxt, instance_uuid, *args,
                                work_id=work['id'])      # never raises

    row = db.instance_get(instance_uuid)
    assert (row['vm_state'], row['task_state']) == ('error', None), row
    assert ('hypervisor bug' if where == 'driver' else 'gone away') in \
        row['fault']
    # The instance is free for the next action, e.g. a destroy.
    db.instance_begin_action(instance_uuid, 'destroy', 'destroy_pending',
                             ('active', 'error'))


def test_a_wait_that_ends_abnormally_cancels_the_task(conf):
    conf.set_override('operation_seconds', 5, group='fake_driver')
    driver = virt.load_driver(conf, 'h1')
    driver.unwrapped.instances['u1'] = {'state': 'running'}
    task_id = driver.reboot('u1')
    task = tasks.Task(driver, task_id, 'reboot', 'u1', tasks.TaskEvents(),
                      poll_interval=0.02,
                      on_poll=_raise(RuntimeError('poll handler bug')))
    with pytest.raises(RuntimeError):
        task.wait()
    # Nothing runs on that nobody waits for.
    assert driver.poll_task(task_id)['state'] == 'cancelled'


def test_migrate_to_its_own_host_releases_the_claim(factory, db, conf,
                                                    ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    work = _claimed(db, instance_uuid, 'migrate')
    calls = _driver_calls(svc.manager, 'migrate')

    svc.manager.migrate(ctxt, instance_uuid, 'h1', work_id=work['id'])

    row = db.instance_get(instance_uuid)
    assert (row['host'], row['vm_state'], row['task_state']) == (
        'h1', 'active', None)
    assert calls == []


def test_a_resent_request_is_carried_out_once(factory, db, conf, ctxt):
    """A takeover re-sends what it cannot tell was received: the compute
    runs each work once, whichever copy comes first."""
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    manager = svc.manager
    calls = _driver_calls(manager, 'reboot', 'destroy')
    reboot = _claimed(db, instance_uuid, 'reboot')

    manager.reboot(ctxt, instance_uuid, work_id=reboot['id'])
    manager.reboot(ctxt, instance_uuid, work_id=reboot['id'])
    destroy = _claimed(db, instance_uuid, 'destroy')
    manager.destroy(ctxt, instance_uuid, work_id=destroy['id'])
    manager.destroy(ctxt, instance_uuid, work_id=destroy['id'])

    assert calls == ['reboot', 'destroy']


def test_a_stale_request_never_takes_a_newer_works_claim(factory, db, conf,
                                                         ctxt):
    """A re-sent migrate of an old, finished work arrives while a newer
    migrate holds the instance: only the newer one may run, to its own
    destination."""
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    for host in ('h2', 'h3'):
        factory.start_service('compute', host=host)
    old = _claimed(db, instance_uuid, 'migrate')
    db.instance_update(instance_uuid, task_state=None)   # it was done
    new = _claimed(db, instance_uuid, 'migrate')
    calls = _driver_calls(svc.manager, 'migrate')

    svc.manager.migrate(ctxt, instance_uuid, 'h2', work_id=old['id'])
    assert calls == []
    assert db.instance_get(instance_uuid)['task_state'] == 'migrate_pending'

    svc.manager.migrate(ctxt, instance_uuid, 'h3', work_id=new['id'])
    row = db.instance_get(instance_uuid)
    assert (row['host'], row['task_state']) == ('h3', None)


def test_no_job_state_is_kept_for_an_instance_that_left(factory, db, conf,
                                                        ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    dest = factory.start_service('compute', host='h2').manager
    client = compute_rpcapi.ComputeRPCAPI(conf)
    assert instance_uuid in svc.manager.jobs

    svc.manager.migrate(ctxt, instance_uuid, 'h2')
    assert instance_uuid not in svc.manager.jobs
    # A late query on the old host leaves nothing behind either.
    with pytest.raises(exception.InstanceNotOnHost):
        client.get_stats(ctxt, 'h1', instance_uuid)
    assert len(svc.manager.jobs) == 0

    waiters.wait_for(lambda: instance_uuid in dest.driver.unwrapped.instances,
                     timeout=5, what='the destination to adopt it')
    dest.destroy(ctxt, instance_uuid)
    assert len(dest.jobs) == 0


def test_finished_driver_tasks_are_pruned(factory, db, conf, ctxt):
    svc = factory.start_service('compute', host='h1')
    fake = svc.manager.driver.unwrapped
    fake.task_retention = 0
    for _ in range(5):
        svc.manager.spawn(ctxt, str(uuid.uuid4()))

    # Each start drops what finished before it: only the last is left.
    assert len(fake.tasks) == 1
    assert fake._in_monitor == {}


def test_a_compute_capped_at_1_1_gets_requests_without_work_id(
        factory, db, conf, ctxt):
    """During an upgrade: a 1.1 compute would refuse the unknown argument,
    so the request goes without it (and the host falls back to accepting
    the conductor's pending state or no task)."""
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    conf.set_override('compute', '1.1', group='upgrade_levels')
    rebooted = waiters.CastWaiter(svc.manager, 'reboot')
    work = _claimed(db, instance_uuid, 'reboot')

    compute_rpcapi.ComputeRPCAPI(conf).reboot(ctxt, 'h1', instance_uuid,
                                              work_id=work['id'])

    assert rebooted.wait() == {'instance_uuid': instance_uuid}
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['task_state']
                     is None, timeout=10, what='the reboot to finish')
    assert db.instance_get(instance_uuid)['vm_state'] == 'active'


# -- live migration: pre_live_migration and rollback (1.3) ---------------

def test_a_failed_migration_rolls_back_and_stays_active(factory, db, conf,
                                                        ctxt):
    """The driver's migration fails: the destination is told to roll
    back, and the instance (whose source runs on) stays active here with
    the fault recorded."""
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    dest = factory.start_service('compute', host='h2').manager
    rolled_back = waiters.CastWaiter(
        dest, 'rollback_live_migration_at_destination')
    aborted = []
    dest.driver.unwrapped.abort_incoming = aborted.append
    svc.manager.driver.unwrapped.inject_failure(instance_uuid, 'migrate',
                                                'stream broke')
    work = _claimed(db, instance_uuid, 'migrate')

    svc.manager.migrate(ctxt, instance_uuid, 'h2', work_id=work['id'])

    row = db.instance_get(instance_uuid)
    assert (row['host'], row['vm_state'], row['task_state'],
            row['power_state']) == ('h1', 'active', None, 'running'), row
    assert 'stream broke' in row['fault']
    assert rolled_back.wait() == {'instance_uuid': instance_uuid}
    assert aborted == [instance_uuid]
    assert instance_uuid not in dest.jobs
    # The source still has it, and it can migrate again.
    work = _claimed(db, instance_uuid, 'migrate')
    svc.manager.migrate(ctxt, instance_uuid, 'h2', work_id=work['id'])
    assert db.instance_get(instance_uuid)['host'] == 'h2'


def test_a_destination_that_cannot_prepare_refuses_by_name(factory, db,
                                                           conf, ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    dest = factory.start_service('compute', host='h2').manager
    dest.driver.unwrapped.name = 'other'    # e.g. a qemu compute
    rolled_back = waiters.CastWaiter(
        dest, 'rollback_live_migration_at_destination')
    calls = _driver_calls(svc.manager, 'migrate')
    client = compute_rpcapi.ComputeRPCAPI(conf)
    with pytest.raises(exception.MigrationPreCheckError,
                       match='receives only from other'):
        client.pre_live_migration(ctxt, 'h2', instance_uuid,
                                  {'driver': 'fake'})

    svc.manager.migrate(ctxt, instance_uuid, 'h2')

    row = db.instance_get(instance_uuid)
    assert (row['host'], row['vm_state'], row['task_state']) == (
        'h1', 'active', None), row
    assert 'Cannot migrate instance' in row['fault']
    assert calls == []          # the source's driver never started
    rolled_back.wait()


def test_a_source_gone_after_a_failed_migration_is_error(factory, db, conf,
                                                         ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    factory.start_service('compute', host='h2')
    fake = svc.manager.driver.unwrapped
    fake.inject_failure(instance_uuid, 'migrate', 'source died')
    real_get_info = fake.get_info
    fake.get_info = lambda uuid: dict(real_get_info(uuid), state='crashed')

    svc.manager.migrate(ctxt, instance_uuid, 'h2')

    row = db.instance_get(instance_uuid)
    assert (row['host'], row['vm_state'], row['task_state']) == (
        'h1', 'error', None), row


def test_a_1_2_destination_migrates_without_pre_live_migration(
        factory, db, conf, ctxt):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    dest = factory.start_service('compute', host='h2').manager
    conf.set_override('compute', '1.2', group='upgrade_levels')
    prepares = _driver_calls(dest, 'prepare_incoming')

    svc.manager.migrate(ctxt, instance_uuid, 'h2')

    row = db.instance_get(instance_uuid)
    assert (row['host'], row['vm_state'], row['task_state']) == (
        'h2', 'active', None), row
    assert prepares == []


# -- power events ---------------------------------------------------------

def test_power_events_update_the_state_and_notify(factory, db, conf, ctxt,
                                                  monkeypatch):
    svc, instance_uuid = _spawned(factory, db, conf, ctxt)
    manager = svc.manager
    sent = []
    monkeypatch.setattr(manager, '_notify',
                        lambda c, event_type, payload: sent.append(
                            (event_type, payload)))
    # An action in progress owns the state: ignored.
    db.instance_update(instance_uuid, task_state='rebooting')
    manager._handle_event({'type': 'power', 'instance_uuid': instance_uuid,
                           'state': 'paused', 'reason': 'STOP'})
    assert db.instance_get(instance_uuid)['power_state'] == 'running'
    db.instance_update(instance_uuid, task_state=None)
    manager._handle_event({'type': 'power', 'instance_uuid': instance_uuid,
                           'state': 'paused', 'reason': 'STOP'})
    assert db.instance_get(instance_uuid)['power_state'] == 'paused'
    assert sent == []
    manager._handle_event({'type': 'power', 'instance_uuid': instance_uuid,
                           'state': 'crashed', 'reason': 'QEMU exited'})
    assert db.instance_get(instance_uuid)['power_state'] == 'crashed'
    assert sent == [('compute.instance.power_off', {
        'instance_uuid': instance_uuid, 'host': 'h1', 'state': 'crashed',
        'reason': 'QEMU exited'})]
    # Another host's instance is left alone.
    db.instance_update(instance_uuid, host='h9', power_state='running')
    manager._handle_event({'type': 'power', 'instance_uuid': instance_uuid,
                           'state': 'shutdown', 'reason': 'x'})
    assert db.instance_get(instance_uuid)['power_state'] == 'running'
    assert len(sent) == 1
