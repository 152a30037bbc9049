"""Resize on the compute manager: the steps the conductor calls, one at a
time, on the source or the target (``nova_lite.conductor.resize``).

Every step is a call, carried out at most once per migration: it runs as
a MODIFY job on the instance, so a re-sent step (a new conductor after a
takeover, or a duplicate that crosses the first) waits for the first and
then finds it done by the migration's status::

    target prep_resize:      scheduling --> prepared
    source resize_instance:  prepared   --> migrated   (powered off)
    target finish_resize:    migrated   --> finished   (the instance is
                             on the target, new flavor, vm_state resized)

The steps of the way back only undo what is there to undo, so they can be
repeated freely: the source's ``confirm_resize`` drops its old copy, the
target's ``revert_resize`` drops its new one (also a rollback's
clean-up), the source's ``finish_revert_resize`` starts the old copy
again if it is not running.  The conductor records every state change of
the instance and of the claims except ``finish_resize``'s.

A step that fails raises ``ResizeError`` with the reason; the conductor
rolls the resize back (or tries another target).
"""

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite.db import resizes
from nova_lite import exception
from nova_lite.virt import jobs

LOG = logging.getLogger(__name__)

# step -> (which side runs it, the status it sets, the status it needs).
_STEPS = {
    'prep_resize': ('dest', resizes.PREPARED, resizes.SCHEDULING),
    'resize_instance': ('source', resizes.MIGRATED, resizes.PREPARED),
    'finish_resize': ('dest', resizes.FINISHED, resizes.MIGRATED),
}


