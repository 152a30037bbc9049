"""Live migration of the QEMU driver: shared nothing, disks copied over NBD.

The destination prepares, the source migrates, the destination adopts (or
aborts), as libvirt does for a migration without shared storage:

1. destination ``prepare_incoming(uuid, source_data)``: an empty qcow2 vda
   of the source's size, a QEMU started with ``-incoming
   tcp:127.0.0.1:PORT`` and an NBD server exporting vda writable on a
   second port, both from ``[qemu] migration_port_range``; returns the
   ``migrate_data`` the source needs (``uri`` and ``nbd``).
2. source ``migrate(uuid, dest, migrate_data)`` (a task): ``blockdev-add``
   of the NBD export and ``blockdev-mirror`` (sync full) of vda to it
   (phase ``setup``); once the mirror is ready, ``migrate`` with the
   ``events`` and ``pause-before-switchover`` capabilities. ``MIGRATION``
   events drive it: ``setup`` -> phase ``setup``, ``active`` ->
   ``converging``, ``pre-switchover`` -> ``switchover``: the guest is
   paused, the mirror (in sync) is ended, ``migrate-continue``;
   ``completed`` -> QEMU's statistics are kept in the task, the source
   QEMU quits and its files are removed.  Without an event for a second
   the worker asks ``query-migrate`` / ``query-block-jobs`` (the fallback).
3. destination ``adopt(uuid, power_state)``: waits for its QEMU to leave
   ``inmigrate``, stops the NBD server, ``cont`` if needed.

On failure or ``cancel_task`` the source rolls back (``migrate_cancel``,
the mirror cancelled, the NBD node removed, the guest resumed) and keeps
running; the destination's QEMU exits by itself when the stream breaks
(its files are then removed), and ``abort_incoming`` stops it otherwise.
Everything listens on 127.0.0.1: two computes on one machine; computes on
two machines would need a listen address option.  After a migration vda
is one flat image (the mirror copies the whole disk).
"""

from oslo_log import log as logging

from nova_lite import exception
from nova_lite.virt.qemu import blockjobs
from nova_lite.virt.qemu import instance as qinstance
from nova_lite.virt.qemu import process
from nova_lite.virt.qemu import qmp

LOG = logging.getLogger(__name__)

MIGRATION_HOST = '127.0.0.1'
FALLBACK_POLL = 1.0      # seconds without an event before asking QEMU
_PROGRESS = {'setup': 10, 'converging': 50, 'switchover': 90}
_MIGRATION_EVENTS = ('MIGRATION', 'BLOCK_JOB_READY', 'BLOCK_JOB_COMPLETED',
                     'BLOCK_JOB_CANCELLED', 'JOB_STATUS_CHANGE', 'STOP',
                     'RESUME')
_ENDED = ('completed', 'failed', 'cancelled')


class Cancelled(Exception):
    """The task was cancelled (the worker ends it as cancelled)."""


def _relevant(message):
    return message.get('event') in _MIGRATION_EVENTS


