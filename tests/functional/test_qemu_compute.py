"""The QEMU driver behind real compute daemons (``[compute] driver =
qemu``), on a real broker: build through conductor and scheduler, block
jobs, live migration between two computes (pre_live_migration, rollback)
and a QEMU killed with -9.

A missing QEMU fails these tests; it never skips them.  Every QEMU they
start is gone at the end: the fixture kills and reports any left over.
"""

import os
import signal
import socket
import uuid

import oslo_messaging as messaging
import pytest

from nova_lite.compute import block_jobs
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import concurrency
from nova_lite import context
from nova_lite import rpc
from nova_lite.testing import waiters
from nova_lite.virt.qemu import process

WAIT = 30


# Every test here needs QEMU (conftest: fails, never skips, without it).
pytestmark = pytest.mark.usefixtures('qemu_tools')


@pytest.fixture
def ctxt():
    return context.get_admin_context()


class _Collector:
    """A notification endpoint that keeps what it is given."""

    def __init__(self):
        self.events = []

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.events.append((publisher_id, event_type, payload))

    def wait(self, event_type, **match):
        def found():
            return next((payload for _, kind, payload in self.events
                         if kind == event_type and all(
                             payload.get(k) == v for k, v in match.items())),
                        None)
        return waiters.wait_for(found, timeout=WAIT,
                                what='%s %s' % (event_type, match))


@pytest.fixture
def listener(client_rpc):
    collector = _Collector()
    server = messaging.get_notification_listener(
        rpc.NOTIFICATION_TRANSPORT, [messaging.Target(topic='notifications')],
        [collector], executor=concurrency.RPC_EXECUTOR, pool='qemu-test')
    server.start()
    yield collector
    server.stop()
    server.wait()


class Cloud:
    """conductor, scheduler and QEMU computes, each its own process."""

    def __init__(self, factory, db, conf, state_path):
        self.factory, self.db, self.conf = factory, db, conf
        self.state_path = state_path
        self.paths = {}
        self.daemons = {}
        self.ctxt = context.get_admin_context()
        self.conductor = conductor_rpcapi.ConductorRPCAPI(conf)
        self.compute = compute_rpcapi.ComputeRPCAPI(conf)

    def start(self, binary, host, extra=None):
        daemon = self.daemons[host, binary] = self.factory.start_daemon(
            binary, host, extra=extra)
        try:
            waiters.wait_for_service(self.db, host, binary, timeout=WAIT)
        except waiters.WaitTimeout:
            pytest.fail('%s never came up; its log:\n%s' % (
                binary, daemon.log_text()[-3000:]))
        return daemon

    def start_compute(self, host, driver='qemu', **qemu_options):
        self.paths[host] = os.path.join(self.state_path, host, 'instances')
        qemu_options.setdefault('instances_path', self.paths[host])
        qemu_options.setdefault('qmp_timeout', 5.0)
        return self.start('nova-lite-compute', host, extra={
            'compute': {'driver': driver}, 'qemu': qemu_options})

    def qemu_pids(self, host, instance_uuid):
        return process.find_processes(os.path.join(self.paths[host],
                                                   instance_uuid))

    def log(self, host):
        return self.daemons[host, 'nova-lite-compute'].log_text()[-4000:]

    def build(self):
        instance_uuid = str(uuid.uuid4())
        self.conductor.build_instance(self.ctxt, instance_uuid)
        return self.wait_row(instance_uuid, vm_state='active',
                             task_state=None)

    def wait_row(self, instance_uuid, **values):
        def matches():
            row = self.db.instance_get(instance_uuid)
            return all(row[k] == v for k, v in values.items()) and row
        try:
            return waiters.wait_for(matches, timeout=WAIT,
                                    what='instance %s' % values)
        except waiters.WaitTimeout:
            row = self.db.instance_get(instance_uuid)
            pytest.fail('instance is %s, not %s; logs:\n%s' % (
                row, values, '\n'.join(self.log(host) for host in
                                       self.paths)))

    def destroy(self, instance_uuid):
        self.conductor.destroy_instance(self.ctxt, instance_uuid)
        self.wait_row(instance_uuid, vm_state='deleted', task_state=None)


@pytest.fixture
def cloud(factory, db, conf, conf_fixture, client_rpc):
    state_path = os.path.join(conf_fixture.state_path, 'qemu')
    cloud = Cloud(factory, db, conf, state_path)
    cloud.start('nova-lite-conductor', 'qctl')
    cloud.start('nova-lite-scheduler', 'qctl')
    cloud.start_compute('qcpu1')
    cloud.start_compute('qcpu2')
    yield cloud
    # QEMU outlives its compute (as a libvirt domain does): kill what a
    # test left, and say so.
    left = process.find_processes(state_path)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, 'QEMU processes left over: %s' % left


def _other(host):
    return {'qcpu1': 'qcpu2', 'qcpu2': 'qcpu1'}[host]