class ResizeMixin:
    """The resize part of ComputeManager."""

    def _migration_here(self, migration_uuid, side, step):
        """The migration, checked to name this host as its ``side``."""
        migration = self.db.migration_get(migration_uuid)
        host = migration['%s_host' % side]
        if host != self.host:
            raise exception.ResizeError(
                step=step, instance_uuid=migration['instance_uuid'],
                host=self.host,
                reason='the %s of migration %s is %s' % (
                    'target' if side == 'dest' else side, migration_uuid,
                    host))
        return migration

    def _resize_step(self, instance_uuid, migration_uuid, step, run):
        """Run ``run(instance_jobs, migration)`` for ``step`` unless the
        migration shows it done, as one MODIFY job; any failure is
        raised as ``ResizeError``."""
        side, status, needed = _STEPS[step]
        try:
            with self.jobs.held(instance_uuid) as instance_jobs, \
                    instance_jobs.job(jobs.MODIFY):
                migration = self._migration_here(migration_uuid, side, step)
                if resizes.reached(migration, status):
                    LOG.info('%s of instance %s (migration %s): done '
                             'already, it is %s', step, instance_uuid,
                             migration_uuid, migration['status'])
                    return
                if migration['status'] != needed:
                    raise exception.InvalidState(
                        instance_uuid=instance_uuid, action=step,
                        state='at migration status %s' % migration['status'])
                run(instance_jobs, migration)
        except Exception as exc:
            if isinstance(exc, exception.ResizeError):
                raise
            LOG.warning('%s of instance %s failed: %s', step, instance_uuid,
                        exc, exc_info=not isinstance(
                            exc, exception.NovaLiteException))
            raise exception.ResizeError(
                step=step, instance_uuid=instance_uuid, host=self.host,
                reason=str(exc) or type(exc).__name__) from exc
        LOG.info('%s of instance %s (migration %s) done', step,
                 instance_uuid, migration_uuid)

    def _run_task(self, instance_jobs, operation, start, *args):
        with instance_jobs.monitor():
            task_id = start(instance_jobs.instance_uuid, *args)
        self._task(instance_jobs, operation, task_id).wait()

    def _advance(self, migration, status, expected, side):
        if not self.db.migration_advance(migration['uuid'], status, expected,
                                         self.host, side):
            raise exception.InvalidState(
                instance_uuid=migration['instance_uuid'], action=status,
                state='no longer %s' % expected)

    # -- RPC API: calls from the conductor ---------------------------------

    @messaging.expected_exceptions(exception.ResizeError)
    def prep_resize(self, context, instance_uuid, migration_uuid):
        """Call (to the target, 1.4): get ready for the instance with the
        migration's new flavor."""
        def run(instance_jobs, migration):
            self._run_task(instance_jobs, 'prep_resize',
                           self.driver.prep_resize, migration['new_flavor'])
            self._advance(migration, resizes.PREPARED, resizes.SCHEDULING,
                          'dest')
        self._resize_step(instance_uuid, migration_uuid, 'prep_resize', run)

    @messaging.expected_exceptions(exception.ResizeError)
    def resize_instance(self, context, instance_uuid, migration_uuid):
        """Call (to the source, 1.4): power the instance off and hand its
        disk over to the target (a driver task)."""
        def run(instance_jobs, migration):
            self._run_task(instance_jobs, 'resize_instance',
                           self.driver.resize_instance,
                           migration['dest_host'])
            self._advance(migration, resizes.MIGRATED, resizes.PREPARED,
                          'source')
        self._resize_step(instance_uuid, migration_uuid, 'resize_instance',
                          run)

    @messaging.expected_exceptions(exception.ResizeError)
    def finish_resize(self, context, instance_uuid, migration_uuid):
        """Call (to the target, 1.4): start the instance here with its new
        flavor; it is then on this host, ``resized`` (VERIFY_RESIZE)."""
        def run(instance_jobs, migration):
            self._run_task(instance_jobs, 'finish_resize',
                           self.driver.finish_resize, migration['new_flavor'])
            if not self.db.migration_finish(migration_uuid, self.host):
                raise exception.InvalidState(
                    instance_uuid=instance_uuid, action='finish_resize',
                    state='no longer migrated')
        self._resize_step(instance_uuid, migration_uuid, 'finish_resize',
                          run)

    @messaging.expected_exceptions(exception.ResizeError)
    def confirm_resize(self, context, instance_uuid, migration_uuid):
        """Call (to the source, 1.4): drop the old copy of a resized
        instance."""
        self._undo(instance_uuid, migration_uuid, 'source', 'confirm_resize',
                   self.driver.confirm_resize)

    @messaging.expected_exceptions(exception.ResizeError)
    def revert_resize(self, context, instance_uuid, migration_uuid):
        """Call (to the target, 1.4): drop what the resize made here (a
        revert, or the clean-up of a failed step)."""
        self._undo(instance_uuid, migration_uuid, 'dest', 'revert_resize',
                   self.driver.revert_resize)

    def _undo(self, instance_uuid, migration_uuid, side, step, drop):
        try:
            migration = self._migration_here(migration_uuid, side, step)
            if migration['source_host'] == migration['dest_host']:
                return      # one copy only, on this host: keep it
            self.jobs.run(instance_uuid, jobs.MODIFY, drop, instance_uuid)
            self.jobs.forget(instance_uuid)
        except exception.ResizeError:
            raise
        except Exception as exc:
            raise exception.ResizeError(
                step=step, instance_uuid=instance_uuid, host=self.host,
                reason=str(exc) or type(exc).__name__) from exc

    @messaging.expected_exceptions(exception.ResizeError)
    def finish_revert_resize(self, context, instance_uuid, migration_uuid):
        """Call (to the source, 1.4): start the old copy again, unless it
        runs (a revert, or the rollback of a failed resize)."""
        try:
            self._migration_here(migration_uuid, 'source',
                                 'finish_revert_resize')
            with self.jobs.held(instance_uuid) as instance_jobs, \
                    instance_jobs.job(jobs.MODIFY):
                with instance_jobs.monitor():
                    state = self.driver.get_info(instance_uuid)['state']
                if state != 'running':
                    self._run_task(instance_jobs, 'finish_revert_resize',
                                   self.driver.finish_revert_resize)
        except exception.ResizeError:
            raise
        except Exception as exc:
            raise exception.ResizeError(
                step='finish_revert_resize', instance_uuid=instance_uuid,
                host=self.host,
                reason=str(exc) or type(exc).__name__) from exc