class MigrationMixin:
    """The live-migration part of ``QemuDriver``."""

    migration_max_bandwidth = 0   # bytes/s; 0: QEMU's default

    # -- source ----------------------------------------------------------

    def migration_source_data(self, instance_uuid):
        """What the destination needs to prepare: this driver's name and
        the instance's memory and disk sizes."""
        inst = self._active(instance_uuid)
        return {'driver': self.name, 'memory_mb': inst.memory_mb,
                'disks': {process.DISK: {'size': inst.disk_bytes}}}

    def migrate(self, instance_uuid, dest, migrate_data=None):
        """Start migrating to ``dest``, which ``prepare_incoming`` returned
        ``migrate_data`` for; returns a task id (see the module doc)."""
        inst = self._active(instance_uuid)
        data = migrate_data or {}
        if (data.get('driver') != self.name or not data.get('uri') or
                not data.get('nbd')):
            raise exception.InvalidInput(
                reason='host %s prepared no incoming QEMU for instance %s '
                       '(is it a qemu compute?)' % (dest, instance_uuid))
        with self._lock:
            self._require_idle(inst)
            busy = inst.block_jobs.get(process.DISK)
            if busy is not None:
                raise exception.BlockJobBusy(instance_uuid=instance_uuid,
                                             disk=process.DISK,
                                             kind=busy['kind'])
            inst.busy = 'migrating'
            mirror = inst.block_jobs[process.DISK] = blockjobs.new_job(
                blockjobs.MIGRATION_KIND, process.DISK,
                'migrate-%s' % process.DISK)
        try:
            task = self._new_task(instance_uuid, 'migrate', phase='setup',
                                  dest=dest)
            run = _SourceMigration(self, task, inst, mirror, data)
            task['on_cancel'] = run.cancel
            self._run_task(task, run.run)
        except BaseException:
            with self._lock:
                del inst.block_jobs[process.DISK]
                inst.busy = None
            raise
        return task['id']

    def _migration_event(self, inst, data):
        with self._lock:
            inst.migration_status = data.get('status')
            inst.migration_events += 1

    # -- destination -----------------------------------------------------

    def prepare_incoming(self, instance_uuid, source_data):
        """Receive ``instance_uuid`` here: an incoming QEMU and the NBD
        export its disk is copied to.  Returns the source's
        ``migrate_data``."""
        self._check_uuid(instance_uuid)
        super().prepare_incoming(instance_uuid, source_data)
        try:
            disk_bytes = int(source_data['disks'][process.DISK]['size'])
            memory_mb = int(source_data['memory_mb'])
        except (KeyError, TypeError, ValueError) as exc:
            raise exception.InvalidInput(
                reason='bad migration source data: %r' % exc) from exc
        inst = self._register(instance_uuid, memory_mb, disk_bytes,
                              state=qinstance.INCOMING)
        try:
            self._claim_dir(inst.layout)
            # Flat and empty: the source's mirror writes every block.
            process.create_image(inst.layout.disk, disk_bytes, self.timeout)
            port = self._launch_incoming(inst)
            inst.client.execute('migrate-set-capabilities', {
                'capabilities': [{'capability': 'events', 'state': True}]})
            nbd_port = self._start_nbd(inst)
        except Exception as exc:
            self._discard(inst)
            raise self._hypervisor_error(exc)
        LOG.info('Instance %s: incoming QEMU on port %d, NBD on %d',
                 instance_uuid, port, nbd_port)
        return {'driver': self.name, 'host': self.host,
                'uri': 'tcp:%s:%d' % (MIGRATION_HOST, port),
                'nbd': {'host': MIGRATION_HOST, 'port': nbd_port,
                        'exports': {process.DISK: process.DISK}}}

    def _launch_incoming(self, inst):
        for port in self.ports.candidates():
            try:
                self._start_qemu(inst, incoming='tcp:%s:%d' % (
                    MIGRATION_HOST, port))
            except process.PortInUse:
                self.ports.release(port)
                continue
            except Exception:
                self.ports.release(port)
                raise
            inst.ports += (port,)
            return port
        raise exception.HypervisorError(
            reason='no free port in [qemu] migration_port_range %s' %
                   self.opts.migration_port_range)

    def _start_nbd(self, inst):
        for port in self.ports.candidates():
            try:
                inst.client.execute('nbd-server-start', {'addr': {
                    'type': 'inet',
                    'data': {'host': MIGRATION_HOST, 'port': str(port)}}})
            except qmp.QMPCommandError as exc:
                self.ports.release(port)
                if 'in use' in (exc.desc or ''):
                    continue
                raise
            inst.ports += (port,)
            inst.client.execute('nbd-server-add', {'device': process.DISK,
                                                   'writable': True})
            return port
        raise exception.HypervisorError(
            reason='no free port in [qemu] migration_port_range %s' %
                   self.opts.migration_port_range)

    def adopt(self, instance_uuid, power_state):
        """Take over the instance an incoming migration brought here."""
        with self._lock:
            inst = self.instances.get(instance_uuid)
        if inst is None:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        if inst.state != qinstance.INCOMING:
            return          # adopted already
        status = self._await_incoming(inst)
        try:
            inst.client.execute('nbd-server-stop')
        except qmp.QMPCommandError:
            pass            # stopped already
        if power_state == 'running' and status != 'running':
            inst.client.execute('cont')
            status = 'running'
        with self._lock:
            inst.state = qinstance.power_state(status)
            inst.busy = None
            ports, inst.ports = inst.ports, ()
        self.ports.release(*ports)
        if not inst.running:
            self._lost(inst, inst.client.closed)
        LOG.info('Instance %s adopted, %s', instance_uuid, inst.state)

    def _await_incoming(self, inst):
        """The run state once the incoming migration has finished here."""
        deadline = self._deadline(self.timeout)
        while True:
            waiter = inst.expect(_relevant)
            status = inst.client.execute('query-status')['status']
            if status != 'inmigrate':
                inst.forget(waiter)
                return status
            remaining = deadline()
            if remaining <= 0 or (waiter.wait(remaining) is None and
                                  waiter.closed is not None):
                raise exception.HypervisorError(
                    reason='incoming migration of %s did not finish: %s' % (
                        inst.uuid, waiter.closed or 'timed out'))

    def abort_incoming(self, instance_uuid):
        """Stop the incoming QEMU of a migration that will not come and
        remove its files; nothing to do when it is gone already."""
        with self._lock:
            inst = self.instances.get(instance_uuid)
        if inst is not None and inst.state == qinstance.INCOMING:
            LOG.info('Incoming migration of %s aborted', instance_uuid)
            self._discard(inst)

    def _incoming_exited(self, inst, reason):
        LOG.warning('Incoming QEMU of %s exited (%s): its migration failed',
                    inst.uuid, reason)
        self._discard(inst)


