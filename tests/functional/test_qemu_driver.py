"""The QEMU driver against real QEMU processes (no KVM, ``-machine none``).

A missing QEMU fails these tests; it never skips them.  Every QEMU a test
starts is gone at its end: the fixture checks it, and kills and reports
any left over.  Drivers are held through ``ThreadPoolDriver`` as the
compute holds them, and events reach the test through ``HubQueue`` as they
reach the compute's hub.
"""

import os
import signal
import subprocess

import pytest
from oslo_config import cfg

from nova_lite import concurrency
from nova_lite import exception
from nova_lite import virt
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import waiters
from nova_lite.virt import tasks
from nova_lite.virt.qemu import process

SLOW = 64 * 1024        # bytes/s: a block job that is still running
WAIT = 10.0


# Every test here needs QEMU (conftest: fails, never skips, without it).
pytestmark = pytest.mark.usefixtures('qemu_tools')


class Host:
    """One "compute host": a driver with its own instances_path, and the
    events it emitted."""

    def __init__(self, name, state_path, **qemu_options):
        self.name = name
        qemu_options.setdefault('instances_path',
                                os.path.join(state_path, name))
        qemu_options.setdefault('qmp_timeout', 5.0)
        self.fixture = nl_fixtures.ConfFixture(
            conf=cfg.ConfigOpts(), state_path=state_path,
            overrides={'compute': {'driver': 'qemu'}, 'qemu': qemu_options})
        self.fixture.setUp()
        self.conf = self.fixture.conf
        self.driver = virt.load_driver(self.conf, name)
        self.qemu = self.driver.unwrapped
        self.events = []
        self.task_events = tasks.TaskEvents()
        self._queue = concurrency.HubQueue(self._event)
        self.driver.register_event_callback(self._queue.put)

    def _event(self, event):
        self.events.append(event)
        if event['type'] == 'task':
            self.task_events.done(event['task_id'])

    def path(self, *parts):
        return os.path.join(self.qemu.instances_path, *parts)

    def wait_task(self, task_id, operation='op', uuid='u', on_poll=None,
                  poll_interval=30):
        """The task's end, woken by its event (polls only every 30 s)."""
        return tasks.Task(self.driver, task_id, operation, uuid,
                          self.task_events, poll_interval,
                          on_poll=on_poll).wait()

    def spawn(self, uuid):
        self.wait_task(self.driver.spawn(uuid), 'spawn', uuid)
        return uuid

    def wait_event(self, **match):
        def found():
            return next((event for event in self.events
                         if all(event.get(key) == value
                                for key, value in match.items())), None)
        return waiters.wait_for(found, timeout=WAIT,
                                what='event %s on %s' % (match, self.name))

    def qmp(self, uuid, command, arguments=None):
        return self.driver.monitor_command(uuid, command, arguments)

    def vda_file(self, uuid):
        return self.qmp(uuid, 'query-block')[0]['inserted']['file']

    def close(self):
        for uuid in list(self.qemu.instances):
            inst = self.qemu.instances[uuid]
            try:
                if inst.state == 'incoming':
                    self.driver.abort_incoming(uuid)
                else:
                    self.wait_task(self.driver.destroy(uuid))
            except exception.NovaLiteException:
                pass
        self._queue.close()
        self.fixture.cleanUp()


@pytest.fixture
def make_host(tmp_path):
    hosts = []

    def make(name='h1', **qemu_options):
        host = Host(name, str(tmp_path), **qemu_options)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()
    left = process.find_processes(str(tmp_path))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, 'QEMU processes left over: %s' % left


@pytest.fixture
def host(make_host):
    return make_host('h1')


def _read_pattern(path, pattern, offset_mib):
    """True when the MiB at ``offset_mib`` of the image holds ``pattern``
    (read while QEMU may hold the image: -U)."""
    result = subprocess.run(
        ['qemu-io', '-U', '-r', '-f', 'qcow2', '-c',
         'read -P 0x%x %dM 1M' % (pattern, offset_mib), path],
        capture_output=True, text=True, timeout=WAIT)
    return result.returncode == 0 and 'Pattern verification failed' not in (
        result.stdout + result.stderr)


