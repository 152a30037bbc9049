"""The conductor holds the tooz locks of an instance and of its attached
volumes while a work runs (file backend; the services in this process, the
locks probed and held from other processes)."""

import uuid

import pytest

from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import concurrency
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite import coordination
from nova_lite.db import models
from nova_lite import exception
from nova_lite.testing import locks
from nova_lite.testing import waiters


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture
def url(conf):
    return coordination.backend_url(conf)


def _attach_volumes(db, instance_uuid, *volume_ids):
    with db._session() as session, session.begin():
        for volume_id in volume_ids:
            session.add(models.Volume(
                id=volume_id, size=1, status='in-use' if instance_uuid
                else 'available', instance_uuid=instance_uuid))


class _BlockedReboot:
    """The conductor's reboot cast stops until ``release``: the moment a
    work holds its locks."""

    def __init__(self, monkeypatch):
        self.entered = concurrency.Event()
        self._go = concurrency.Event()
        real = compute_rpcapi.ComputeRPCAPI.reboot

        def reboot(rpcapi, *args, **kwargs):
            self.entered.set()
            self._go.wait()
            return real(rpcapi, *args, **kwargs)
        monkeypatch.setattr(compute_rpcapi.ComputeRPCAPI, 'reboot', reboot)

    def wait(self):
        assert self.entered.wait(10), 'the reboot cast never came'

    def release(self):
        self._go.set()


def _names(instance_uuid):
    return coordination.lock_names(instance_uuid, ['v1', 'v2', 'v-free'])


def test_a_work_holds_its_instance_and_volumes_until_it_ends(
        factory, conf, db, ctxt, url, monkeypatch):
    for topic, host in (('conductor', 'c1'), ('scheduler', 's1'),
                        ('compute', 'h1')):
        factory.start_service(topic, host=host)
    instance_uuid = str(uuid.uuid4())
    client = conductor_rpcapi.ConductorRPCAPI(conf)
    client.build_instance(ctxt, instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=10, what='the build')
    _attach_volumes(db, instance_uuid, 'v2', 'v1')
    _attach_volumes(db, None, 'v-free')
    blocked = _BlockedReboot(monkeypatch)

    call = concurrency.spawn(client.reboot_instance, ctxt, instance_uuid)
    blocked.wait()

    names = _names(instance_uuid)
    assert locks.free_of(url, names) == {
        names[0]: False, 'nova-lite-volume-v1': False,
        'nova-lite-volume-v2': False, 'nova-lite-volume-v-free': True}
    blocked.release()
    assert call.wait()['action'] == 'reboot'
    assert all(locks.free_of(url, names).values())


def test_a_resumed_work_holds_the_locks_too(factory, conf, db, ctxt, url,
                                            monkeypatch):
    db.instance_create('i-1', vm_state='active', host='h1')
    _attach_volumes(db, 'i-1', 'v1')
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    factory.start_service('compute', host='h1')
    blocked = _BlockedReboot(monkeypatch)

    factory.start_service('conductor', host='c2')   # takes over at start
    blocked.wait()

    assert locks.free_of(url, coordination.lock_names('i-1', ['v1'])) == {
        'nova-lite-instance-i-1': False, 'nova-lite-volume-v1': False}
    blocked.release()
    waiters.wait_for(lambda: db.work_get(work['id'])['step'] == 'done',
                     timeout=10, what='the takeover to finish the work')
    assert all(locks.free_of(
        url, coordination.lock_names('i-1', ['v1'])).values())


def test_a_new_work_whose_locks_stay_held_fails_cleanly(
        factory, conf, db, ctxt, url):
    conf.set_override('acquire_timeout', 0.3, group='coordination')
    factory.start_service('conductor', host='c1')
    db.instance_create('i-1', vm_state='active', host='h1')
    _attach_volumes(db, 'i-1', 'v1')
    holder = locks.Holder(url, [coordination.volume_lock_name('v1')])
    try:
        with pytest.raises(exception.ResourceLocked,
                           match='Volume v1 is locked: another action '
                                 'holds it'):
            conductor_rpcapi.ConductorRPCAPI(conf).reboot_instance(ctxt,
                                                                   'i-1')
    finally:
        holder.kill()
    # Nothing was sent to the compute host: the instance is free again.
    assert db.instance_get('i-1')['task_state'] is None
    assert [(w['step'], w['finished_at'] is not None)
            for w in db.work_get_all(instance_uuid='i-1')] == [
        ('failed', True)]
    # And the instance lock it had taken is given back.
    assert all(locks.free_of(url, coordination.lock_names('i-1')).values())


def test_a_resumed_work_whose_locks_are_held_waits_for_the_next_round(
        factory, conf, db, ctxt, url, caplog):
    # A dead holder whose lease has not run out yet, as with etcd.
    conf.set_override('acquire_timeout', 0.3, group='coordination')
    db.instance_create('i-1', vm_state='active', host='h1')
    work = db.work_create('i-1', 'reboot', 'casting', 'c-dead',
                          guard=('reboot_pending', ('active',)))
    holder = locks.Holder(url, coordination.lock_names('i-1'))
    compute = factory.start_service('compute', host='h1')
    rebooted = waiters.CastWaiter(compute.manager, 'reboot')
    caplog.set_level('WARNING', logger='nova_lite.conductor.manager')
    factory.start_service('conductor', host='c2')
    try:
        # Taken over, and tried (and given up) at least twice.
        waiters.wait_for(
            lambda: db.work_get(work['id'])['conductor_host'] == 'c2',
            timeout=10, what='the takeover')
        waiters.wait_for(lambda: _lock_waits(caplog) >= 2, timeout=10,
                         what='two takeover rounds to find it locked')
        # Kept: still c2's, unfinished, and the instance still held.
        still = db.work_get(work['id'])
        assert (still['conductor_host'], still['finished_at'],
                still['step']) == ('c2', None, 'casting')
        assert db.instance_get('i-1')['task_state'] == 'reboot_pending'
    finally:
        holder.kill()

    assert rebooted.wait(timeout=10)['instance_uuid'] == 'i-1'
    waiters.wait_for(lambda: db.work_get(work['id'])['step'] == 'done',
                     timeout=10, what='the work to be finished')
    waiters.wait_for(lambda: db.instance_get('i-1')['task_state'] is None,
                     timeout=10, what='the reboot to end')


def _lock_waits(caplog):
    return sum('reboot of instance i-1 waits: Instance i-1 is locked' in
               record.getMessage() for record in caplog.records)
