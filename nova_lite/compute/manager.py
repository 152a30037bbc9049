"""Compute manager: owns the instances of one host.

Concurrency model (see nova_lite.virt): every driver call runs in the native
thread pool; long operations are driver tasks a greenthread polls (woken
early by completion events); each instance has a job controller
(``virt.jobs``) and a monitor lock.  Casts that fail mark the instance ERROR
with the reason; nothing a caller sends can stop the service.

A live migration goes source -> destination ``pre_live_migration`` (1.3;
the destination's driver prepares and returns ``migrate_data``) -> the
source's driver migrates -> destination ``adopt_migrated``.  When it fails
before the instance has moved, the destination is told to roll back
(``rollback_live_migration_at_destination``); the source still runs, so
the instance stays ``active`` here with the fault recorded.

Power changes the driver reports (``power`` events: a guest paused, shut
down or killed) update the instance's power_state unless an action owns
the instance (its task_state is set), as Nova's power-state sync does; a
``crashed`` or ``shutdown`` instance is announced as
``compute.instance.power_off``.
"""

import contextlib

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite.compute import block_jobs
from nova_lite.compute import resize
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

# Power states that mean the guest is gone (notified as power_off).
_POWER_OFF_STATES = ('crashed', 'shutdown')
# A source that is still in one of these after a failed migration runs on.
_LIVE_POWER_STATES = ('running', 'paused')


class _MigrationRolledBack(Exception):
    """A migration failed before the instance moved; the source runs on
    in ``power_state``."""

    def __init__(self, cause, power_state):
        super().__init__(str(cause))
        self.cause = cause
        self.power_state = power_state


# What each long operation but migrate sets on success.
_DONE = {
    'spawn': dict(vm_state='active', power_state='running'),
    'reboot': dict(vm_state='active', power_state='running'),
    'destroy': dict(vm_state='deleted', power_state='nostate'),
}


def _start(operation, start, instance_uuid):
    """``start(instance_uuid)``: the driver's task id; None for a destroy
    of an instance the hypervisor does not have (gone already, e.g. the
    target of a revert that failed halfway: done, as Nova treats it)."""
    try:
        return start(instance_uuid)
    except exception.InstanceNotFound:
        if operation != 'destroy':
            raise
        LOG.warning('destroy of instance %s: this hypervisor has no such '
                    'instance; it is gone already', instance_uuid)
        return None


