"""tooz locks on a real etcd: a holder that lives keeps its lock past the
lease's TTL (its heartbeats keep the lease alive); one killed with SIGKILL
loses it when the lease runs out; and a conductor killed while its work
holds an instance's lock leaves neither the work nor the lock stuck."""

import signal
import uuid

from etcd3gw import lease as etcd_lease
from oslo_config import cfg
import pytest

from nova_lite import conf as nova_conf
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite import coordination
from nova_lite import exception
from nova_lite.testing import locks
from nova_lite.testing import waiters

# Seconds: short leases, so that a dead holder's run out soon.
LOCK_TIMEOUT = 3
CONDUCTOR_LOCK_TIMEOUT = 10


def _with_lock_timeout(url, seconds=LOCK_TIMEOUT):
    return '%s%slock_timeout=%d' % (url, '&' if '?' in url else '?',
                                    seconds)


@pytest.fixture
def etcd(etcd_url):
    """A Coordinator of the test process on etcd, to probe locks."""
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite')
    conf.set_override('backend_url', _with_lock_timeout(etcd_url),
                      group='coordination')
    coord = coordination.Coordinator(conf, 'probe-%s' % uuid.uuid4().hex)
    coord.start()
    yield coord
    coord.stop()


def _free(coord, name):
    try:
        with coord.locked([name], timeout=0):
            return True
    except exception.ResourceLocked:
        return False


def _lease_refreshes(coord, name, count):
    """Wait until the lease of lock ``name`` has been renewed ``count``
    times (its remaining TTL went up); the leases seen meanwhile."""
    client = coord._coordinator.client
    key = '/tooz/locks%s' % name      # tooz's prefix, then the name
    seen = {'ttl': None, 'refreshes': 0, 'leases': set()}

    def renewed():
        values = client.get(key, metadata=True)
        if not values:
            seen['leases'].add(None)    # gone: the holder lost it
            return True
        lease = values[0][1]['lease']
        seen['leases'].add(lease)
        ttl = _ttl(client, lease)
        if seen['ttl'] is not None and ttl > seen['ttl']:
            seen['refreshes'] += 1
        seen['ttl'] = ttl
        return seen['refreshes'] >= count

    waiters.wait_for(renewed, timeout=LOCK_TIMEOUT * count * 3,
                     interval=0.2, what='%d lease renewals' % count)
    return seen['leases']


def _ttl(client, lease_id):
    return etcd_lease.Lease(int(lease_id), client).ttl()


def test_a_live_holder_keeps_its_lock_and_a_killed_one_loses_it(
        etcd, etcd_url):
    name = coordination.instance_lock_name(str(uuid.uuid4()))
    holder = locks.Holder(_with_lock_timeout(etcd_url), [name])
    try:
        # Renewed three times at half the TTL: longer than one TTL, and
        # still the holder's.
        assert len(_lease_refreshes(etcd, name, 3)) == 1
        assert not _free(etcd, name)
    finally:
        holder.kill()
    assert holder.popen.returncode == -signal.SIGKILL
    # Nobody released it: it ends with its lease, and is then free.
    waiters.wait_for(lambda: _free(etcd, name), timeout=LOCK_TIMEOUT * 5,
                     what='the dead holder\'s lease to run out')


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def test_a_killed_conductors_locked_work_is_finished_by_another(
        factory, db, conf, ctxt, client_rpc, etcd, etcd_url):
    # The dead conductor's lease outlives its service record (down after
    # service_down_time, 3 s; the lease ends 5 to 10 s after the kill:
    # renewed every 5 s): the rescuer takes over while the lock is still
    # held, gives up after acquire_timeout and tries again at its next
    # takeover round, until the lease has run out.
    coordination_conf = {
        'backend_url': _with_lock_timeout(etcd_url, CONDUCTOR_LOCK_TIMEOUT),
        'acquire_timeout': 1}
    doomed = factory.start_daemon('nova-lite-conductor', 'ctl-doomed', extra={
        'DEFAULT': {'conductor_manager':
                    'nova_lite.testing.managers:StallingConductorManager'},
        'coordination': coordination_conf})
    others = [factory.start_daemon('nova-lite-scheduler', 'ctl1'),
              factory.start_daemon('nova-lite-compute', 'cpu1')]
    for daemon in [doomed] + others:
        waiters.wait_for_service(db, daemon.host, daemon.binary)
    instance_uuid = str(uuid.uuid4())
    name = coordination.instance_lock_name(instance_uuid)
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt,
                                                          instance_uuid)

    # It scheduled the instance and stalls before its cast, holding the
    # instance's lock; and dies there.
    work = waiters.wait_for(
        lambda: [w for w in db.work_get_all(instance_uuid=instance_uuid)
                 if w['step'] == 'casting'], timeout=20,
        what='the doomed conductor to reach its last step')[0]
    assert work['conductor_host'] == 'ctl-doomed'
    assert not _free(etcd, name)
    # Up while the doomed one still is: it takes over once that is down.
    rescuer = factory.start_daemon('nova-lite-conductor', 'ctl2', extra={
        'coordination': coordination_conf})
    waiters.wait_for_service(db, rescuer.host, rescuer.binary)
    doomed.signal(signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL

    instance = waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=60,
        what='the instance to be built by the second conductor')
    assert (instance['host'], instance['task_state']) == ('cpu1', None)
    done = db.work_get(work['id'])
    assert (done['conductor_host'], done['takeovers'], done['step']) == (
        'ctl2', 1, 'done')
    assert done['finished_at'] is not None
    assert db.work_get_all(unfinished=True) == []
    log = rescuer.log_text()
    assert 'Taking over build of instance %s from dead conductor ' \
        'ctl-doomed' % instance_uuid in log
    assert 'build of instance %s waits: Instance %s is locked' % (
        instance_uuid, instance_uuid) in log
    # Released at the end of the work (or, were it not, its lease runs
    # out): never stuck.
    waiters.wait_for(lambda: _free(etcd, name),
                     timeout=CONDUCTOR_LOCK_TIMEOUT * 2,
                     what='the instance lock to be free')
