"""Resize on the conductor: a workflow of conductor work steps.

``resize_instance``, ``confirm_resize`` and ``revert_resize`` are calls
that claim the instance (its task_state, as every guarded action does),
record the work (and, for a resize, its migration) in the same
transaction, answer at once, and run the work in the background through
``ConductorManager._run``, so a takeover resumes it from its step::

    resize:         scheduling --> prep --> resize --> finish --> done
                        ^            |                   |
                        |        rollback        rollback_source
                        +------------+-------------------+  (retry)
    confirm_resize: confirming --> done
    revert_resize:  revert_dest --> revert_source --> done

Each step is recorded (``db.resize_step``, a compare-and-swap on the
work's owner) before the next begins, together with its effects on the
instance, the migration and the claims.  Compute steps are idempotent
(``nova_lite.compute.resize``), so a step re-sent after a takeover is
carried out once.

Scheduling claims the new flavor on a target under the migration's uuid.
When the target fails ``prep`` or ``finish`` (it refuses, is down, or the
call times out), the rollback is recorded first (a takeover resumes it,
never the failed step), then the target is told to clean up (and, after
the source powered off, the source to start the instance again), the
migration's claim is released, and the scheduler is asked again without
the hosts that failed, up to ``[scheduler] max_attempts`` times; after
the last, or when no host is left, or when the source itself fails, the
instance is ``active`` on its source with the fault.  Never ``error``,
never with its task_state left set, never with a claim left behind.
"""

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_utils import uuidutils

from nova_lite.compute import task_states
from nova_lite import concurrency
from nova_lite.db import api as db_api
from nova_lite.db import resizes
from nova_lite import exception

LOG = logging.getLogger(__name__)

ACTIONS = ('resize', 'confirm_resize', 'revert_resize')
_FIRST_STEP = {'confirm_resize': 'confirming',
               'revert_resize': 'revert_dest'}

# What a failed compute step looks like to the conductor: the host's named
# error, no answer, or no such version.
STEP_FAILURES = (exception.NovaLiteException, messaging.MessagingException)
# The resize_instance step runs a driver task on the source (power off,
# hand the disk over): it may take this many RPC timeouts.
RESIZE_TIMEOUT_FACTOR = 3


def _reason(exc):
    return str(exc) or type(exc).__name__