class ComputeManager(block_jobs.BlockJobsMixin, resize.ResizeMixin,
                     manager.Manager):
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

    target = messaging.Target(version='1.4')

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
        elif event['type'] == 'power':
            self._power_event(event)

    def _power_event(self, event):
        """Record a power change the driver saw (see the module doc)."""
        instance_uuid, state = event['instance_uuid'], event['state']
        try:
            instance = self.db.instance_get(instance_uuid)
            if instance['host'] != self.host or instance['task_state']:
                # Another host's, or an action in progress owns its state.
                LOG.info('Power event %s of instance %s ignored: it is on '
                         '%s, task %s', state, instance_uuid,
                         instance['host'], instance['task_state'])
                return
            self.db.instance_update(instance_uuid, power_state=state)
        except Exception:  # noqa: BLE001 - the event loop must live on
            LOG.exception('Cannot record power state %s of instance %s',
                          state, instance_uuid)
            return
        LOG.warning('Instance %s is %s: %s', instance_uuid, state,
                    event.get('reason'))
        if state in _POWER_OFF_STATES:
            self._notify(None, 'compute.instance.power_off',
                         {'instance_uuid': instance_uuid, 'host': self.host,
                          'state': state, 'reason': event.get('reason')})

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

    def _fail(self, context, instance_uuid, operation, exc,
              vm_state='error', **values):
        """Mark the instance ERROR (or ``vm_state``, with ``values``) with
        the reason and no task; never raises."""
        if isinstance(exc, _EXPECTED_ERRORS):
            LOG.warning('%s of instance %s failed: %s', operation,
                        instance_uuid, exc)
        else:
            LOG.error('%s of instance %s failed unexpectedly: %r', operation,
                      instance_uuid, exc, exc_info=exc)
        try:
            self.db.instance_update(instance_uuid, vm_state=vm_state,
                                    task_state=None,
                                    fault=str(exc) or type(exc).__name__,
                                    **values)
        except Exception:  # noqa: BLE001 - nothing more can be done here
            LOG.exception('Cannot record the failure of %s of instance %s',
                          operation, instance_uuid)
        if operation == 'spawn':
            # A build that failed here gives its capacity claim back.
            self._release_claim(instance_uuid)
        self._notify(context, 'compute.instance.%s.error' % operation,
                     {'instance_uuid': instance_uuid, 'reason': str(exc)})

    def _release_claim(self, instance_uuid):
        """Drop the scheduler's claim of the instance; never raises."""
        try:
            self.db.allocation_release(instance_uuid)
        except Exception:  # noqa: BLE001 - logged; the operation is over
            LOG.exception('Cannot release the claim of instance %s',
                          instance_uuid)

    def _clean_up_destroyed(self, instance_uuid):
        """Give back what a destroyed instance held: its claim, the claim
        of a resize that waited for confirmation, and its volumes (they
        are detached, as Nova detaches them on delete); never raises."""
        for what, release in (
                ('claim', self.db.allocation_release),
                ('resize claims', self.db.migration_confirm_deleted),
                ('volumes', self.db.volume_detach_all)):
            try:
                release(instance_uuid)
            except Exception:  # noqa: BLE001 - logged; the destroy is done
                LOG.exception('Cannot release the %s of instance %s', what,
                              instance_uuid)

    def _move_claim(self, instance_uuid, dest):
        """Move the instance's claim to ``dest``; never raises."""
        try:
            self.db.allocation_move(instance_uuid, dest)
        except Exception:  # noqa: BLE001 - logged; the migration is done
            LOG.exception('Cannot move the claim of instance %s to %s',
                          instance_uuid, dest)

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
                        task_id = _start(operation, start, instance_uuid)
                    if task_id is not None:
                        self._task(instance_jobs, operation, task_id).wait()
                    self.db.instance_update(instance_uuid, task_state=None,
                                            fault=None,
                                            **_DONE[operation])
        except Exception as exc:  # noqa: BLE001 - never leave it claimed
            self._fail(context, instance_uuid, operation, exc)
            return
        if operation == 'destroy':
            self.jobs.forget(instance_uuid)
            self._clean_up_destroyed(instance_uuid)
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
        running migration.  A migration that fails before the instance
        moved is rolled back at the destination and leaves the instance
        ``active`` here (with the fault) when its source still runs.
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
                self._migrate(context, instance_jobs, dest)
            # Gone from here: drop its job state (once nobody holds it).
            self.jobs.forget(instance_uuid)
            self.compute_rpcapi.adopt_migrated(context, dest, instance_uuid,
                                               instance['power_state'])
        except _MigrationRolledBack as rolled:
            self._fail(context, instance_uuid, 'migrate', rolled.cause,
                       vm_state='active', power_state=rolled.power_state)
            return
        except Exception as exc:  # noqa: BLE001 - never leave it claimed
            self._fail(context, instance_uuid, 'migrate', exc)
            return
        self._notify(context, 'compute.instance.migrate.end', payload)

    def _migrate(self, context, instance_jobs, dest):
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
                try:
                    with instance_jobs.monitor():
                        source_data = self.driver.migration_source_data(
                            instance_uuid)
                    migrate_data = None
                    if self.compute_rpcapi.can_send_version('1.3'):
                        migrate_data = self.compute_rpcapi.pre_live_migration(
                            context, dest, instance_uuid, source_data)
                    with instance_jobs.monitor():
                        task_id = self.driver.migrate(instance_uuid, dest,
                                                      migrate_data)
                    self._task(instance_jobs, 'migrate', task_id,
                               on_poll=follow_phase).wait()
                finally:
                    if instance_jobs.interruptible:
                        instance_jobs.leave_interruptible()
            except Exception as exc:
                self._roll_back_migration(context, instance_jobs, dest, exc)
                raise
            # Moved: from here on a failure is no rollback (the source is
            # gone), and the instance ends ERROR. Its claim follows it
            # first, so whoever sees the migration settled (task_state
            # cleared) also sees what dest now really holds.
            self._move_claim(instance_uuid, dest)
            self.db.instance_update(instance_uuid, host=dest, task_state=None)

    def _roll_back_migration(self, context, instance_jobs, dest, exc):
        """The migration failed before the instance moved: tell ``dest``
        to drop what it prepared, and raise ``_MigrationRolledBack`` when
        the failure is one a host expects and the source still runs (an
        unexpected error, or a source that is gone, ends ERROR)."""
        instance_uuid = instance_jobs.instance_uuid
        if self.compute_rpcapi.can_send_version('1.3'):
            try:
                self.compute_rpcapi.rollback_live_migration_at_destination(
                    context, dest, instance_uuid)
            except Exception:  # noqa: BLE001 - report the first error
                LOG.exception('Cannot ask %s to roll back the migration of '
                              '%s', dest, instance_uuid)
        if not isinstance(exc, _EXPECTED_ERRORS):
            return
        try:
            with instance_jobs.monitor():
                state = self.driver.get_info(instance_uuid)['state']
        except Exception as info_exc:  # noqa: BLE001 - then it is ERROR
            LOG.warning('Instance %s after its failed migration: %s',
                        instance_uuid, info_exc)
            return
        if state in _LIVE_POWER_STATES:
            LOG.warning('Migration of %s to %s rolled back; it runs on here',
                        instance_uuid, dest)
            raise _MigrationRolledBack(exc, state) from exc

    def rollback_live_migration_at_destination(self, context,
                                               instance_uuid):
        """Cast (to the destination, 1.3): a migration that will not come;
        the driver drops what ``pre_live_migration`` prepared."""
        try:
            self.jobs.run(instance_uuid, jobs.MODIFY,
                          self.driver.abort_incoming, instance_uuid)
        finally:
            try:
                here = self.db.instance_get(instance_uuid)['host'] == \
                    self.host
            except exception.InstanceNotFound:
                here = False
            if not here:
                self.jobs.forget(instance_uuid)

    def adopt_migrated(self, context, instance_uuid, power_state):
        """Cast (to the destination): take over a migrated instance."""
        self.jobs.run(instance_uuid, jobs.MODIFY, self.driver.adopt,
                      instance_uuid, power_state)

    # -- RPC API: calls ------------------------------------------------

    @messaging.expected_exceptions(exception.MigrationPreCheckError)
    def pre_live_migration(self, context, instance_uuid, source_data):
        """Call (to the destination, 1.3): prepare to receive
        ``instance_uuid`` (a MODIFY job); returns the ``migrate_data`` the
        source's driver needs.  ``MigrationPreCheckError`` when this host
        cannot take it (e.g. another kind of driver)."""
        try:
            if self.db.instance_get(instance_uuid)['host'] == self.host:
                raise exception.InvalidInput(
                    reason='the instance is on this host already')
            return self.jobs.run(instance_uuid, jobs.MODIFY,
                                 self.driver.prepare_incoming, instance_uuid,
                                 source_data)
        except exception.NovaLiteException as exc:
            raise exception.MigrationPreCheckError(
                instance_uuid=instance_uuid, dest=self.host,
                reason=str(exc)) from exc

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
