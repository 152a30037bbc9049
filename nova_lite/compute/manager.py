"""Compute manager: owns the instances of one host.

Concurrency model (see nova_lite.virt): every driver call runs in the native
thread pool; long operations are driver tasks a greenthread polls (woken
early by completion events); each instance has a job controller
(``virt.jobs``) and a monitor lock.  Casts that fail mark the instance ERROR
with the reason; nothing a caller sends can stop the service.
"""

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite.compute import block_jobs
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import context as nova_context
from nova_lite import exception
from nova_lite import manager
from nova_lite import rpc
from nova_lite import concurrency
from nova_lite import virt
from nova_lite.virt import jobs
from nova_lite.virt import tasks

LOG = logging.getLogger(__name__)

# What each long operation sets on success.
_DONE = {
    'spawn': dict(vm_state='active', power_state='running'),
    'reboot': dict(vm_state='active', power_state='running'),
    'destroy': dict(vm_state='deleted', power_state='nostate'),
}


class ComputeManager(block_jobs.BlockJobsMixin, manager.Manager):
    """Server side of the compute RPC API (see ``ComputeRPCAPI``)."""

    target = messaging.Target(version='1.1')

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

    def _task(self, instance_uuid, operation, task_id, timeout=None,
              on_poll=None):
        return tasks.Task(self.driver, task_id, operation, instance_uuid,
                          self.task_events,
                          self.conf.compute.task_poll_interval,
                          timeout=timeout, on_poll=on_poll,
                          monitor=self.jobs[instance_uuid].monitor)

    def _fail(self, context, instance_uuid, operation, exc):
        LOG.warning('%s of instance %s failed: %s', operation, instance_uuid,
                    exc)
        self.db.instance_update(instance_uuid, vm_state='error',
                                task_state=None, fault=str(exc))
        self._notify(context, 'compute.instance.%s.error' % operation,
                     {'instance_uuid': instance_uuid, 'reason': str(exc)})

    def _run_operation(self, context, instance_uuid, operation, start,
                       done=None):
        """Run one long operation under a MODIFY job; never raises.

        With ``done`` (a vm_state), a request that finds the instance
        already there once it holds the job is a repeat and is ignored: a
        conductor that took over a dead one's work re-sends what it cannot
        tell was received.
        """
        payload = {'instance_uuid': instance_uuid, 'host': self.host}
        instance_jobs = self.jobs[instance_uuid]
        try:
            with instance_jobs.job(jobs.MODIFY):
                if (done and self.db.instance_get(instance_uuid)['vm_state']
                        == done):
                    LOG.info('%s: instance %s is already %s; repeated '
                             'request ignored', operation, instance_uuid,
                             done)
                    return
                self._notify(context, 'compute.instance.%s.start' % operation,
                             payload)
                self.db.instance_update(instance_uuid,
                                        task_state=operation + 'ing')
                with instance_jobs.monitor():
                    task_id = start(instance_uuid)
                self._task(instance_uuid, operation, task_id).wait()
        except (exception.NovaLiteException, messaging.MessagingException,
                OSError) as exc:
            self._fail(context, instance_uuid, operation, exc)
            return
        self.db.instance_update(instance_uuid, task_state=None,
                                fault=None, **_DONE[operation])
        if operation == 'destroy':
            self.jobs.forget(instance_uuid)
        self._notify(context, 'compute.instance.%s.end' % operation, payload)
        LOG.info('%s of instance %s done', operation, instance_uuid)

    def _cast_target(self, instance_uuid, operation):
        """The instance for a cast, or None (logged) if it is not ours."""
        try:
            return self._get_own_instance(instance_uuid)
        except exception.InstanceNotFound as exc:
            LOG.warning('%s: %s; ignored', operation, exc)
            return None

    # -- RPC API: casts ------------------------------------------------

    def spawn(self, context, instance_uuid):
        """Cast: boot ``instance_uuid`` here (creating its row if new)."""
        try:
            self.db.instance_create(instance_uuid, host=self.host)
        except exception.InstanceExists:
            if self._cast_target(instance_uuid, 'spawn') is None:
                return
        self._run_operation(context, instance_uuid, 'spawn',
                            self.driver.spawn, done='active')

    def reboot(self, context, instance_uuid):
        """Cast: reboot ``instance_uuid``."""
        if self._cast_target(instance_uuid, 'reboot') is not None:
            self._run_operation(context, instance_uuid, 'reboot',
                                self.driver.reboot)

    def destroy(self, context, instance_uuid):
        """Cast: destroy ``instance_uuid``."""
        if self._cast_target(instance_uuid, 'destroy') is not None:
            self._run_operation(context, instance_uuid, 'destroy',
                                self.driver.destroy, done='deleted')

    def migrate(self, context, instance_uuid, dest):
        """Cast: live-migrate ``instance_uuid`` to host ``dest``.

        Runs as the MIGRATION_OUT async job; QUERY jobs (get_stats) are let
        in while the migration converges, and only then.
        """
        instance = self._cast_target(instance_uuid, 'migrate')
        if instance is None:
            return
        if instance['task_state'] == 'migrating':
            # A conductor that took over a dead one's work may re-send it.
            LOG.info('migrate: instance %s is already migrating; repeated '
                     'request ignored', instance_uuid)
            return
        if dest == self.host:
            LOG.warning('migrate: %s is already on %s; ignored',
                        instance_uuid, dest)
            return
        payload = {'instance_uuid': instance_uuid, 'host': self.host,
                   'dest': dest}
        instance_jobs = self.jobs[instance_uuid]

        def follow_phase(status):
            if (status['phase'] == 'converging' and
                    not instance_jobs.interruptible):
                instance_jobs.enter_interruptible()
            elif (status['phase'] != 'converging' and
                    instance_jobs.interruptible):
                instance_jobs.leave_interruptible()

        try:
            with instance_jobs.async_job_held(jobs.MIGRATION_OUT,
                                              mask={jobs.QUERY}):
                if self.db.instance_get(instance_uuid)['host'] != self.host:
                    LOG.info('migrate: instance %s has left %s already; '
                             'repeated request ignored', instance_uuid,
                             self.host)
                    return
                self.db.instance_update(instance_uuid, task_state='migrating')
                self._notify(context, 'compute.instance.migrate.start',
                             payload)
                try:
                    with instance_jobs.monitor():
                        task_id = self.driver.migrate(instance_uuid, dest)
                    self._task(instance_uuid, 'migrate', task_id,
                               on_poll=follow_phase).wait()
                finally:
                    if instance_jobs.interruptible:
                        instance_jobs.leave_interruptible()
        except (exception.NovaLiteException, messaging.MessagingException,
                OSError) as exc:
            self._fail(context, instance_uuid, 'migrate', exc)
            return
        # The job state is kept (not forgotten): a greenthread may still hold
        # its monitor lock, and a new lock would let two commands overlap.
        self.db.instance_update(instance_uuid, host=dest, task_state=None)
        self.compute_rpcapi.adopt_migrated(context, dest, instance_uuid,
                                           instance['power_state'])
        self._notify(context, 'compute.instance.migrate.end', payload)

    def adopt_migrated(self, context, instance_uuid, power_state):
        """Cast (to the destination): take over a migrated instance."""
        self.jobs[instance_uuid].run(jobs.MODIFY, self.driver.adopt,
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
        self._get_own_instance(instance_uuid)
        instance_jobs = self.jobs[instance_uuid]
        with instance_jobs.job(jobs.QUERY):
            during = instance_jobs.async_job
            with instance_jobs.monitor():
                stats = self.driver.get_stats(instance_uuid)
        stats['during_async_job'] = during
        return stats
