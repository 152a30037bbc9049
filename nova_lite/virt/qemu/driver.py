"""The QEMU virt driver: each instance is a real QEMU process, driven over
QMP (see the package docstring for the client and why).

Operations through the ``ComputeDriver`` interface:

- ``spawn``: a task; a worker thread makes the images (``qemu-img``,
  ``qemu-io``), starts QEMU (``-machine [qemu] machine -nodefaults
  -display none -daemonize``), connects QMP and checks ``query-status``.
- ``reboot``: ``system_reset``; the task ends on QEMU's ``RESET`` event.
- ``destroy``: a task; ``quit``, wait for the process to exit (killed
  after ``[qemu] qmp_timeout``), remove the instance's files.
- ``get_info``: ``query-status`` mapped to running / paused / shutdown /
  crashed; ``get_stats``: ``query-status``, ``query-blockstats`` and
  ``query-block-jobs``.
- block jobs: ``blockjobs.py``; live migration: ``migration.py``.

Events: every QMP event is handled in the connection's reader thread.
Besides completing tasks and block jobs it reports power changes the
driver did not cause itself as ``{'type': 'power', 'instance_uuid',
'state', 'reason'}``: ``paused`` / ``running`` (``STOP`` / ``RESUME``),
and, when the QMP socket closes without a ``quit`` from the driver,
``shutdown`` (after a ``SHUTDOWN`` event) or ``crashed`` (QEMU killed).
Running tasks of that instance then fail and its block jobs end
``cancelled`` with the reason.

Driver threads issue QMP commands outside the compute's monitor lock (a
spawn worker, a migration worker); the QMP client serializes them with the
compute's own commands.  The instance's files survive a compute restart,
as libvirt's domains do; ``destroy`` removes them.
"""

import functools
import itertools
import os
import re
import time

from oslo_log import log as logging

from nova_lite import concurrency
from nova_lite import exception
from nova_lite.conf import qemu as qemu_conf
from nova_lite.virt import driver
from nova_lite.virt.qemu import blockjobs
from nova_lite.virt.qemu import instance as qinstance
from nova_lite.virt.qemu import migration
from nova_lite.virt.qemu import process
from nova_lite.virt.qemu import qmp

LOG = logging.getLogger(__name__)

_threading = concurrency.native_module('threading')

# Seconds a finished task stays pollable (dropped at a later task start).
FINISHED_TASK_RETENTION = 60.0
# Instance uuids name directories: no separators, no dot-dot.
_UUID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$')


def _translated(func):
    """QMP and tool errors leave a driver method as HypervisorError."""
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        try:
            return func(self, *args, **kwargs)
        except (qmp.QMPError, process.ProcessError, OSError) as exc:
            raise self._hypervisor_error(exc) from exc
    return wrapper


