"""A simulated hypervisor whose calls really block.

Every call sleeps ``[fake_driver] call_latency_seconds`` in the calling
(native) thread, as a remote API would.  Operations finish after
``operation_seconds`` on a native timer thread, which emits the completion
event.  The fake also watches itself: it counts how many calls are inside
one instance's "monitor" at once (``max_monitor_overlap``), and it can be
told to fail an operation (``inject_failure``), or every one of those
named in ``[fake_driver] fail_operations``.
"""

import itertools
import time

from nova_lite import exception
from nova_lite import concurrency
from nova_lite.virt import driver

_MIGRATION_PHASES = ((0.2, 'setup'), (0.9, 'converging'), (1.01, 'switchover'))

# The effect on the instance's power state when an operation succeeds.
_RESULT_POWER = {'spawn': 'running', 'reboot': 'running', 'destroy': None,
                 'migrate': None}

DISKS = ('vda', 'vdb')

# Seconds a finished task stays pollable, as a hypervisor keeps a finished
# task's result for a while; it is dropped at a later task start.
FINISHED_TASK_RETENTION = 60.0


class FakeDriver(driver.ComputeDriver):
    name = 'fake'
    emits_events = True

    def __init__(self, conf, host):
        super().__init__(conf, host)
        opts = conf.fake_driver
        self.emits_events = opts.emit_events
        self._latency = opts.call_latency_seconds
        self._operation_seconds = opts.operation_seconds
        self._block_job_seconds = opts.block_job_seconds
        self._abort_seconds = opts.block_job_abort_seconds
        self._lock = concurrency.native_lock()
        self._ids = itertools.count(1)
        self._callback = None
        self.instances = {}        # uuid -> {'state': power state}
        self.tasks = {}            # task id -> dict, pruned (see above)
        self.task_retention = FINISHED_TASK_RETENTION
        self.block_jobs = {}       # (uuid, disk) -> dict
        self.incoming = {}         # uuid -> flavor, prepared for a resize
        self._failures = {}        # (uuid, operation) -> message
        # Operations this host always fails (demos, rollback tests).
        self._fail_operations = frozenset(opts.fail_operations)
        self._in_monitor = {}      # uuid -> calls inside now
        self.max_monitor_overlap = 0
        self.calls = 0

    # -- plumbing ------------------------------------------------------

    def register_event_callback(self, callback):
        self._callback = callback

    def _emit(self, event):
        if self.emits_events and self._callback is not None:
            self._callback(event)

    def _call(self, instance_uuid=None):
        """Block like a remote call; track per-instance overlap."""
        with self._lock:
            self.calls += 1
            if instance_uuid is not None:
                inside = self._in_monitor.get(instance_uuid, 0) + 1
                self._in_monitor[instance_uuid] = inside
                self.max_monitor_overlap = max(self.max_monitor_overlap,
                                               inside)
        try:
            concurrency.blocking_sleep(self._latency)
        finally:
            if instance_uuid is not None:
                with self._lock:
                    self._in_monitor[instance_uuid] -= 1
                    if not self._in_monitor[instance_uuid]:
                        del self._in_monitor[instance_uuid]

    def inject_failure(self, instance_uuid, operation, message):
        """Make the next ``operation`` on the instance fail with ``message``."""
        self._failures[(instance_uuid, operation)] = message

    def _known(self, instance_uuid):
        if instance_uuid not in self.instances:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        return self.instances[instance_uuid]

    def _timer(self, seconds, func, *args):
        # A native thread: the hypervisor's side of the world.
        return concurrency.native_timer(seconds, func, *args)

    # -- queries -------------------------------------------------------

    def get_info(self, instance_uuid):
        # Cached state, as libvirt's virDomainGetInfo: no monitor command.
        self._call()
        return {'state': self._known(instance_uuid)['state']}

    def get_stats(self, instance_uuid):
        self._call(instance_uuid)
        instance = self._known(instance_uuid)
        return {'state': instance['state'], 'cpu_time': time.process_time(),
                'sampled_at': time.time()}

    # -- long operations -----------------------------------------------

    def _start_task(self, instance_uuid, operation, **extra):
        task_id = 'task-%d' % next(self._ids)
        task = dict(id=task_id, instance_uuid=instance_uuid,
                    operation=operation, state=driver.TASK_RUNNING,
                    started=time.monotonic(),
                    duration=self._operation_seconds, error=None, **extra)
        with self._lock:
            driver.prune_tasks(self.tasks, self.task_retention)
            self.tasks[task_id] = task
        task['timer'] = self._timer(task['duration'], self._finish_task,
                                    task_id)
        return task_id

    def _finish_task(self, task_id):
        with self._lock:
            task = self.tasks[task_id]
            if task['state'] != driver.TASK_RUNNING:
                return
            failure = self._failures.pop((task['instance_uuid'],
                                          task['operation']), None)
            if not failure and task['operation'] in self._fail_operations:
                failure = ('%s fails on this host ([fake_driver] '
                           'fail_operations)' % task['operation'])
            if failure:
                task['state'], task['error'] = driver.TASK_ERROR, failure
            else:
                task['state'] = driver.TASK_SUCCESS
                self._apply(task)
            task['finished'] = time.monotonic()
        self._emit({'type': 'task', 'task_id': task_id,
                    'state': task['state']})

    def _apply(self, task):
        uuid = task['instance_uuid']
        if task['operation'] == 'spawn':
            self.instances[uuid] = {'state': 'running'}
        elif task['operation'] in ('reboot', 'finish_revert_resize'):
            self.instances[uuid]['state'] = 'running'
        elif task['operation'] == 'prep_resize':
            self.incoming[uuid] = task['flavor']
        elif task['operation'] == 'resize_instance':
            self.instances[uuid]['state'] = 'shutdown'
        elif task['operation'] == 'finish_resize':
            self.incoming.pop(uuid, None)
            self.instances[uuid] = {'state': 'running',
                                    'flavor': task['flavor']}
        else:  # destroy, or migrated away
            self.instances.pop(uuid, None)

    def spawn(self, instance_uuid):
        self._call(instance_uuid)
        if instance_uuid in self.instances:
            raise exception.InstanceExists(instance_uuid=instance_uuid)
        return self._start_task(instance_uuid, 'spawn')

    def reboot(self, instance_uuid):
        self._call(instance_uuid)
        self._known(instance_uuid)
        return self._start_task(instance_uuid, 'reboot')

    def destroy(self, instance_uuid):
        self._call(instance_uuid)
        self._known(instance_uuid)
        return self._start_task(instance_uuid, 'destroy')

    def migrate(self, instance_uuid, dest, migrate_data=None):
        self._call(instance_uuid)
        self._known(instance_uuid)
        return self._start_task(instance_uuid, 'migrate', dest=dest)

    # -- resize (see nova_lite.virt.driver) -------------------------------

    def prep_resize(self, instance_uuid, flavor):
        self._call(instance_uuid)
        return self._start_task(instance_uuid, 'prep_resize', flavor=flavor)

    def resize_instance(self, instance_uuid, dest):
        self._call(instance_uuid)
        self._known(instance_uuid)
        return self._start_task(instance_uuid, 'resize_instance', dest=dest)

    def finish_resize(self, instance_uuid, flavor):
        self._call(instance_uuid)
        return self._start_task(instance_uuid, 'finish_resize', flavor=flavor)

    def confirm_resize(self, instance_uuid):
        self._call(instance_uuid)
        with self._lock:
            self.instances.pop(instance_uuid, None)

    def revert_resize(self, instance_uuid):
        self._call(instance_uuid)
        with self._lock:
            self.instances.pop(instance_uuid, None)
            self.incoming.pop(instance_uuid, None)

    def finish_revert_resize(self, instance_uuid):
        self._call(instance_uuid)
        self._known(instance_uuid)
        return self._start_task(instance_uuid, 'finish_revert_resize')

    def adopt(self, instance_uuid, power_state):
        self._call(instance_uuid)
        self.instances[instance_uuid] = {'state': power_state}

    def poll_task(self, task_id):
        with self._lock:
            task = self.tasks.get(task_id)
        if task is None:
            raise exception.HypervisorError(reason='no task %s' % task_id)
        self._call(task['instance_uuid'])
        elapsed = time.monotonic() - task['started']
        fraction = min(1.0, elapsed / task['duration']
                       if task['duration'] else 1.0)
        if task['state'] == driver.TASK_SUCCESS:
            fraction = 1.0
        phase = None
        if task['operation'] == 'migrate':
            phase = next(name for limit, name in _MIGRATION_PHASES
                         if fraction < limit)
        return {'state': task['state'], 'progress': int(fraction * 100),
                'phase': phase, 'error': task['error']}

    def cancel_task(self, task_id):
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or task['state'] != driver.TASK_RUNNING:
                return
            task['state'] = driver.TASK_CANCELLED
            task['finished'] = time.monotonic()
            task['timer'].cancel()
        self._call(task['instance_uuid'])
        self._emit({'type': 'task', 'task_id': task_id,
                    'state': driver.TASK_CANCELLED})

    # -- block jobs ----------------------------------------------------

    def _check_disk(self, instance_uuid, disk):
        self._known(instance_uuid)
        if disk not in DISKS:
            raise exception.DiskNotFound(instance_uuid=instance_uuid,
                                         disk=disk)

    def block_job_start(self, instance_uuid, disk, kind):
        self._call(instance_uuid)
        self._check_disk(instance_uuid, disk)
        if kind not in driver.BLOCK_JOB_KINDS:
            raise exception.InvalidBlockJobKind(
                kind=kind, known=', '.join(driver.BLOCK_JOB_KINDS))
        key = (instance_uuid, disk)
        with self._lock:
            if key in self.block_jobs:
                raise exception.BlockJobBusy(
                    instance_uuid=instance_uuid, disk=disk,
                    kind=self.block_jobs[key]['kind'])
            job = dict(kind=kind, started=time.monotonic(), ready=False,
                       ending=False)
            self.block_jobs[key] = job
        job['timer'] = self._timer(self._block_job_seconds,
                                   self._block_job_done, key, job)

    def _block_job_done(self, key, job):
        with self._lock:
            if self.block_jobs.get(key) is not job or job['ending']:
                return
            if job['kind'] == 'copy':
                job['ready'] = True   # mirroring until pivot or abort
                state = 'ready'
            else:
                del self.block_jobs[key]
                state = 'completed'
        self._emit({'type': 'block_job', 'instance_uuid': key[0],
                    'disk': key[1], 'kind': job['kind'], 'state': state})

    def block_job_info(self, instance_uuid, disk):
        self._call(instance_uuid)
        self._check_disk(instance_uuid, disk)
        with self._lock:
            job = self.block_jobs.get((instance_uuid, disk))
            if job is None:
                return None
            elapsed = time.monotonic() - job['started']
            progress = 100 if job['ready'] else int(
                min(1.0, elapsed / max(self._block_job_seconds, 1e-9)) * 100)
            return {'kind': job['kind'], 'progress': progress,
                    'ready': job['ready'], 'ending': job['ending']}

    def block_job_abort(self, instance_uuid, disk, pivot=False):
        self._call(instance_uuid)
        self._check_disk(instance_uuid, disk)
        key = (instance_uuid, disk)
        with self._lock:
            job = self.block_jobs.get(key)
            if job is None:
                raise exception.BlockJobNotFound(instance_uuid=instance_uuid,
                                                 disk=disk)
            if job['ending']:
                raise exception.BlockJobEnding(instance_uuid=instance_uuid,
                                               disk=disk)
            if pivot and not job['ready']:
                raise exception.BlockJobNotReady(
                    instance_uuid=instance_uuid, disk=disk, kind=job['kind'])
            job['ending'] = True
            job['timer'].cancel()
        self._timer(self._abort_seconds, self._block_job_ended, key, job,
                    'completed' if pivot else 'cancelled')

    def _block_job_ended(self, key, job, state):
        with self._lock:
            if self.block_jobs.get(key) is job:
                del self.block_jobs[key]
        self._emit({'type': 'block_job', 'instance_uuid': key[0],
                    'disk': key[1], 'kind': job['kind'], 'state': state})
