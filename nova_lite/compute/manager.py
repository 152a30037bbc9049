"""Compute manager: owns the instances of one host.

Concurrency model (see nova_lite.virt): every driver call runs in the native
thread pool; long operations are driver tasks a greenthread polls (woken
early by completion events); each instance has a job controller
(``virt.jobs``) and a monitor lock.  Casts that fail mark the instance ERROR
with the reason; nothing a caller sends can stop the service.
"""

import contextlib

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite.compute import block_jobs
from nova_lite.compute import resources
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite.compute import task_states
from nova_lite import context as nova_context
from nova_lite import exception
from nova_lite import manager
from nova_lite import rpc
from nova_lite import concurrency
from nova_lite import virt
from nova_lite.virt import jobs
from nova_lite.virt import tasks

LOG = logging.getLogger(__name__)

# Failures a compute host expects (logged without a traceback).
_EXPECTED_ERRORS = (exception.NovaLiteException,
                    messaging.MessagingException, OSError)

# What each long operation but migrate sets on success.
_DONE = {
    'spawn': dict(vm_state='active', power_state='running'),
    'reboot': dict(vm_state='active', power_state='running'),
    'destroy': dict(vm_state='deleted', power_state='nostate'),
}


class ComputeManager(block_jobs.BlockJobsMixin, manager.Manager):
    """Server side of the compute RPC API (see ``ComputeRPCAPI``).

    Every long operation is carried out at most once per request: it
    starts only after a compare-and-swap of the instance's task_state from
    the conductor's pending state (``reboot_pending``) to the running one
    (``rebooting``; see ``task_states``).  A request with the conductor's
    ``work_id`` (1.2) also needs that work to be the instance's newest; a
    request without one (a 1.1 conductor, or a direct caller) may also
    start from no task.  A repeated or stale request matches nothing and
    is ignored.
    """

    target = messaging.Target(version='1.2')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.driver = None
        self.jobs = jobs.JobControl(self.conf.compute.job_acquire_timeout)
        self.task_events = tasks.TaskEvents()
        self._event_queue = None
        self._notifier = None
        self._compute_rpcapi = None

    def init_host(self):
        self.driver = virt.load_driver(self.conf, self.host)
        resources.report_capacity(self.conf, self.db, self.host)
        if self.driver.emits_events:
            # Driver threads hand events to one greenthread.
            self._event_queue = concurrency.HubQueue(self._handle_event)
            self.driver.register_event_callback(self._event_queue.put)

    def cleanup_host(self):
        if self._event_queue is not None:
            self._event_queue.close()

    @property
    def notifier(self):
        if self._notifier is None:
            self._notifier = rpc.get_notifier('compute.%s' % self.host)
        return self._notifier

    @property
    def compute_rpcapi(self):
        if self._compute_rpcapi is None:
            self._compute_rpcapi = compute_rpcapi.ComputeRPCAPI(self.conf,
                                                                db=self.db)
        return self._compute_rpcapi

    def _handle_event(self, event):
        if event['type'] == 'task':
            self.task_events.done(event['task_id'])
        elif event['type'] == 'block_job':
            self._block_job_event(event)

    def _notify(self, context, event_type, payload):
        try:
            self.notifier.info(context or nova_context.get_admin_context(),
                               event_type, payload)
        except Exception:  # noqa: BLE001 - a notification is never fatal
            LOG.exception('Cannot emit %s', event_type)

    def _get_own_instance(self, instance_uuid):
        instance = self.db.instance_get(instance_uuid)
        if instance['host'] != self.host:
            # Never act on another host's instance, even if a stale message
            # reached this one.
            raise exception.InstanceNotOnHost(instance_uuid=instance_uuid,
                                              host=self.host)
        return instance

    @contextlib.contextmanager
    def _own_jobs(self, instance_uuid):
        """The job state of an instance of this host, held for the block.

        Checked once held: an instance that has left (or never came) gets
        no state kept for it, even if it left just before.
        """
        with self.jobs.held(instance_uuid) as instance_jobs:
            try:
                self._get_own_instance(instance_uuid)
            except exception.InstanceNotFound:
                self.jobs.forget(instance_uuid)
                raise
            yield instance_jobs

    def _run_job(self, instance_uuid, job_type, func, *args, **kwargs):
        """``func(instance_uuid, ...)``, one driver command, as a
        ``job_type`` job on an instance of this host."""
        with self._own_jobs(instance_uuid) as instance_jobs:
            return instance_jobs.run(job_type, func, instance_uuid, *args,
                                     **kwargs)

    def _task(self, instance_jobs, operation, task_id, on_poll=None):
        return tasks.Task(self.driver, task_id, operation,
                          instance_jobs.instance_uuid, self.task_events,
                          self.conf.compute.task_poll_interval,
                          on_poll=on_poll, monitor=instance_jobs.monitor)

    def _begin(self, instance_uuid, operation, work_id, release=False):
        """Claim the instance for ``operation`` (see the class docstring),
        or with ``release`` only free it: the instance row, or None
        (logged) when the request is repeated, stale or not for this
        host."""
        pending = task_states.pending(operation)
        expected = (pending,) if work_id is not None else (pending, None)
        task_state = None if release else task_states.running(operation)
        instance = self.db.instance_begin_task(
            instance_uuid, task_state, expected,
            task_states.allowed_vm_states(operation), self.host,
            work_id=work_id)
        if instance is None:
            try:
                found = self.db.instance_get(instance_uuid)
                now = 'on %(host)s, %(vm_state)s, task %(task_state)s' % found
            except exception.InstanceNotFound:
                now = 'not found'
            LOG.info('%s of instance %s (work %s) ignored: it is %s, '
                     'a repeated or stale request', operation, instance_uuid,
                     work_id, now)
        return instance

    def _fail(self, context, instance_uuid, operation, exc):
        """Mark the instance ERROR with the reason; never raises."""
        if isinstance(exc, _EXPECTED_ERRORS):
            LOG.warning('%s of instance %s failed: %s', operation,
                        instance_uuid, exc)
        else:
            LOG.error('%s of instance %s failed unexpectedly: %r', operation,
                      instance_uuid, exc, exc_info=exc)
        try:
            self.db.instance_update(instance_uuid, vm_state='error',
                                    task_state=None,
                                    fault=str(exc) or type(exc).__name__)
        except Exception:  # noqa: BLE001 - nothing more can be done here
            LOG.exception('Cannot record the failure of %s of instance %s',
                          operation, instance_uuid)
        self._notify(context, 'compute.instance.%s.error' % operation,
                     {'instance_uuid': instance_uuid, 'reason': str(exc)})

    def _run_operation(self, context, instance_uuid, operation, start,
                       work_id=None):
        """Run one long operation under a MODIFY job; never raises.

        Whatever goes wrong once the instance is claimed, the claim is
        released: the instance ends ERROR with the reason, never with its
        task_state left set.
        """
        if self._begin(instance_uuid, operation, work_id) is None:
            return
        payload = {'instance_uuid': instance_uuid, 'host': self.host}
        try:
            self._notify(context, 'compute.instance.%s.start' % operation,
                         payload)
            with self.jobs.held(instance_uuid) as instance_jobs:
                with instance_jobs.job(jobs.MODIFY):
                    with instance_jobs.monitor():
                        task_id = start(instance_uuid)
                    self._task(instance_jobs, operation, task_id).wait()
                    self.db.instance_update(instance_uuid, task_state=None,
                                            fault=None,
                                            **_DONE[operation])
        except Exception as exc:  # noqa: BLE001 - never leave it claimed
            self._fail(context, instance_uuid, operation, exc)
            return
        if operation == 'destroy':
            self.jobs.forget(instance_uuid)
        self._notify(context, 'compute.instance.%s.end' % operation, payload)
        LOG.info('%s of instance %s done', operation, instance_uuid)

    # -- RPC API: casts ------------------------------------------------

    def spawn(self, context, instance_uuid, work_id=None):
        """Cast: boot ``instance_uuid`` here.

        With ``work_id`` (1.2) the instance is the conductor's build, on
        this host; without, it is created here if new.
        """
        if work_id is None:
            try:
                self.db.instance_create(instance_uuid, host=self.host)
            except exception.InstanceExists:
                pass   # _begin decides whether it is ours to boot
        self._run_operation(context, instance_uuid, 'spawn',
                            self.driver.spawn, work_id)

    def reboot(self, context, instance_uuid, work_id=None):
        """Cast: reboot ``instance_uuid``; 1.2 added ``work_id``."""
        self._run_operation(context, instance_uuid, 'reboot',
                            self.driver.reboot, work_id)

    def destroy(self, context, instance_uuid, work_id=None):
        """Cast: destroy ``instance_uuid``; 1.2 added ``work_id``."""
        self._run_operation(context, instance_uuid, 'destroy',
                            self.driver.destroy, work_id)

    def migrate(self, context, instance_uuid, dest, work_id=None):
        """Cast: live-migrate ``instance_uuid`` to host ``dest``; 1.2 added
        ``work_id``.

        Runs as the MIGRATION_OUT async job; QUERY jobs (get_stats) are let
        in while the migration converges, and only then.  A repeated
        request is dropped by the claim, before it could queue behind the
        running migration.
        """
        if dest == self.host:
            # Nothing to move; only release the conductor's claim.
            if self._begin(instance_uuid, 'migrate', work_id,
                           release=True) is not None:
                LOG.warning('migrate: %s is already on %s; ignored',
                            instance_uuid, dest)
            return
        instance = self._begin(instance_uuid, 'migrate', work_id)
        if instance is None:
            return
        payload = {'instance_uuid': instance_uuid, 'host': self.host,
                   'dest': dest}
        try:
            self._notify(context, 'compute.instance.migrate.start', payload)
            with self.jobs.held(instance_uuid) as instance_jobs:
                self._migrate(instance_jobs, dest)
            # Gone from here: drop its job state (once nobody holds it).
            self.jobs.forget(instance_uuid)
            self.compute_rpcapi.adopt_migrated(context, dest, instance_uuid,
                                               instance['power_state'])
        except Exception as exc:  # noqa: BLE001 - never leave it claimed
            self._fail(context, instance_uuid, 'migrate', exc)
            return
        self._notify(context, 'compute.instance.migrate.end', payload)

    def _migrate(self, instance_jobs, dest):
        instance_uuid = instance_jobs.instance_uuid

        def follow_phase(status):
            if (status['phase'] == 'converging' and
                    not instance_jobs.interruptible):
                instance_jobs.enter_interruptible()
            elif (status['phase'] != 'converging' and
                    instance_jobs.interruptible):
                instance_jobs.leave_interruptible()

        with instance_jobs.async_job_held(jobs.MIGRATION_OUT,
                                          mask={jobs.QUERY}):
            try:
                with instance_jobs.monitor():
                    task_id = self.driver.migrate(instance_uuid, dest)
                self._task(instance_jobs, 'migrate', task_id,
                           on_poll=follow_phase).wait()
            finally:
                if instance_jobs.interruptible:
                    instance_jobs.leave_interruptible()
            self.db.instance_update(instance_uuid, host=dest, task_state=None)

    def adopt_migrated(self, context, instance_uuid, power_state):
        """Cast (to the destination): take over a migrated instance."""
        self.jobs.run(instance_uuid, jobs.MODIFY, self.driver.adopt,
                      instance_uuid, power_state)

    # -- RPC API: calls ------------------------------------------------

    @messaging.expected_exceptions(*block_jobs.CALLER_ERRORS)
    def get_info(self, context, instance_uuid):
        """Call: the instance's state on this host, e.g. ``running``."""
        instance = self._get_own_instance(instance_uuid)
        info = {'uuid': instance_uuid, 'host': self.host,
                'vm_state': instance['vm_state'],
                'task_state': instance['task_state'],
                'state': instance['power_state']}
        if instance['vm_state'] == 'active':
            info['state'] = self.driver.get_info(instance_uuid)['state']
        return info

    @messaging.expected_exceptions(*block_jobs.CALLER_ERRORS)
    def get_stats(self, context, instance_uuid):
        """Call: monitor statistics; a QUERY job, so it is served during a
        migration only while the migration converges."""
        with self._own_jobs(instance_uuid) as instance_jobs, \
                instance_jobs.job(jobs.QUERY):
            during = instance_jobs.async_job
            with instance_jobs.monitor():
                stats = self.driver.get_stats(instance_uuid)
        stats['during_async_job'] = during
        return stats
