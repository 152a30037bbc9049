"""Conductor manager: orchestrates instance actions across roles.

Guarding.  An action on an existing instance (reboot, destroy, migrate) is a
*call*: the conductor claims the instance's ``task_state`` in one UPDATE
that succeeds only if no other action holds it (Nova's
``expected_task_state``), so of two concurrent requests exactly one is
accepted and the other gets ``InstanceActionInProgress``.  A build claims
its instance by creating it (``scheduling``), in the same transaction as its
work: a repeated build of one uuid is ignored.  nova-lite-api creates the
instance and its build work itself (``UNASSIGNED``, so that a GET right
after the POST finds it) and casts ``build_instance(work_id)``; the
conductor that receives it claims the work by compare-and-swap on its
owner.  The compute host swaps the
pending task_state for its running one and clears it when the operation
ends (``nova_lite.compute.task_states``).

Takeover.  Every action is recorded in ``conductor_work`` with the step it
has reached, in the same transaction that claims the instance::

    build:                    scheduling --> casting --> done
    reboot/destroy/migrate:                  casting --> done
    resize, confirm_resize, revert_resize: see nova_lite.conductor.resize

A step is written before the next begins.  Each conductor looks, every
``[conductor] takeover_interval``, for unfinished work whose conductor is
down (or that is ``UNASSIGNED`` for longer than ``service_down_time``: its
cast was lost, or no conductor ran), claims it in one UPDATE (one winner
among live conductors) and runs it on from its step; at start-up it also resumes its own unfinished work (a
restart with the same ``host``).  A conductor whose work was taken over
while it was only slow finds out at its next step (``WorkTakenOver``) and
stops.  At ``casting``, the work is re-sent only if the instance still shows
the conductor's task_state (the compute host has not started it).  Every
cast carries the work's id, and the compute host carries out a work only
by swapping that pending task_state, and only while it is the instance's
newest work: a re-send that crosses the original runs once.

Locks.  A work holds the tooz locks of its instance and of every volume
attached to it (``nova_lite.coordination``) while it runs, from its step
to its end, resumed by a takeover too: nova-lite-api, which only tries
them (attach, detach, delete of a volume), answers 409 meanwhile.  The
instance's lock comes first, then the volumes attached by then.  The work
waits ``[coordination] acquire_timeout`` for them: an API request holds
one for a moment; a dead holder's locks are free once its process is gone
(``file://``) or its lease has run out (etcd: ``lock_timeout`` in the URL,
which should be shorter than ``acquire_timeout``).  Should they still be
held: a new work fails cleanly (``ResourceLocked``; a build leaves its
instance in ERROR, any other action just frees the task_state), since the
compute host has done nothing for it; a resumed work is left as it is,
ours and unfinished, and our next takeover round tries it again: it may be
half done, and only its own run can finish it.
"""

import contextlib
import os

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import concurrency
from nova_lite.compute import task_states
from nova_lite.conductor import resize
from nova_lite import coordination
from nova_lite.db import api as db_api
from nova_lite.db import models
from nova_lite import exception
from nova_lite import manager
from nova_lite.scheduler import rpcapi as scheduler_rpcapi
from nova_lite import servicegroup

LOG = logging.getLogger(__name__)

BINARY = 'nova-lite-conductor'

# action -> (task_state the conductor sets, vm_states it may start from).
# The compute host swaps it for its running state (e.g. "rebooting").
GUARDED_ACTIONS = {
    action: (task_states.pending(action),
             task_states.allowed_vm_states(action))
    for action in ('reboot', 'destroy', 'migrate')}
BUILD_TASK_STATE = task_states.SCHEDULING

# Seconds between purges of finished work records (at most; a shorter
# retention purges as often as it is long).
PURGE_INTERVAL = 600

_SCHEDULING_ERRORS = (exception.NoValidHost, messaging.MessagingTimeout)


