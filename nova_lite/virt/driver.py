"""The virt driver interface.

A driver talks to one hypervisor.  Its methods **block** (they are remote
API calls); the compute manager never calls them on the eventlet hub but
through ``ThreadPoolDriver``, which runs each call in a bounded pool of
native threads.  That includes ``get_info``.

Long operations do not block for their whole length: ``spawn``, ``reboot``,
``destroy``, ``migrate`` and the block-job calls start the work and return a
task id at once; the compute polls ``poll_task`` from a greenthread timer
(see ``nova_lite.virt.tasks``).  A driver that can tell when work finishes
sets ``emits_events`` and calls the callback given to
``register_event_callback`` (from any thread) with:

    {'type': 'task', 'task_id': ..., 'state': 'success'|'error'|'cancelled'}
    {'type': 'block_job', 'instance_uuid': ..., 'disk': ..., 'kind': ...,
     'state': 'completed'|'cancelled'|'ready', 'error': ...}  (error:
     only when the job failed)
    {'type': 'power', 'instance_uuid': ..., 'state': 'running'|'paused'|
     'shutdown'|'crashed', 'reason': ...}

A ``power`` event is a change the driver did not cause itself (the guest
paused or resumed, or its process exited or was killed); the compute
records it as the instance's power_state unless an action owns the
instance (see ``ComputeManager._handle_event``).

Live migration between two computes (after Nova's pre_live_migration):
the source's ``migration_source_data`` goes to the destination's
``prepare_incoming``, whose ``migrate_data`` goes to the source's
``migrate``; the destination then ``adopt``s, or ``abort_incoming`` on
failure.  The defaults below suit a driver with nothing to prepare; each
driver receives only from its own kind, by ``name``.

Resize (after Nova's cold migration with a new flavor): the target's
``prep_resize``, the source's ``resize_instance`` (power off, hand the
disk over), the target's ``finish_resize`` (start it with the new
flavor); then the source's ``confirm_resize`` drops its copy, or the
target's ``revert_resize`` drops the new one and the source's
``finish_revert_resize`` starts the old one again.  The three steps and
``finish_revert_resize`` return a task id.  A driver without resize
raises ``ResizeNotSupported`` (the resize is then rolled back).
"""

import abc
import time

from nova_lite import concurrency
from nova_lite import exception

# poll_task() states.
TASK_RUNNING = 'running'
TASK_SUCCESS = 'success'
TASK_ERROR = 'error'
TASK_CANCELLED = 'cancelled'
TASK_DONE = (TASK_SUCCESS, TASK_ERROR, TASK_CANCELLED)

BLOCK_JOB_KINDS = ('copy', 'commit', 'pull')