class QemuDriver(blockjobs.BlockJobsMixin, migration.MigrationMixin,
                 driver.ComputeDriver):
    """Real QEMU processes over QMP; see the module docstring."""

    name = 'qemu'
    emits_events = True

    def __init__(self, conf, host):
        super().__init__(conf, host)
        qemu_conf.validate(conf)
        self.opts = conf.qemu
        self.instances_path = os.path.abspath(self.opts.instances_path)
        self.timeout = self.opts.qmp_timeout
        self.ports = process.PortAllocator(
            *qemu_conf.port_range(self.opts.migration_port_range))
        self._lock = _threading.RLock()
        self._ids = itertools.count(1)
        self._callback = None
        self.instances = {}     # uuid -> qinstance.Instance
        self.tasks = {}         # task id -> dict, pruned
        self.task_retention = FINISHED_TASK_RETENTION

    # -- plumbing --------------------------------------------------------

    def register_event_callback(self, callback):
        self._callback = callback

    def _emit(self, event):
        if self._callback is None:
            return
        try:
            self._callback(event)
        except Exception:  # noqa: BLE001 - never break the reader thread
            LOG.exception('Event callback failed for %r', event)

    @staticmethod
    def _hypervisor_error(exc):
        if isinstance(exc, exception.NovaLiteException):
            return exc
        return exception.HypervisorError(reason=str(exc))

    @staticmethod
    def _deadline(timeout):
        """A function giving the seconds left (inf without a timeout)."""
        if timeout is None:
            return lambda: float('inf')
        end = time.monotonic() + timeout
        return lambda: end - time.monotonic()

    def _check_uuid(self, instance_uuid):
        if not isinstance(instance_uuid, str) or not _UUID_RE.match(
                instance_uuid):
            raise exception.InvalidInput(
                reason='instance uuid %r cannot name a directory' %
                       (instance_uuid,))

    def _known(self, instance_uuid):
        with self._lock:
            inst = self.instances.get(instance_uuid)
        if inst is None or inst.state == qinstance.INCOMING:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        return inst

    def _active(self, instance_uuid):
        """An instance whose QEMU runs and that no spawn is building."""
        inst = self._known(instance_uuid)
        if inst.state == qinstance.BUILDING:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        if not inst.running:
            raise exception.HypervisorError(
                reason='instance %s is %s: its QEMU is not running' % (
                    instance_uuid, inst.state))
        return inst

    def _require_idle(self, inst):
        if inst.busy is not None:
            raise exception.HypervisorError(
                reason='instance %s is busy %s' % (inst.uuid, inst.busy))

    def _execute(self, inst, command, arguments=None):
        try:
            return inst.client.execute(command, arguments)
        except qmp.QMPError as exc:
            raise self._hypervisor_error(exc) from exc

    # -- tasks -----------------------------------------------------------

    def _new_task(self, instance_uuid, operation, **extra):
        task = dict(id='qemu-task-%d' % next(self._ids),
                    instance_uuid=instance_uuid, operation=operation,
                    state=driver.TASK_RUNNING, phase=None, progress=0,
                    error=None, cancel=False, started=time.monotonic())
        task.update(extra)
        with self._lock:
            driver.prune_tasks(self.tasks, self.task_retention)
            self.tasks[task['id']] = task
        return task

    def _run_task(self, task, worker, *args):
        """``worker(task, *args)`` in a native thread; its return ends
        the task in success, an exception in error (or cancelled)."""
        def run():
            try:
                worker(task, *args)
            except migration.Cancelled:
                self._finish(task, driver.TASK_CANCELLED)
            except Exception as exc:  # noqa: BLE001 - the task's error
                error = self._hypervisor_error(exc)
                LOG.warning('%s of instance %s failed: %s',
                            task['operation'], task['instance_uuid'], error)
                self._finish(task, driver.TASK_ERROR, str(error))
            else:
                self._finish(task, driver.TASK_SUCCESS)

        _threading.Thread(target=run, daemon=True, name='qemu-%s-%s' % (
            task['operation'], task['instance_uuid'][:8])).start()

    def _finish(self, task, state, error=None):
        with self._lock:
            if task['state'] != driver.TASK_RUNNING:
                return
            task.update(state=state, error=error, finished=time.monotonic())
            if state == driver.TASK_SUCCESS:
                task['progress'] = 100
        self._emit({'type': 'task', 'task_id': task['id'], 'state': state})

    def poll_task(self, task_id):
        """{'state', 'progress', 'phase', 'error'} (a migration also has
        ``stats``: QEMU's total time, downtime and bytes)."""
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None:
                raise exception.HypervisorError(reason='no task %s' %
                                                task_id)
            return {'state': task['state'], 'progress': task['progress'],
                    'phase': task['phase'], 'error': task['error'],
                    'stats': task.get('stats')}

    def cancel_task(self, task_id):
        """Stop a running task: a spawn is undone, a migration rolled back;
        a reboot (already requested) is only marked cancelled and a
        destroy, which cannot be undone, runs on."""
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or task['state'] != driver.TASK_RUNNING:
                return
            task['cancel'] = True
        if task['operation'] == 'reboot':
            self._finish(task, driver.TASK_CANCELLED)
        elif task.get('on_cancel') is not None:
            task['on_cancel']()

    def _check_cancel(self, task):
        if task['cancel']:
            raise migration.Cancelled()

    # -- QMP events (reader thread) ----------------------------------------

    def _connect(self, inst):
        inst.client = qmp.QMPClient(
            inst.layout.qmp, self.timeout,
            on_event=functools.partial(self._qmp_event, inst),
            on_close=functools.partial(self._qmp_closed, inst),
            name='qmp-%s' % inst.uuid[:8]).connect()

    def _qmp_event(self, inst, message):
        name = message.get('event')
        data = message.get('data') or {}
        if name == 'SHUTDOWN':
            inst.shutdown_reason = data.get('reason', 'shutdown')
        elif name in ('STOP', 'RESUME'):
            self._power_event(inst, 'paused' if name == 'STOP'
                              else 'running', name)
        elif name == 'RESET':
            self._reset_done(inst)
        elif name in blockjobs.QEMU_JOB_EVENTS:
            self._block_job_event(inst, name, data)
        elif name == 'MIGRATION':
            self._migration_event(inst, data)
        inst.feed(message)

    def _power_event(self, inst, state, reason):
        with self._lock:
            if inst.busy is not None or inst.state not in ('running',
                                                           'paused'):
                return          # the driver's own doing
            inst.state = state
        self._emit({'type': 'power', 'instance_uuid': inst.uuid,
                    'state': state, 'reason': reason})

    def _qmp_closed(self, inst, reason):
        inst.closed(reason)
        with self._lock:
            busy = inst.busy
        if busy == qinstance.INCOMING:
            # The migration stream broke and the incoming QEMU exited.
            _threading.Thread(target=self._incoming_exited,
                              args=(inst, reason), daemon=True).start()
        elif busy is None:
            self._lost(inst, reason)
        # Otherwise the operation under way (quit, migration) handles it.

    def _lost(self, inst, reason):
        """The instance's QEMU is gone without the driver asking."""
        with self._lock:
            if (self.instances.get(inst.uuid) is not inst or
                    inst.state in ('crashed', 'shutdown')):
                return
            inst.state = 'shutdown' if inst.shutdown_reason else 'crashed'
            failed = [task for task in self.tasks.values()
                      if task['instance_uuid'] == inst.uuid and
                      task['operation'] == 'reboot' and
                      task['state'] == driver.TASK_RUNNING]
        reason = '%s (%s)' % (inst.shutdown_reason or 'QEMU exited', reason)
        LOG.warning('Instance %s is %s: %s', inst.uuid, inst.state, reason)
        for task in failed:
            self._finish(task, driver.TASK_ERROR, reason)
        self._end_block_jobs(inst, reason)
        self._emit({'type': 'power', 'instance_uuid': inst.uuid,
                    'state': inst.state, 'reason': reason})

    def _reset_done(self, inst):
        with self._lock:
            done = [task for task in self.tasks.values()
                    if task['instance_uuid'] == inst.uuid and
                    task['operation'] == 'reboot' and
                    task['state'] == driver.TASK_RUNNING]
        for task in done:
            self._finish(task, driver.TASK_SUCCESS)

    # -- processes and files -----------------------------------------------

    def _register(self, instance_uuid, memory_mb, disk_bytes, state):
        layout = process.Layout(self.instances_path, instance_uuid)
        with self._lock:
            if instance_uuid in self.instances:
                raise exception.InstanceExists(instance_uuid=instance_uuid)
            inst = self.instances[instance_uuid] = qinstance.Instance(
                instance_uuid, layout, memory_mb, disk_bytes, state=state)
            inst.busy = state
        return inst

    def _claim_dir(self, layout):
        """A fresh directory; one left by an earlier run is removed, unless
        a QEMU still uses it."""
        if os.path.exists(layout.dir):
            if process.find_processes(layout.dir):
                raise exception.HypervisorError(
                    reason='a QEMU process still uses %s (left by an '
                           'earlier run?)' % layout.dir)
            LOG.warning('Removing %s, left by an earlier run', layout.dir)
            layout.remove()
        os.makedirs(layout.dir, mode=0o700)

    def _start_qemu(self, inst, incoming=None):
        args = process.command_line(self.opts, inst.uuid, inst.layout,
                                    inst.disk_file, inst.memory_mb,
                                    incoming=incoming)
        inst.process = process.Process.launch(args, inst.layout.pidfile,
                                              self.timeout)
        try:
            self._connect(inst)
        except qmp.QMPError:
            inst.process.kill(self.timeout)
            raise

    def _quit(self, inst):
        """Ask QEMU to quit (it is busy, so its exit is expected), wait,
        remove its files and forget it."""
        if inst.running:
            try:
                inst.client.execute('quit')
            except qmp.QMPClosed:
                pass            # it closed before its reply reached us
        if inst.process is not None:
            inst.process.wait_exit(self.timeout)
        self._discard(inst)

    def _discard(self, inst):
        """Kill what is left, remove the files, forget the instance.

        Once per instance, whoever calls it (an abort and the exit of an
        incoming QEMU may race).
        """
        with self._lock:
            if inst.discarded:
                return
            inst.discarded = True
        if inst.client is not None:
            inst.client.close()
        if inst.process is not None:
            inst.process.kill(self.timeout)
            inst.process.release()
        inst.layout.remove()
        with self._lock:
            ports, inst.ports = inst.ports, ()
            if self.instances.get(inst.uuid) is inst:
                del self.instances[inst.uuid]
        self.ports.release(*ports)
        self._end_block_jobs(inst, 'instance %s removed' % inst.uuid)

    # -- queries -----------------------------------------------------------

    @_translated
    def get_info(self, instance_uuid):
        """{'state': ...}: ``query-status`` while QEMU runs, else the
        state the driver recorded (building, crashed, shutdown)."""
        inst = self._known(instance_uuid)
        if not inst.running or inst.state == qinstance.BUILDING:
            return {'state': inst.state}
        status = inst.client.execute('query-status')['status']
        return {'state': qinstance.power_state(status)}

    @_translated
    def get_stats(self, instance_uuid):
        """Run state, per-disk I/O counters and the block jobs running."""
        inst = self._active(instance_uuid)
        status = inst.client.execute('query-status')['status']
        blockstats = inst.client.execute('query-blockstats')
        jobs = inst.client.execute('query-block-jobs')
        disks = {}
        for entry in blockstats:
            if entry.get('device'):
                stats = entry.get('stats', {})
                disks[entry['device']] = {
                    key: stats.get(key) for key in (
                        'rd_bytes', 'wr_bytes', 'rd_operations',
                        'wr_operations', 'flush_operations')}
        return {'state': qinstance.power_state(status), 'status': status,
                'disks': disks,
                'block_jobs': [{key: job.get(key) for key in (
                    'device', 'type', 'status', 'offset', 'len', 'ready')}
                    for job in jobs],
                'sampled_at': time.time()}

    @_translated
    def monitor_command(self, instance_uuid, command, arguments=None):
        """Any QMP command on the instance's connection, for tests and
        debugging (as ``virsh qemu-monitor-command``); not over RPC."""
        return self._active(instance_uuid).client.execute(command, arguments)

    # -- long operations -----------------------------------------------------

    @_translated
    def spawn(self, instance_uuid):
        """Start building; returns a task id."""
        self._check_uuid(instance_uuid)
        inst = self._register(instance_uuid, self.opts.memory_mb,
                              self.opts.disk_size_mb * process.MIB,
                              state=qinstance.BUILDING)
        task = self._new_task(instance_uuid, 'spawn')
        self._run_task(task, self._spawn, inst)
        return task['id']

    def _spawn(self, task, inst):
        try:
            self._claim_dir(inst.layout)
            process.make_disk(inst.layout, inst.disk_bytes, self.timeout)
            self._check_cancel(task)
            self._start_qemu(inst)
            self._check_cancel(task)
            status = inst.client.execute('query-status')['status']
        except BaseException:
            self._discard(inst)
            raise
        with self._lock:
            inst.state = qinstance.power_state(status)
            inst.busy = None
        if not inst.running:        # killed while it was being built
            self._lost(inst, inst.client.closed)
            raise exception.HypervisorError(
                reason='QEMU exited during spawn: %s' % inst.client.closed)
        LOG.info('Instance %s spawned (pid %d)', inst.uuid, inst.process.pid)

    @_translated
    def reboot(self, instance_uuid):
        """``system_reset`` (and ``cont`` if paused); the task ends on the
        RESET event."""
        inst = self._active(instance_uuid)
        self._require_idle(inst)
        task = self._new_task(instance_uuid, 'reboot')
        try:
            inst.client.execute('system_reset')
            if inst.state == 'paused':
                inst.client.execute('cont')
        except qmp.QMPError as exc:
            self._finish(task, driver.TASK_ERROR, str(exc))
            raise
        return task['id']

    @_translated
    def destroy(self, instance_uuid):
        """Start destroying; returns a task id (see the module doc)."""
        inst = self._known(instance_uuid)
        with self._lock:
            if inst.state == qinstance.BUILDING:
                raise exception.InstanceNotFound(instance_uuid=instance_uuid)
            self._require_idle(inst)
            inst.busy = qinstance.DELETING
        task = self._new_task(instance_uuid, 'destroy')
        self._run_task(task, lambda task: self._quit(inst))
        return task['id']