class ConductorManager(resize.ResizeMixin, manager.Manager):
    """Server side of the conductor RPC API (see ``ConductorRPCAPI``)."""

    target = messaging.Target(version='1.3')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scheduler_rpcapi = None
        self._compute_rpcapi = None
        # Our own unfinished work from before this process started: the
        # only work of ours the takeover task resumes.
        self._orphans = set()
        self._coordinator = None

    @property
    def scheduler_rpcapi(self):
        # Built on first use: rpc.init() runs after managers are created.
        if self._scheduler_rpcapi is None:
            self._scheduler_rpcapi = scheduler_rpcapi.SchedulerRPCAPI(
                self.conf, db=self.db)
        return self._scheduler_rpcapi

    @property
    def compute_rpcapi(self):
        if self._compute_rpcapi is None:
            self._compute_rpcapi = compute_rpcapi.ComputeRPCAPI(
                self.conf, db=self.db)
        return self._compute_rpcapi

    def init_host(self):
        # Before RPC is consumed: whatever is unfinished now was left by an
        # earlier process with our host name.
        self._orphans = {work['id'] for work in
                         self.db.work_get_all(unfinished=True,
                                              conductor_host=self.host)}
        self._coordinator = coordination.process_coordinator(
            self.conf, '%s-%d' % (self.host, os.getpid()))

    def cleanup_host(self):
        coordination.release_process_coordinator(self._coordinator)
        self._coordinator = None

    # -- RPC API -----------------------------------------------------------

    def build_instance(self, context, instance_uuid, work_id=None):
        """Cast: create, schedule and spawn ``instance_uuid``.

        A scheduling failure leaves the instance in ERROR with the reason,
        so the cast's outcome can be read from the instances table.  The
        instance and the work are created together: a repeated request
        (a retrying client, a re-delivered message) finds the uuid taken
        and is ignored.

        1.2 added ``work_id``: the caller recorded the instance and its
        ``UNASSIGNED`` build work; this conductor claims that work (one
        winner, should the takeover task or a repeated cast compete) and
        runs it.
        """
        if work_id is not None:
            self._claim_build(context, instance_uuid, work_id)
            return
        try:
            work = self.db.instance_create_with_work(
                instance_uuid, 'build', 'scheduling', self.host,
                task_state=BUILD_TASK_STATE)
        except exception.InstanceExists:
            LOG.warning('build_instance: instance %s exists already; '
                        'repeated request ignored', instance_uuid)
            return
        self._run(context, work)

    def _claim_build(self, context, instance_uuid, work_id):
        work = self.db.work_get(work_id)
        claimed = None
        if (work is not None and work['instance_uuid'] == instance_uuid
                and work['action'] == 'build'
                and work['conductor_host'] == db_api.UNASSIGNED):
            claimed = self.db.work_claim(work, self.host, takeover=False)
        if claimed is None:
            LOG.warning('build_instance: work %s of instance %s is not '
                        'unassigned (any more); repeated request ignored',
                        work_id, instance_uuid)
            return
        self._run(context, claimed)

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InvalidState,
                                   exception.ResourceLocked)
    def reboot_instance(self, context, instance_uuid):
        """Call: reboot; refused while another action holds the instance."""
        return self._start_guarded(context, instance_uuid, 'reboot')

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InvalidState,
                                   exception.ResourceLocked)
    def destroy_instance(self, context, instance_uuid):
        """Call: destroy; refused while another action holds the instance."""
        return self._start_guarded(context, instance_uuid, 'destroy')

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InvalidState,
                                   exception.ResourceLocked,
                                   exception.NoValidHost,
                                   exception.InvalidInput,
                                   exception.ComputeHostNotFound,
                                   exception.ComputeServiceUnavailable)
    def migrate_instance(self, context, instance_uuid, dest=None):
        """Call: live-migrate to ``dest``, or to a host the scheduler picks.

        ``dest`` must be a compute service that is up and enabled, else
        ``ComputeHostNotFound`` or ``ComputeServiceUnavailable``, and the
        instance is left as it was.
        """
        instance = self.db.instance_get(instance_uuid)
        if dest is None:
            dest = self.scheduler_rpcapi.select_host(
                context, exclude_hosts=[instance['host']])
        elif dest == instance['host']:
            raise exception.InvalidInput(
                reason='instance %s is already on %s' % (instance_uuid, dest))
        else:
            self._check_destination(dest)
        return self._start_guarded(context, instance_uuid, 'migrate',
                                   dest=dest)

    def _check_destination(self, dest):
        services = [svc for svc in self.db.service_get_all(topic='compute')
                    if svc['host'] == dest]
        if not services:
            raise exception.ComputeHostNotFound(host=dest)
        if all(svc['disabled'] for svc in services):
            raise exception.ComputeServiceUnavailable(host=dest,
                                                      reason='disabled')
        if not any(servicegroup.is_up(svc, self.conf.service_down_time)
                   for svc in services if not svc['disabled']):
            raise exception.ComputeServiceUnavailable(host=dest,
                                                      reason='down')

    def _start_guarded(self, context, instance_uuid, action, dest=None):
        task_state, vm_states = GUARDED_ACTIONS[action]
        work = self.db.work_create(
            instance_uuid, action, 'casting', self.host, dest=dest,
            guard=(task_state, vm_states))
        LOG.info('Accepted %s of instance %s on %s%s', action, instance_uuid,
                 work['host'], ' to %s' % dest if dest else '')
        self._run(context, work)
        return {'instance_uuid': instance_uuid, 'action': action,
                'host': work['host'], 'dest': dest, 'work_id': work['id']}

    # -- running work, from any step ----------------------------------------

    def _run(self, context, work, resumed=False):
        """Run ``work`` on from its step.  An unexpected error ends the
        work as failed and frees the instance before it is re-raised."""
        try:
            with self._workflow_locks(work):
                if work['action'] in resize.ACTIONS:
                    self._run_resize(context, work, resumed)
                    return
                if work['step'] == 'scheduling':
                    work = self._schedule(context, work)
                if work is not None and work['step'] == 'casting':
                    self._cast(context, work, resumed)
        except exception.WorkTakenOver as exc:
            LOG.warning('%s; stopped here', exc)
        except (exception.ResourceLocked,
                exception.CoordinationError) as exc:
            # Its locks are held, or the backend is away for now.
            if not resumed:
                self._abandon(work, exc)
                raise
            LOG.warning('%s of instance %s waits: %s; trying again at the '
                        'next takeover round', work['action'],
                        work['instance_uuid'], exc)
            self._orphans.add(work['id'])
        except Exception as exc:
            self._abandon(work, exc)
            raise

    @contextlib.contextmanager
    def _workflow_locks(self, work):
        """Hold the locks of the work's instance and of the volumes
        attached to it (read once the instance's is held: an attach needs
        that one too)."""
        instance_uuid = work['instance_uuid']
        with self._coordinator.locked(coordination.lock_names(instance_uuid)):
            volume_ids = self.db.volume_ids_attached(instance_uuid)
            with self._coordinator.locked(
                    coordination.lock_names(volume_ids=volume_ids)):
                yield

    def _abandon(self, work, exc):
        LOG.error('%s of instance %s failed at step %s: %s', work['action'],
                  work['instance_uuid'], work['step'], exc)
        instance = dict(task_state=None)
        if work['action'] == 'build':
            instance.update(vm_state='error', fault=str(exc))
        try:
            self.db.work_update(work, step='failed', finished=True,
                                instance=instance)
        except exception.WorkTakenOver:
            return        # the new owner deals with the instance
        if work['action'] == 'build':
            # A build that failed after scheduling gives its claim back.
            self._release_claim(work['instance_uuid'])
        elif work['action'] == 'resize':
            self._abort_migration(work)

    def _release_claim(self, instance_uuid):
        try:
            if self.db.allocation_release(instance_uuid):
                LOG.info('Released the claim of instance %s', instance_uuid)
        except Exception:  # noqa: BLE001 - the failure is reported already
            LOG.exception('Cannot release the claim of instance %s',
                          instance_uuid)

    def _schedule(self, context, work):
        """build's first step: the row, a host; None if it cannot go on."""
        instance_uuid = work['instance_uuid']
        # The instance was created with the work (build_instance).
        try:
            # The scheduler claims the instance's flavor on the host.
            host = self.scheduler_rpcapi.select_host(
                context, instance_uuid=instance_uuid)
        except _SCHEDULING_ERRORS as exc:
            LOG.warning('Cannot schedule %s: %s', instance_uuid, exc)
            self.db.work_update(work, step='failed', finished=True,
                                instance=dict(vm_state='error',
                                              task_state=None,
                                              fault=str(exc)))
            return None
        LOG.info('Building instance %s on %s', instance_uuid, host)
        # The compute host acts only on an instance that names it.
        return self.db.work_update(work, step='casting', host=host,
                                   instance=dict(host=host))

    def _cast(self, context, work, resumed):
        """The last step: hand the action to its compute host."""
        instance_uuid, action = work['instance_uuid'], work['action']
        expected = (BUILD_TASK_STATE if action == 'build'
                    else GUARDED_ACTIONS[action][0])
        if resumed and self._task_state(instance_uuid) != expected:
            LOG.info('%s of instance %s: the compute host has it already',
                     action, instance_uuid)
        elif action == 'build':
            self.compute_rpcapi.spawn(context, work['host'], instance_uuid,
                                      work_id=work['id'])
        elif action == 'migrate':
            self.compute_rpcapi.migrate(context, work['host'], instance_uuid,
                                        work['dest'], work_id=work['id'])
        else:
            getattr(self.compute_rpcapi, action)(
                context, work['host'], instance_uuid, work_id=work['id'])
        self.db.work_update(work, step='done', finished=True)

    def _task_state(self, instance_uuid):
        try:
            return self.db.instance_get(instance_uuid)['task_state']
        except exception.InstanceNotFound:
            return None

    # -- takeover ----------------------------------------------------------

    @manager.periodic_task(
        spacing=lambda conf: conf.conductor.takeover_interval,
        run_immediately=True)
    def _take_over_orphaned_work(self, context):
        """Resume work whose conductor is down, and our own that no
        greenthread of this process runs (left by our previous life)."""
        unfinished = self.db.work_get_all(unfinished=True)
        if not unfinished:
            return
        down_time = self.conf.service_down_time
        live = {svc['host'] for svc in self.db.service_get_all(binary=BINARY)
                if servicegroup.is_up(svc, down_time)}
        for work in unfinished:
            owner = work['conductor_host']
            if owner == db_api.UNASSIGNED:
                if not _older_than(work, down_time):
                    continue      # its build cast is on its way
                claimed = self.db.work_claim(work, self.host)
                if claimed is None:
                    continue
            elif owner == self.host:
                if work['id'] not in self._orphans:
                    continue      # a greenthread of ours runs it
                self._orphans.discard(work['id'])
                claimed = work
            elif owner in live:
                continue
            else:
                claimed = self.db.work_claim(work, self.host)
                if claimed is None:
                    continue      # another conductor was first
            LOG.warning('Taking over %s of instance %s from %s at step %s',
                        work['action'], work['instance_uuid'],
                        _owner_text(owner, self.host), work['step'])
            if claimed['action'] in resize.ACTIONS:
                # Its steps are calls that last: in the background, as
                # when it was accepted, so the next one is not held up.
                concurrency.spawn(self._run_in_background, context, claimed,
                                  resumed=True)
                continue
            try:
                self._run(context, claimed, resumed=True)
            except Exception:  # noqa: BLE001 - logged; on to the next one
                pass

    @manager.periodic_task()
    def _confirm_resizes(self, context):
        """Confirm resizes older than ``resize_confirm_window``."""
        self._auto_confirm_resizes(context)

    @manager.periodic_task(
        spacing=lambda conf: min(PURGE_INTERVAL,
                                 conf.conductor.work_retention))
    def _purge_finished_work(self, context):
        """Drop finished work, and deleted instances, older than
        ``[conductor] work_retention``."""
        retention = self.conf.conductor.work_retention
        self.db.work_purge_finished(retention)
        self.db.instance_purge_deleted(retention)


def _older_than(work, seconds):
    return (models.utcnow() - work['created_at']).total_seconds() > seconds


def _owner_text(owner, me):
    if owner == db_api.UNASSIGNED:
        return 'nobody (its build cast never arrived)'
    return '%s conductor %s' % ('my earlier' if owner == me else 'dead',
                                owner)