class ComputeDriver(abc.ABC):
    """What the compute manager needs from a hypervisor."""

    name = None            # the [compute] driver name
    emits_events = False

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host

    def register_event_callback(self, callback):
        """``callback(event)`` is called, from any thread, per event."""

    @abc.abstractmethod
    def get_info(self, instance_uuid):
        """{'state': 'running'|'shutdown'|...} of a known instance."""

    @abc.abstractmethod
    def get_stats(self, instance_uuid):
        """Monitor statistics of a running instance."""

    @abc.abstractmethod
    def spawn(self, instance_uuid):
        """Start booting; returns a task id."""

    @abc.abstractmethod
    def reboot(self, instance_uuid):
        """Start a reboot; returns a task id."""

    @abc.abstractmethod
    def destroy(self, instance_uuid):
        """Start destroying; returns a task id."""

    def migration_source_data(self, instance_uuid):
        """Source side: what the destination needs to prepare."""
        return {'driver': self.name}

    def prepare_incoming(self, instance_uuid, source_data):
        """Destination side: get ready to receive ``instance_uuid``;
        returns the ``migrate_data`` for the source's ``migrate``.  Data
        from another kind of driver is refused (``InvalidInput``)."""
        source = (source_data or {}).get('driver')
        if source != self.name:
            raise exception.InvalidInput(
                reason='instance %s comes from a %s compute; host %s runs '
                       '%s and receives only from %s' % (
                           instance_uuid, source, self.host, self.name,
                           self.name))
        return {'driver': self.name}

    def abort_incoming(self, instance_uuid):
        """Destination side: undo ``prepare_incoming`` of a migration
        that will not come; nothing to do when there is nothing left."""

    @abc.abstractmethod
    def migrate(self, instance_uuid, dest, migrate_data=None):
        """Start migrating to ``dest`` with the ``migrate_data`` its
        ``prepare_incoming`` returned; returns a task id.

        ``poll_task`` reports the migration ``phase``: 'setup',
        'converging' (interruptible) then 'switchover'.
        """

    def prep_resize(self, instance_uuid, flavor):
        """Target side: get ready for ``instance_uuid`` with ``flavor``
        (the instance's flavor columns); returns a task id."""
        raise exception.ResizeNotSupported(driver=self.name)

    def resize_instance(self, instance_uuid, dest):
        """Source side: power off and hand the disk over to ``dest``;
        returns a task id."""
        raise exception.ResizeNotSupported(driver=self.name)

    def finish_resize(self, instance_uuid, flavor):
        """Target side: start the handed-over instance with ``flavor``;
        returns a task id."""
        raise exception.ResizeNotSupported(driver=self.name)

    def confirm_resize(self, instance_uuid):
        """Source side: drop the old copy (nothing left: nothing to
        do)."""
        raise exception.ResizeNotSupported(driver=self.name)

    def revert_resize(self, instance_uuid):
        """Target side: drop what prep or finish made (nothing left:
        nothing to do)."""
        raise exception.ResizeNotSupported(driver=self.name)

    def finish_revert_resize(self, instance_uuid):
        """Source side: start the old copy again; returns a task id."""
        raise exception.ResizeNotSupported(driver=self.name)

    @abc.abstractmethod
    def adopt(self, instance_uuid, power_state):
        """Take over an instance migrated here from another host."""

    @abc.abstractmethod
    def poll_task(self, task_id):
        """{'state', 'progress' (0-100), 'phase', 'error'} of a task.

        A driver may forget a task a while after it ended (a hypervisor
        does not keep every task for good); polling it then raises
        ``HypervisorError``.
        """

    @abc.abstractmethod
    def cancel_task(self, task_id):
        """Ask the hypervisor to stop a running task; a task that has
        ended (or is forgotten) is left as it is."""

    @abc.abstractmethod
    def block_job_start(self, instance_uuid, disk, kind):
        """Start a block job; refuses a disk that already has one."""

    @abc.abstractmethod
    def block_job_info(self, instance_uuid, disk):
        """{'kind', 'progress', 'ready', 'ending'} or None."""

    @abc.abstractmethod
    def block_job_abort(self, instance_uuid, disk, pivot=False):
        """Start ending a block job; it is gone when its event comes."""


def prune_tasks(tasks, retention):
    """Drop from ``tasks`` (id -> dict) those that finished over
    ``retention`` seconds ago; call with the driver's lock held."""
    cutoff = time.monotonic() - retention
    for task_id in [task_id for task_id, task in tasks.items()
                    if task.get('finished', cutoff) < cutoff]:
        del tasks[task_id]


class ThreadPoolDriver:
    """Runs every public call of ``driver`` in the native thread pool.

    The compute manager only ever holds one of these, so no driver call can
    block the hub by mistake.  A waiting greenthread holds no thread.
    """

    def __init__(self, driver):
        self._driver = driver
        self.emits_events = driver.emits_events

    def register_event_callback(self, callback):
        self._driver.register_event_callback(callback)

    def __getattr__(self, name):
        method = getattr(self._driver, name)
        if name.startswith('_') or not callable(method):
            return method

        def call_in_thread(*args, **kwargs):
            return concurrency.execute_in_thread(method, *args, **kwargs)
        return call_in_thread

    @property
    def unwrapped(self):
        """The driver itself, for tests that inspect the fake hypervisor."""
        return self._driver