class _SourceMigration:
    """The worker of one outgoing migration (a native thread)."""

    def __init__(self, driver, task, inst, mirror, data):
        self.driver = driver
        self.task = task
        self.inst = inst
        self.mirror = mirror
        self.data = data
        self.client = inst.client
        self.node = 'migrate-%s-nbd' % process.DISK
        self.node_added = False
        self.started = False
        self.cancelled = False
        self.waiter = None
        self.was_running = inst.state == 'running'
        inst.migration_status = None

    def run(self, task):
        try:
            self._copy_disk()
            self._migrate()
        except BaseException as exc:
            self._roll_back(exc)
            if self.cancelled:
                raise Cancelled() from exc
            raise
        self._finish()

    def cancel(self):
        """cancel_task: stop what runs now; the worker rolls back."""
        self.cancelled = True
        if self.started:
            try:
                self.client.execute('migrate_cancel')
            except qmp.QMPError:
                pass
        waiter = self.waiter
        if waiter is not None:
            waiter.wake()

    def _phase(self, phase):
        if self.task['phase'] != phase:
            LOG.info('Migration of %s: %s', self.inst.uuid, phase)
        self.task['phase'] = phase
        self.task['progress'] = _PROGRESS[phase]

    def _await(self, done, refresh, what, timeout=None, cancellable=True):
        """Wait until ``done()``: woken by each relevant event, asking
        QEMU (``refresh``) after FALLBACK_POLL without one."""
        remaining = self.driver._deadline(timeout)
        while True:
            self.waiter = waiter = self.inst.expect(_relevant)
            if done():
                self.inst.forget(waiter)
                return
            if cancellable and self.cancelled:
                self.inst.forget(waiter)
                raise Cancelled()
            if remaining() <= 0:
                self.inst.forget(waiter)
                raise exception.HypervisorError(
                    reason='timed out after %ss %s' % (timeout, what))
            if waiter.wait(min(FALLBACK_POLL, remaining())) is None:
                if waiter.closed is not None:
                    raise exception.HypervisorError(
                        reason='QEMU exited while %s: %s' % (what,
                                                            waiter.closed))
                self.inst.forget(waiter)
                refresh()

    def _mirror_gone(self):
        return self.inst.block_jobs.get(process.DISK) is not self.mirror

    def _refresh_mirror(self):
        listed = self.client.execute('query-block-jobs')
        found = next((j for j in listed if j.get('device') ==
                      self.mirror['id']), None)
        if found is None:
            self.driver._block_job_gone(self.inst, self.mirror)
        elif found.get('ready'):
            self.mirror['ready'] = True

    def _copy_disk(self):
        nbd = self.data['nbd']
        self.client.execute('blockdev-add', {
            'driver': 'nbd', 'node-name': self.node,
            'server': {'type': 'inet', 'host': nbd['host'],
                       'port': str(nbd['port'])},
            'export': nbd['exports'][process.DISK]})
        self.node_added = True
        self.client.execute('blockdev-mirror', {
            'device': process.DISK, 'target': self.node, 'sync': 'full',
            'job-id': self.mirror['id']})
        self._await(lambda: self.mirror['ready'] or self._mirror_gone(),
                    self._refresh_mirror, 'copying the disk')
        if self._mirror_gone():
            raise exception.HypervisorError(
                reason='the disk copy to %s ended before it was in sync: '
                       '%s' % (self.task['dest'],
                               self.mirror['error'] or 'cancelled'))

    def _status(self):
        return self.inst.migration_status

    def _refresh_status(self):
        events = self.inst.migration_events
        status = self.client.execute('query-migrate').get('status')
        with self.driver._lock:
            # A MIGRATION event read after that reply is newer: keep it.
            if self.inst.migration_events == events:
                self.inst.migration_status = status

    def _migrate(self):
        self.client.execute('migrate-set-capabilities', {'capabilities': [
            {'capability': 'events', 'state': True},
            {'capability': 'pause-before-switchover', 'state': True}]})
        if self.driver.migration_max_bandwidth:
            self.client.execute('migrate-set-parameters', {
                'max-bandwidth': self.driver.migration_max_bandwidth})
        self.client.execute('migrate', {'uri': self.data['uri']})
        self.started = True
        seen = None
        while True:
            self._await(lambda: self._status() != seen, self._refresh_status,
                        'migrating')
            seen = status = self._status()
            if status == 'setup':
                self._phase('setup')
            elif status == 'active':
                self._phase('converging')
            elif status == 'pre-switchover':
                self._phase('switchover')
                self._end_mirror()
                self.client.execute('migrate-continue',
                                    {'state': 'pre-switchover'})
            elif status == 'device':
                self._phase('switchover')
            elif status == 'completed':
                return
            elif status in ('failed', 'cancelled'):
                if self.cancelled:
                    raise Cancelled()
                info = self.client.execute('query-migrate')
                raise exception.HypervisorError(
                    reason='migration to %s %s: %s' % (
                        self.task['dest'], status,
                        info.get('error-desc', 'no reason given')))

    def _end_mirror(self):
        """The guest is paused: the mirror is in sync for good; end it."""
        self.client.execute('block-job-cancel', {'device': self.mirror['id']})
        self._await(self._mirror_gone, self._refresh_mirror,
                    'ending the disk copy')
        if self.mirror['error']:
            raise exception.HypervisorError(
                reason='the disk copy to %s failed: %s' % (
                    self.task['dest'], self.mirror['error']))

    def _finish(self):
        info = self.client.execute('query-migrate')
        self.task['stats'] = {
            'total_time_ms': info.get('total-time'),
            'downtime_ms': info.get('downtime'),
            'setup_time_ms': info.get('setup-time'),
            'transferred_bytes': (info.get('ram') or {}).get('transferred')}
        self._phase('switchover')
        LOG.info('Instance %s migrated to %s: %s', self.inst.uuid,
                 self.task['dest'], self.task['stats'])
        self.driver._quit(self.inst)

    def _roll_back(self, exc):
        inst, client = self.inst, self.client
        LOG.warning('Migration of %s to %s failed (%s); rolling back',
                    inst.uuid, self.task['dest'],
                    'cancelled' if self.cancelled else exc)
        try:
            if inst.running:
                self._undo(client)
        except Exception as undo:  # noqa: BLE001 - report the first error
            LOG.error('Rollback of the migration of %s: %s', inst.uuid, undo)
        finally:
            with self.driver._lock:
                if inst.block_jobs.get(process.DISK) is self.mirror:
                    del inst.block_jobs[process.DISK]
                inst.busy = None
        if not inst.running:
            self.driver._lost(inst, client.closed)

    def _undo(self, client):
        """Source side: no migration, no mirror, no NBD node, running."""
        if self.started and self._status() not in _ENDED:
            client.execute('migrate_cancel')
            self._settle(lambda: self._status() in _ENDED,
                         self._refresh_status)
        if not self._mirror_gone():
            try:
                client.execute('block-job-cancel',
                               {'device': self.mirror['id'], 'force': True})
            except qmp.QMPCommandError:
                pass       # gone meanwhile
            self._settle(self._mirror_gone, self._refresh_mirror)
        if self.node_added:
            client.execute('blockdev-del', {'node-name': self.node})
        status = client.execute('query-status')['status']
        if self.was_running and status != 'running':
            client.execute('cont')

    def _settle(self, done, refresh):
        """``_await`` for the rollback: bounded, and deaf to cancel."""
        self._await(done, refresh, 'rolling back',
                    timeout=self.driver.timeout, cancellable=False)