class ResizeMixin:
    """The resize part of ConductorManager (needs its ``db``, ``conf``,
    ``host``, ``scheduler_rpcapi``, ``compute_rpcapi`` and ``_run``)."""

    # -- RPC API -----------------------------------------------------------

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InvalidState,
                                   exception.FlavorNotFound,
                                   exception.InvalidInput)
    def resize_instance(self, context, instance_uuid, flavorid):
        """Call (1.3): resize to flavor ``flavorid``; returns the accepted
        action at once (the resize goes on in the background).

        Refused with ``InstanceActionInProgress`` while another action
        holds the instance, ``InvalidState`` unless it is active,
        ``FlavorNotFound``, or ``SameFlavor`` (an ``InvalidInput``).
        """
        flavor = db_api.flavor_columns(self.db.flavor_get(flavorid))
        migration_uuid = uuidutils.generate_uuid()
        work = self.db.resize_create(
            instance_uuid, migration_uuid, flavor, self.host,
            task_states.pending('resize'),
            task_states.allowed_vm_states('resize'))
        LOG.info('Accepted resize of instance %s on %s to flavor %s '
                 '(migration %s)', instance_uuid, work['host'], flavorid,
                 migration_uuid)
        return self._accepted(context, work)

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InvalidState)
    def confirm_resize(self, context, instance_uuid):
        """Call (1.3): confirm the resize of a ``resized`` instance (its
        old copy and its claim on the source are dropped)."""
        return self._start_resize_end(context, instance_uuid,
                                      'confirm_resize')

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InvalidState)
    def revert_resize(self, context, instance_uuid):
        """Call (1.3): revert the resize of a ``resized`` instance: back
        on its source with its old flavor; the target's claim dropped."""
        return self._start_resize_end(context, instance_uuid,
                                      'revert_resize')

    def _start_resize_end(self, context, instance_uuid, action):
        work = self.db.resize_begin(
            instance_uuid, action, _FIRST_STEP[action], self.host,
            task_states.pending(action),
            task_states.allowed_vm_states(action))
        LOG.info('Accepted %s of instance %s (migration %s)', action,
                 instance_uuid, work['migration_uuid'])
        return self._accepted(context, work)

    def _accepted(self, context, work):
        concurrency.spawn(self._run_in_background, context, work)
        return {'instance_uuid': work['instance_uuid'],
                'action': work['action'], 'host': work['host'],
                'dest': work['dest'], 'work_id': work['id'],
                'migration_uuid': work['migration_uuid']}

    def _run_in_background(self, context, work, resumed=False):
        try:
            self._run(context, work, resumed=resumed)
        except Exception:  # noqa: BLE001 - _run logged it and freed it
            pass

    def _auto_confirm_resizes(self, context):
        """Confirm the resizes that waited longer than
        ``resize_confirm_window``; an instance that another action holds
        now is left for the next round."""
        window = self.conf.resize_confirm_window
        if not window:
            return
        for migration in self.db.migrations_to_confirm(window):
            try:
                self._start_resize_end(context, migration['instance_uuid'],
                                       'confirm_resize')
            except (exception.InvalidState,
                    exception.InstanceNotFound) as exc:
                LOG.info('Auto-confirm of migration %s skipped: %s',
                         migration['uuid'], exc)

    # -- the workflow, from any step -----------------------------------------

    def _run_resize(self, context, work, resumed=False):
        """Run a resize, confirm or revert on from its step."""
        try:
            while work is not None:
                work = getattr(self, '_step_%s' % work['step'])(context,
                                                                 work)
        except exception.WorkTakenOver:
            raise
        except Exception as exc:
            if work['action'] != 'resize':
                raise
            LOG.exception('Resize of instance %s failed unexpectedly at '
                          'step %s', work['instance_uuid'], work['step'])
            # Back to the source as a failed target is: what the target
            # has dropped, the source started again (both idempotent).
            self._clean_up(context, work, powered_off=work['step'] in (
                'resize', 'finish', 'rollback_source'))
            self._give_up(work, self.db.migration_get(work['migration_uuid']),
                          _reason(exc))

    def _timeout(self, factor=1):
        return self.conf.rpc_response_timeout * factor

    def _step_scheduling(self, context, work):
        migration = self.db.migration_get(work['migration_uuid'])
        excluded = list(migration['failed_hosts'])
        if not self.conf.allow_resize_to_same_host:
            excluded.append(migration['source_host'])
        attempts = migration['attempts'] + 1
        try:
            # Claims the new flavor under the migration's uuid.
            dest = self.scheduler_rpcapi.select_host(
                context, exclude_hosts=excluded,
                migration_uuid=migration['uuid'])
        except (exception.NoValidHost, messaging.MessagingTimeout) as exc:
            return self._give_up(work, dict(migration, attempts=attempts),
                                 'No valid host after %d attempts: %s' % (
                                     attempts, _reason(exc)))
        LOG.info('Resizing instance %s from %s to %s (attempt %d)',
                 work['instance_uuid'], migration['source_host'], dest,
                 attempts)
        return self.db.resize_step(
            work, 'prep', dest=dest,
            migration=dict(dest_host=dest, attempts=attempts))

    def _step_prep(self, context, work):
        try:
            self.compute_rpcapi.prep_resize(
                context, work['dest'], work['instance_uuid'],
                work['migration_uuid'], timeout=self._timeout())
        except STEP_FAILURES as exc:
            return self._target_failed(context, work, exc, powered_off=False)
        return self.db.resize_step(
            work, 'resize',
            instance=dict(task_state=task_states.RESIZE_MIGRATING))

    def _step_resize(self, context, work):
        try:
            self.compute_rpcapi.resize_instance(
                context, work['host'], work['instance_uuid'],
                work['migration_uuid'],
                timeout=self._timeout(RESIZE_TIMEOUT_FACTOR))
        except STEP_FAILURES as exc:
            # The source itself failed: no other target would help.
            LOG.warning('Resize of instance %s failed at its source %s: %s',
                        work['instance_uuid'], work['host'], exc)
            migration = self.db.migration_get(work['migration_uuid'])
            self._clean_up(context, work, powered_off=True)
            return self._give_up(work, migration, _reason(exc))
        return self.db.resize_step(
            work, 'finish',
            instance=dict(task_state=task_states.RESIZE_FINISH))

    def _step_finish(self, context, work):
        try:
            # The target records the instance there, resized, and free.
            self.compute_rpcapi.finish_resize(
                context, work['dest'], work['instance_uuid'],
                work['migration_uuid'], timeout=self._timeout())
        except STEP_FAILURES as exc:
            return self._target_failed(context, work, exc, powered_off=True)
        LOG.info('Instance %s resized on %s; waiting for confirmation',
                 work['instance_uuid'], work['dest'])
        self.db.resize_step(work, 'done', finished=True,
                            instance=dict(task_state=None))
        return None

    # -- failure: retry, or back to the source -------------------------------

    def _target_failed(self, context, work, exc, powered_off):
        """The target failed ``prep`` or ``finish``: record the rollback
        (and its reason) first, so that a takeover resumes the rollback,
        never the step that failed; then run it."""
        reason = _reason(exc)
        LOG.warning('Resize of instance %s: target %s failed at %s: %s',
                    work['instance_uuid'], work['dest'], work['step'],
                    reason)
        work = self.db.resize_step(
            work, 'rollback_source' if powered_off else 'rollback',
            instance=dict(fault=reason))
        return self._roll_back(context, work, powered_off)

    def _step_rollback(self, context, work):
        return self._roll_back(context, work, powered_off=False)

    def _step_rollback_source(self, context, work):
        return self._roll_back(context, work, powered_off=True)

    def _roll_back(self, context, work, powered_off):
        """Clean up after a failed target, then ask the scheduler again
        or give up."""
        self._clean_up(context, work, powered_off)
        migration = self.db.migration_get(work['migration_uuid'])
        reason = self.db.instance_get(work['instance_uuid'])['fault']
        failed = migration['failed_hosts'] + [work['dest']]
        if migration['attempts'] >= self.conf.scheduler.max_attempts:
            return self._give_up(
                work, dict(migration, failed_hosts=failed),
                'No valid host after %d attempts: %s' % (
                    migration['attempts'], reason))
        return self.db.resize_step(
            work, 'scheduling', dest=None, release_claim=True,
            migration=dict(status=resizes.SCHEDULING, dest_host=None,
                           failed_hosts=failed),
            instance=self._on_source(migration,
                                     task_state=task_states.pending('resize')))

    def _clean_up(self, context, work, powered_off):
        """Best effort: the target drops what it has of the instance, and
        the source (if it powered off) starts it again."""
        calls = [('revert_resize', work['dest'])]
        if powered_off:
            calls.append(('finish_revert_resize', work['host']))
        for method, host in calls:
            if host is None:
                continue
            try:
                getattr(self.compute_rpcapi, method)(
                    context, host, work['instance_uuid'],
                    work['migration_uuid'], timeout=self._timeout())
            except STEP_FAILURES as exc:
                LOG.warning('Resize of instance %s: %s on %s failed too: %s',
                            work['instance_uuid'], method, host, exc)

    @staticmethod
    def _on_source(migration, **values):
        """The instance's columns as before the resize, and ``values``."""
        return dict(migration['old_flavor'], host=migration['source_host'],
                    vm_state='active', power_state='running', **values)

    def _give_up(self, work, migration, fault):
        LOG.warning('Resize of instance %s rolled back: %s',
                    work['instance_uuid'], fault)
        self.db.resize_step(
            work, 'failed', finished=True, release_claim=True,
            migration=dict(status=resizes.ERROR,
                           attempts=migration['attempts'],
                           failed_hosts=migration['failed_hosts']),
            instance=self._on_source(migration, task_state=None,
                                     fault=fault))
        return None

    def _abort_migration(self, work):
        """A resize work that ended before its own run could (its locks
        were held, or the run failed unexpectedly): its migration ends
        ``error`` and its claim is released; never raises."""
        try:
            self.db.migration_abort(work['migration_uuid'])
        except Exception:  # noqa: BLE001 - logged; the work is over
            LOG.exception('Cannot end migration %s of instance %s',
                          work['migration_uuid'], work['instance_uuid'])

    # -- confirm and revert ---------------------------------------------------

    def _step_confirming(self, context, work):
        if not self._resize_end_call(context, work, 'confirm_resize',
                                     work['host']):
            return None
        self.db.resize_confirm(work)
        LOG.info('Resize of instance %s confirmed', work['instance_uuid'])
        return None

    def _step_revert_dest(self, context, work):
        if not self._resize_end_call(context, work, 'revert_resize',
                                     work['dest']):
            return None
        return self.db.resize_step(work, 'revert_source')

    def _step_revert_source(self, context, work):
        if not self._resize_end_call(context, work, 'finish_revert_resize',
                                     work['host']):
            return None
        migration = self.db.migration_get(work['migration_uuid'])
        self.db.resize_step(
            work, 'done', finished=True, release_claim=True,
            migration=dict(status=resizes.REVERTED),
            instance=self._on_source(migration, task_state=None, fault=None))
        LOG.info('Resize of instance %s reverted', work['instance_uuid'])
        return None

    def _resize_end_call(self, context, work, method, host):
        """Call ``method`` on ``host``; on failure end the work with the
        instance in ERROR and the fault, as Nova does: one of its two
        copies may be gone already, so neither a confirm nor a revert may
        follow (deleting it gives back both claims); whether it went
        through."""
        try:
            getattr(self.compute_rpcapi, method)(
                context, host, work['instance_uuid'], work['migration_uuid'],
                timeout=self._timeout(RESIZE_TIMEOUT_FACTOR))
            return True
        except STEP_FAILURES as exc:
            LOG.warning('%s of instance %s failed at %s: %s',
                        work['action'], work['instance_uuid'], host, exc)
            self.db.resize_step(work, 'failed', finished=True,
                                instance=dict(task_state=None,
                                              vm_state='error',
                                              fault=_reason(exc)))
            return False