def _dead(pid):
    """Gone, or a zombie its new parent (init) has not reaped yet."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] in ('Z', 'X')
    except FileNotFoundError:
        return True


def _assert_data(path):
    assert _read_pattern(path, *process.BASE_PATTERN), path
    assert _read_pattern(path, *process.TOP_PATTERN), path


# -- lifecycle ------------------------------------------------------------

def test_spawn_runs_qemu_with_a_disk_over_a_backing_image(host):
    host.spawn('u1')
    assert host.driver.get_info('u1') == {'state': 'running'}
    inst = host.qemu.instances['u1']
    assert process.find_processes(host.path('u1')) == [inst.process.pid]
    image = host.qmp('u1', 'query-block')[0]['inserted']['image']
    assert image['filename'] == host.path('u1', 'disk.qcow2')
    assert image['backing-image']['filename'] == host.path('u1',
                                                           'base.qcow2')
    _assert_data(host.path('u1', 'disk.qcow2'))
    with pytest.raises(exception.InstanceExists):
        host.driver.spawn('u1')


def test_get_stats_reports_disks_and_block_jobs(host):
    host.spawn('u1')
    stats = host.driver.get_stats('u1')
    assert stats['state'] == 'running'
    assert set(stats['disks']['vda']) >= {'rd_bytes', 'wr_bytes'}
    assert stats['block_jobs'] == []
    host.qemu.block_job_speed = SLOW
    host.driver.block_job_start('u1', 'vda', 'pull')
    jobs = host.driver.get_stats('u1')['block_jobs']
    assert [(job['device'], job['type']) for job in jobs] == [('vda',
                                                               'stream')]


def test_reboot_ends_on_the_reset_event(host):
    host.spawn('u1')
    status = host.wait_task(host.driver.reboot('u1'), 'reboot', 'u1')
    assert status['state'] == 'success'
    assert host.driver.get_info('u1') == {'state': 'running'}


def test_destroy_quits_qemu_and_removes_the_files(host):
    host.spawn('u1')
    pid = host.qemu.instances['u1'].process.pid
    host.wait_task(host.driver.destroy('u1'), 'destroy', 'u1')
    assert not os.path.exists(host.path('u1'))
    assert process.find_processes(host.path('u1')) == []
    assert _dead(pid)
    with pytest.raises(exception.InstanceNotFound):
        host.driver.get_info('u1')


def test_kill_9_is_noticed_as_a_crash(host):
    host.spawn('u1')
    host.qemu.block_job_speed = SLOW
    host.driver.block_job_start('u1', 'vda', 'commit')
    os.kill(host.qemu.instances['u1'].process.pid, signal.SIGKILL)
    event = host.wait_event(type='power', instance_uuid='u1')
    assert event['state'] == 'crashed'
    ended = host.wait_event(type='block_job', instance_uuid='u1',
                            state='cancelled')
    assert ended['kind'] == 'commit' and ended['error']
    assert host.driver.get_info('u1') == {'state': 'crashed'}
    with pytest.raises(exception.HypervisorError, match='crashed'):
        host.driver.get_stats('u1')
    host.wait_task(host.driver.destroy('u1'), 'destroy', 'u1')
    assert not os.path.exists(host.path('u1'))


def test_spawn_failure_leaves_nothing(make_host):
    host = make_host(machine='no-such-machine')
    with pytest.raises(exception.TaskFailed,
                       match='unsupported machine type'):
        host.spawn('u1')
    assert 'u1' not in host.qemu.instances
    assert not os.path.exists(host.path('u1'))


# -- block jobs -----------------------------------------------------------

def test_pull_streams_the_backing_data_into_the_overlay(host):
    host.spawn('u1')
    host.driver.block_job_start('u1', 'vda', 'pull')
    host.wait_event(type='block_job', instance_uuid='u1', kind='pull',
                    state='completed')
    assert host.driver.block_job_info('u1', 'vda') is None
    image = host.qmp('u1', 'query-block')[0]['inserted']['image']
    assert 'backing-image' not in image
    assert host.qmp('u1', 'query-block-jobs') == []


@pytest.mark.parametrize('kind', ['pull', 'copy', 'commit'])
def test_abort_ends_with_the_cancelled_event(host, kind):
    host.spawn('u1')
    host.qemu.block_job_speed = SLOW
    host.driver.block_job_start('u1', 'vda', kind)
    info = host.driver.block_job_info('u1', 'vda')
    assert info['kind'] == kind and not info['ready']
    host.driver.block_job_abort('u1', 'vda')
    host.wait_event(type='block_job', instance_uuid='u1', kind=kind,
                    state='cancelled')
    # The event comes once QEMU has dropped the job.
    assert host.qmp('u1', 'query-block-jobs') == []
    assert host.driver.block_job_info('u1', 'vda') is None
    assert host.vda_file('u1') == host.path('u1', 'disk.qcow2')
    assert not [name for name in os.listdir(host.path('u1'))
                if '.copy-' in name]
    assert not [e for e in host.events if e['type'] == 'block_job' and
                e['state'] == 'completed']


def test_pivot_switches_vda_to_the_copy(host):
    host.spawn('u1')
    host.driver.block_job_start('u1', 'vda', 'copy')
    host.wait_event(type='block_job', instance_uuid='u1', state='ready')
    assert host.driver.block_job_info('u1', 'vda')['ready']
    host.driver.block_job_abort('u1', 'vda', pivot=True)
    host.wait_event(type='block_job', instance_uuid='u1', kind='copy',
                    state='completed')
    copy = host.path('u1', 'vda.copy-1.qcow2')
    image = host.qmp('u1', 'query-block')[0]['inserted']['image']
    assert image['filename'] == copy and 'backing-image' not in image
    _assert_data(copy)


def test_abort_of_a_ready_copy_is_cancelled_and_drops_the_copy(host):
    host.spawn('u1')
    host.driver.block_job_start('u1', 'vda', 'copy')
    host.wait_event(type='block_job', instance_uuid='u1', state='ready')
    host.driver.block_job_abort('u1', 'vda')
    host.wait_event(type='block_job', instance_uuid='u1', kind='copy',
                    state='cancelled')
    assert host.vda_file('u1') == host.path('u1', 'disk.qcow2')
    assert not os.path.exists(host.path('u1', 'vda.copy-1.qcow2'))


def test_commit_pivot_switches_vda_to_the_base_holding_the_data(host):
    host.spawn('u1')
    host.driver.block_job_start('u1', 'vda', 'commit')
    host.wait_event(type='block_job', instance_uuid='u1', state='ready')
    host.driver.block_job_abort('u1', 'vda', pivot=True)
    host.wait_event(type='block_job', instance_uuid='u1', kind='commit',
                    state='completed')
    assert host.vda_file('u1') == host.path('u1', 'base.qcow2')
    _assert_data(host.path('u1', 'base.qcow2'))


def test_bad_block_job_requests_are_named_and_leave_nothing(host):
    host.spawn('u1')
    with pytest.raises(exception.DiskNotFound):
        host.driver.block_job_start('u1', 'vdz', 'pull')
    with pytest.raises(exception.InvalidBlockJobKind):
        host.driver.block_job_start('u1', 'vda', 'defrag')
    with pytest.raises(exception.BlockJobNotFound):
        host.driver.block_job_abort('u1', 'vda')
    host.qemu.block_job_speed = SLOW
    host.driver.block_job_start('u1', 'vda', 'copy')
    with pytest.raises(exception.BlockJobBusy):
        host.driver.block_job_start('u1', 'vda', 'copy')
    with pytest.raises(exception.BlockJobNotReady):
        host.driver.block_job_abort('u1', 'vda', pivot=True)
    # One copy target only (the refused second job made none), and the
    # first job still runs.
    assert [name for name in os.listdir(host.path('u1'))
            if '.copy-' in name] == ['vda.copy-1.qcow2']
    assert host.driver.block_job_info('u1', 'vda')['kind'] == 'copy'
    with pytest.raises(exception.InstanceNotFound):
        host.driver.block_job_info('nope', 'vda')


# -- live migration -------------------------------------------------------

def _prepare(src, dest, uuid):
    return dest.driver.prepare_incoming(
        uuid, src.driver.migration_source_data(uuid))


def test_live_migration_moves_the_instance(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    data = _prepare(src, dest, 'u1')
    assert data['uri'].startswith('tcp:127.0.0.1:')
    phases = []
    status = src.wait_task(
        src.driver.migrate('u1', 'h2', data), 'migrate', 'u1',
        on_poll=lambda status: phases.append(status['phase']),
        poll_interval=0.01)
    assert status['stats']['downtime_ms'] is not None
    dest.driver.adopt('u1', 'running')
    assert dest.driver.get_info('u1') == {'state': 'running'}
    assert dest.vda_file('u1') == dest.path('u1', 'disk.qcow2')
    _assert_data(dest.path('u1', 'disk.qcow2'))
    # The source QEMU and its files are gone.
    assert 'u1' not in src.qemu.instances
    assert not os.path.exists(src.path('u1'))
    assert process.find_processes(src.path('u1')) == []
    assert phases[-1] == 'switchover'
    # Migrated instances run block jobs like any other.
    dest.driver.block_job_start('u1', 'vda', 'copy')
    dest.wait_event(type='block_job', instance_uuid='u1', state='ready')


def test_migration_phases_and_stats_while_it_converges(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    # ~150 KB of RAM stream at 128 KiB/s: about a second of convergence.
    src.qemu.migration_max_bandwidth = 128 * 1024
    data = _prepare(src, dest, 'u1')
    during = []

    def on_poll(status):
        if status['phase'] == 'converging' and not during:
            during.append(src.driver.get_stats('u1'))

    status = src.wait_task(src.driver.migrate('u1', 'h2', data), 'migrate',
                           'u1', on_poll=on_poll, poll_interval=0.02)
    assert during and during[0]['state'] == 'running', (during, status)
    assert status['stats']['total_time_ms'] >= 500, status
    dest.driver.adopt('u1', 'running')


def test_migration_to_a_killed_destination_rolls_back(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    src.qemu.migration_max_bandwidth = 128 * 1024
    data = _prepare(src, dest, 'u1')
    incoming = dest.qemu.instances['u1']

    def kill_when_converging(status):
        if status['phase'] == 'converging' and incoming.process.alive():
            os.kill(incoming.process.pid, signal.SIGKILL)

    with pytest.raises(exception.TaskFailed, match='migration to h2'):
        src.wait_task(src.driver.migrate('u1', 'h2', data), 'migrate',
                      'u1', on_poll=kill_when_converging, poll_interval=0.02)
    _assert_rolled_back(src, dest, 'u1')


def test_migration_to_a_destination_gone_before_it_started(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    data = _prepare(src, dest, 'u1')
    os.kill(dest.qemu.instances['u1'].process.pid, signal.SIGKILL)
    with pytest.raises(exception.TaskFailed, match='blockdev-add'):
        src.wait_task(src.driver.migrate('u1', 'h2', data), 'migrate', 'u1')
    _assert_rolled_back(src, dest, 'u1')


def test_cancelled_migration_rolls_back(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    src.qemu.migration_max_bandwidth = 64 * 1024
    data = _prepare(src, dest, 'u1')
    task_id = src.driver.migrate('u1', 'h2', data)

    def cancel_when_converging(status):
        if status['phase'] == 'converging':
            src.driver.cancel_task(task_id)

    with pytest.raises(exception.TaskCancelled):
        src.wait_task(task_id, 'migrate', 'u1',
                      on_poll=cancel_when_converging, poll_interval=0.02)
    dest.driver.abort_incoming('u1')
    _assert_rolled_back(src, dest, 'u1')


def _assert_rolled_back(src, dest, uuid):
    assert src.driver.get_info(uuid) == {'state': 'running'}
    assert src.qmp(uuid, 'query-block-jobs') == []
    nodes = [node.get('node-name') for node in
             src.qmp(uuid, 'query-named-block-nodes')]
    assert not [node for node in nodes if node.startswith('migrate-')]
    assert src.qemu.instances[uuid].busy is None
    # The destination's QEMU exited and its files went with it.
    waiters.wait_for(lambda: uuid not in dest.qemu.instances, timeout=WAIT,
                     what='the destination to drop %s' % uuid)
    assert not os.path.exists(dest.path(uuid))
    assert process.find_processes(dest.path(uuid)) == []
    dest.driver.abort_incoming(uuid)          # idempotent
    # ... and the source can migrate again (at full speed).
    src.qemu.migration_max_bandwidth = 1 << 30
    data = _prepare(src, dest, uuid)
    src.wait_task(src.driver.migrate(uuid, dest.name, data), 'migrate', uuid)
    dest.driver.adopt(uuid, 'running')
    assert dest.driver.get_info(uuid) == {'state': 'running'}


def test_migration_needs_a_qemu_destination(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    with pytest.raises(exception.InvalidInput, match='qemu compute'):
        src.driver.migrate('u1', 'fake-host', {'driver': 'fake'})
    with pytest.raises(exception.InvalidInput, match='fake compute'):
        dest.driver.prepare_incoming('u1', {'driver': 'fake'})
    assert not os.path.exists(dest.path('u1'))
    # Nothing was left half-done on the source.
    assert src.qemu.instances['u1'].busy is None
    src.driver.block_job_start('u1', 'vda', 'pull')
    src.wait_event(type='block_job', instance_uuid='u1', state='completed')


def test_two_incoming_migrations_get_different_ports(make_host):
    src, dest = make_host('h1'), make_host('h2')
    src.spawn('u1')
    src.spawn('u2')
    first = _prepare(src, dest, 'u1')
    second = _prepare(src, dest, 'u2')
    ports = {first['uri'], second['uri'], first['nbd']['port'],
             second['nbd']['port']}
    assert len(ports) == 4
    dest.driver.abort_incoming('u1')
    dest.driver.abort_incoming('u2')
    assert not os.listdir(dest.path())


def _free_port_block(count, start=20000):
    """The first of ``count`` consecutive ports free on 127.0.0.1, below
    Linux's ephemeral range (32768-60999), so that no client connection
    of another test takes one of them meanwhile."""
    _socket = concurrency.native_module('socket')
    for base in range(start, 32768 - count, count):
        probes = []
        try:
            for port in range(base, base + count):
                probe = _socket.socket()
                probes.append(probe)
                probe.bind(('127.0.0.1', port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise AssertionError('no %d free consecutive ports' % count)


def test_a_busy_migration_port_is_skipped(make_host):
    base = _free_port_block(4)
    src = make_host('h1')
    dest = make_host('h2', migration_port_range='%d:%d' % (base, base + 3))
    src.spawn('u1')
    _socket = concurrency.native_module('socket')
    taken = _socket.socket()
    taken.bind(('127.0.0.1', base))
    taken.listen(1)
    try:
        data = _prepare(src, dest, 'u1')
    finally:
        taken.close()
    assert data['uri'] == 'tcp:127.0.0.1:%d' % (base + 1)
    assert data['nbd']['port'] == base + 2
    src.wait_task(src.driver.migrate('u1', 'h2', data), 'migrate', 'u1')
    dest.driver.adopt('u1', 'running')
    assert dest.driver.get_info('u1') == {'state': 'running'}
