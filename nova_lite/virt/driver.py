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
     'state': 'completed'|'cancelled'|'ready'}
"""

import abc

from nova_lite import concurrency

# poll_task() states.
TASK_RUNNING = 'running'
TASK_SUCCESS = 'success'
TASK_ERROR = 'error'
TASK_CANCELLED = 'cancelled'
TASK_DONE = (TASK_SUCCESS, TASK_ERROR, TASK_CANCELLED)

BLOCK_JOB_KINDS = ('copy', 'commit', 'pull')


class ComputeDriver(abc.ABC):
    """What the compute manager needs from a hypervisor."""

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

    @abc.abstractmethod
    def migrate(self, instance_uuid, dest):
        """Start migrating to ``dest``; returns a task id.

        ``poll_task`` reports the migration ``phase``: 'setup',
        'converging' (interruptible) then 'switchover'.
        """

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