def test_build_stats_block_job_and_live_migration(cloud, listener):
    row = cloud.build()
    source, dest = row['host'], _other(row['host'])
    uuid_ = row['uuid']
    assert len(cloud.qemu_pids(source, uuid_)) == 1
    client, ctxt = cloud.compute, cloud.ctxt
    assert client.get_info(ctxt, source, uuid_)['state'] == 'running'
    stats = client.get_stats(ctxt, source, uuid_)
    assert stats['state'] == 'running' and 'vda' in stats['disks']

    # A ready copy aborted synchronously: gone from query-block-jobs when
    # the call returns, and the cancelled event reaches the listener.
    client.block_job_start(ctxt, source, uuid_, 'vda', 'copy')
    waiters.wait_for(lambda: client.block_job_info(
        ctxt, source, uuid_, 'vda')['ready'], timeout=WAIT,
        what='the copy to be ready')
    assert client.block_job_abort(ctxt, source, uuid_, 'vda') == {
        'ended': True}
    assert client.get_stats(ctxt, source, uuid_)['block_jobs'] == []
    assert listener.wait('compute.block_job.cancelled',
                         instance_uuid=uuid_)['job_type'] == 'copy'

    # Live migration through the conductor.
    cloud.conductor.migrate_instance(ctxt, uuid_, dest=dest)
    cloud.wait_row(uuid_, host=dest, vm_state='active', task_state=None)
    waiters.wait_for(lambda: cloud.qemu_pids(dest, uuid_), timeout=WAIT,
                     what='the QEMU on %s' % dest)
    waiters.wait_for(lambda: client.get_info(ctxt, dest, uuid_)['state'] ==
                     'running', timeout=WAIT, what='adopted and running')
    assert cloud.qemu_pids(source, uuid_) == []
    assert not os.path.exists(os.path.join(cloud.paths[source], uuid_))
    listener.wait('compute.instance.migrate.end', instance_uuid=uuid_)
    # It works on its new host.
    assert client.get_stats(ctxt, dest, uuid_)['state'] == 'running'

    cloud.destroy(uuid_)
    assert cloud.qemu_pids(dest, uuid_) == []
    assert not os.path.exists(os.path.join(cloud.paths[dest], uuid_))


def _free_port_pair():
    """Two consecutive free ports, the second held by a listening socket
    (returned) so that only the first is usable."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind(('127.0.0.1', 0))
        low = probe.getsockname()[1]
        probe.close()
        if low >= 65535:
            continue
        held = socket.socket()
        try:
            held.bind(('127.0.0.1', low + 1))
        except OSError:
            held.close()
            continue
        held.listen(1)
        return low, held
    pytest.fail('no two consecutive free ports')


def test_failed_migrations_roll_back(cloud, listener):
    """A destination that cannot prepare (its second port is taken, so the
    incoming QEMU it started must stop; or a fake compute): the instance
    stays on its host, active, with the fault, and nothing is left at the
    destination."""
    low, held = _free_port_pair()
    try:
        row = cloud.build()     # before the others exist: on qcpu1/2
        uuid_, source = row['uuid'], row['host']
        cloud.start_compute('qcpu3', migration_port_range='%d:%d' % (
            low, low + 1))
        cloud.start_compute('fcpu', driver='fake')
        [pid] = cloud.qemu_pids(source, uuid_)
        for dest, reason in (('qcpu3', 'no free port'),
                             ('fcpu', 'receives only from fake')):
            cloud.conductor.migrate_instance(cloud.ctxt, uuid_, dest=dest)
            listener.wait('compute.instance.migrate.error',
                          instance_uuid=uuid_)
            failed = cloud.wait_row(uuid_, host=source, vm_state='active',
                                    task_state=None, power_state='running')
            assert 'Cannot migrate instance %s to %s' % (uuid_, dest) in \
                failed['fault'] and reason in failed['fault'], failed
            listener.events.clear()
            # The source QEMU runs on, untouched.
            assert cloud.qemu_pids(source, uuid_) == [pid]
            assert cloud.compute.get_info(cloud.ctxt, source,
                                          uuid_)['state'] == 'running'
        assert cloud.qemu_pids('qcpu3', uuid_) == []
        assert not os.path.exists(os.path.join(cloud.paths['qcpu3'], uuid_))
        # ... and it can still migrate.
        dest = _other(source)
        cloud.conductor.migrate_instance(cloud.ctxt, uuid_, dest=dest)
        cloud.wait_row(uuid_, host=dest, vm_state='active', task_state=None)
        waiters.wait_for(lambda: cloud.compute.get_info(
            cloud.ctxt, dest, uuid_)['state'] == 'running', timeout=WAIT,
            what='adopted and running')
        cloud.destroy(uuid_)
    finally:
        held.close()


def test_kill_9_of_qemu_shows_as_crashed(cloud, listener):
    row = cloud.build()
    uuid_, host = row['uuid'], row['host']
    assert row['power_state'] == 'running'
    [pid] = cloud.qemu_pids(host, uuid_)
    os.kill(pid, signal.SIGKILL)
    cloud.wait_row(uuid_, power_state='crashed')
    payload = listener.wait('compute.instance.power_off',
                            instance_uuid=uuid_)
    assert payload['host'] == host and payload['state'] == 'crashed'
    assert cloud.compute.get_info(cloud.ctxt, host, uuid_)['state'] == \
        'crashed'
    # A crashed instance can still be deleted, its files with it.
    cloud.destroy(uuid_)
    assert not os.path.exists(os.path.join(cloud.paths[host], uuid_))
