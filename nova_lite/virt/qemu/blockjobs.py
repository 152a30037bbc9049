"""Block jobs of the QEMU driver.

- ``pull`` is ``block-stream``: vda's backing data is copied into its
  overlay; the job ends by itself.
- ``copy`` is ``drive-mirror`` (sync full) to a new qcow2 image in the
  instance's directory; once ``BLOCK_JOB_READY`` comes the job mirrors
  until an abort: with ``pivot`` (``block-job-complete``) vda switches to
  the copy, without (``block-job-cancel``) the copy is dropped.
- ``commit`` is ``block-commit`` of vda's active layer into its backing
  image (QEMU's active commit): like a copy it becomes ready, and a pivot
  switches vda to the backing image that now holds the data.

The job id is the disk name.  QEMU's events drive the job's record:
``BLOCK_JOB_READY`` -> the ``ready`` event; ``BLOCK_JOB_COMPLETED`` or
``BLOCK_JOB_CANCELLED`` -> the outcome; ``JOB_STATUS_CHANGE`` to ``null``
(the job is gone from ``query-block-jobs``) -> the driver's end event
``{'type': 'block_job', ..., 'state': 'completed'|'cancelled'}``.  An
abort without pivot always ends ``cancelled``, even when QEMU reports a
ready mirror's cancel as ``BLOCK_JOB_COMPLETED``.  A job QEMU reports with
an error also carries ``'error'``.  ``block_job_info`` ends a job whose
events were lost (QEMU no longer lists it), so polling is the fallback.
"""

import os

from oslo_log import log as logging

from nova_lite import exception
from nova_lite.virt import driver
from nova_lite.virt.qemu import process
from nova_lite.virt.qemu import qmp

LOG = logging.getLogger(__name__)

# The kind of job the migration's disk mirror is (never started by users).
MIGRATION_KIND = 'migration'
QEMU_JOB_EVENTS = ('BLOCK_JOB_READY', 'BLOCK_JOB_COMPLETED',
                    'BLOCK_JOB_CANCELLED', 'BLOCK_JOB_ERROR',
                    'JOB_STATUS_CHANGE')


def new_job(kind, disk, job_id, target=None):
    return {'kind': kind, 'disk': disk, 'id': job_id, 'ready': False,
            'ending': False, 'pivot': False, 'outcome': None, 'error': None,
            'target': target, 'offset': 0, 'len': 0}


class BlockJobsMixin:
    """The block-job part of ``QemuDriver``."""

    block_job_speed = 0     # bytes/s for new jobs; 0: as fast as QEMU can

    def _check_disk(self, inst, disk):
        if disk != process.DISK:
            raise exception.DiskNotFound(instance_uuid=inst.uuid, disk=disk)

    def block_job_start(self, instance_uuid, disk, kind):
        """Start a ``kind`` job on ``disk``; refuses a disk with a job."""
        inst = self._active(instance_uuid)
        self._check_disk(inst, disk)
        if kind not in driver.BLOCK_JOB_KINDS:
            raise exception.InvalidBlockJobKind(
                kind=kind, known=', '.join(driver.BLOCK_JOB_KINDS))
        with self._lock:
            busy = inst.block_jobs.get(disk)
            if busy is not None:
                raise exception.BlockJobBusy(instance_uuid=instance_uuid,
                                             disk=disk, kind=busy['kind'])
            target = None
            if kind == 'copy':
                inst.copies += 1
                target = inst.layout.copy_target(disk, inst.copies)
            # Recorded before the command: its events may precede its reply.
            job = inst.block_jobs[disk] = new_job(kind, disk, disk, target)
        try:
            self._start_qemu_job(inst, job)
        except Exception as exc:
            with self._lock:
                if inst.block_jobs.get(disk) is job:
                    del inst.block_jobs[disk]
            if target:
                _remove(target)
            raise self._hypervisor_error(exc)
        LOG.info('%s job started on %s of instance %s', kind, disk,
                 instance_uuid)

    def _start_qemu_job(self, inst, job):
        args = {'device': job['disk'], 'job-id': job['id'],
                'speed': self.block_job_speed}
        if job['kind'] == 'copy':
            process.create_image(job['target'], inst.disk_bytes,
                                 self.timeout)
            args.update(target=job['target'], format='qcow2',
                        mode='existing', sync='full')
            inst.client.execute('drive-mirror', args)
        elif job['kind'] == 'pull':
            inst.client.execute('block-stream', args)
        else:
            inst.client.execute('block-commit', args)

    def block_job_info(self, instance_uuid, disk):
        """{'kind', 'progress', 'ready', 'ending'}, or None without a job
        (``query-block-jobs`` is asked, so a lost end event is noticed)."""
        inst = self._active(instance_uuid)
        self._check_disk(inst, disk)
        with self._lock:
            job = inst.block_jobs.get(disk)
        if job is None:
            return None
        try:
            listed = inst.client.execute('query-block-jobs')
        except qmp.QMPError as exc:
            raise self._hypervisor_error(exc)
        found = next((j for j in listed if j.get('device') == job['id']),
                     None)
        if found is None:
            LOG.info('Block job %s of instance %s is gone without its end '
                     'event', job['id'], instance_uuid)
            self._block_job_gone(inst, job)
            return None
        if found.get('ready'):
            job['ready'] = True
        length = found.get('len') or 0
        progress = int(100 * found.get('offset', 0) / length) if length else 0
        return {'kind': job['kind'], 'progress': progress,
                'ready': job['ready'], 'ending': job['ending']}

    def block_job_abort(self, instance_uuid, disk, pivot=False):
        """Start ending the job on ``disk``: ``block-job-complete`` with
        ``pivot``, else ``block-job-cancel``.  The end comes as an event."""
        inst = self._active(instance_uuid)
        self._check_disk(inst, disk)
        job = self._abortable_job(inst, disk, pivot)
        if pivot and not job['ready']:
            # The READY event may be on its way: QEMU knows for sure.
            listed = self._execute(inst, 'query-block-jobs')
            if any(j.get('device') == job['id'] and j.get('ready')
                   for j in listed):
                job['ready'] = True
            else:
                raise exception.BlockJobNotReady(
                    instance_uuid=instance_uuid, disk=disk, kind=job['kind'])
        with self._lock:
            job = self._abortable_job(inst, disk, pivot)
            job['ending'], job['pivot'] = True, pivot
        command = 'block-job-complete' if pivot else 'block-job-cancel'
        try:
            inst.client.execute(command, {'device': job['id']})
        except qmp.QMPError as exc:
            with self._lock:
                still = inst.block_jobs.get(disk) is job
                if still:
                    job['ending'], job['pivot'] = False, False
            if not still:
                # It ended by itself meanwhile (its events came first).
                raise exception.BlockJobNotFound(
                    instance_uuid=instance_uuid, disk=disk) from exc
            raise self._hypervisor_error(exc)
        LOG.info('%s of the %s job on %s of instance %s requested', command,
                 job['kind'], disk, instance_uuid)

    def _abortable_job(self, inst, disk, pivot):
        job = inst.block_jobs.get(disk)
        if job is None:
            raise exception.BlockJobNotFound(instance_uuid=inst.uuid,
                                             disk=disk)
        if job['kind'] == MIGRATION_KIND:
            raise exception.HypervisorError(
                reason='disk %s of instance %s is being copied for a live '
                       'migration; cancel the migration instead' % (
                           disk, inst.uuid))
        if job['ending']:
            raise exception.BlockJobEnding(instance_uuid=inst.uuid,
                                           disk=disk)
        return job

    # -- events (QMP reader thread) --------------------------------------

    def _block_job_event(self, inst, name, data):
        job = inst.job_by_id(data.get('device') or data.get('id'))
        if job is None:
            return
        if 'offset' in data:
            job['offset'], job['len'] = data['offset'], data.get('len', 0)
        if name == 'BLOCK_JOB_READY':
            job['ready'] = True
            if job['kind'] != MIGRATION_KIND:
                self._emit_block_job(inst, job, 'ready')
        elif name == 'BLOCK_JOB_COMPLETED':
            job['outcome'] = ('cancelled' if job['ending'] and
                              not job['pivot'] else 'completed')
            job['error'] = data.get('error') or job['error']
        elif name == 'BLOCK_JOB_CANCELLED':
            job['outcome'] = 'cancelled'
        elif name == 'BLOCK_JOB_ERROR':
            job['error'] = '%s error (%s)' % (data.get('operation'),
                                              data.get('action'))
        elif name == 'JOB_STATUS_CHANGE' and data.get('status') == 'null':
            self._block_job_gone(inst, job)

    def _block_job_gone(self, inst, job):
        """The job left QEMU: drop it, tidy its files, announce its end."""
        with self._lock:
            if inst.block_jobs.get(job['disk']) is not job:
                return          # already ended (event and poll raced)
            del inst.block_jobs[job['disk']]
        outcome = job['outcome'] or ('cancelled' if job['ending'] and
                                     not job['pivot'] else 'completed')
        job['outcome'] = outcome
        switched = outcome == 'completed' and job['pivot']
        if job['kind'] == 'copy':
            if switched:
                inst.disk_file = job['target']
            else:
                _remove(job['target'])
        elif job['kind'] == 'commit' and switched:
            inst.disk_file = inst.layout.base
        if job['kind'] == MIGRATION_KIND:
            return      # the migration's own waiter follows it
        LOG.info('%s job on %s of instance %s %s%s', job['kind'],
                 job['disk'], inst.uuid, outcome,
                 ': %s' % job['error'] if job['error'] else '')
        self._emit_block_job(inst, job, outcome)

    def _end_block_jobs(self, inst, reason):
        """The QEMU is gone: its jobs end, cancelled."""
        for job in list(inst.block_jobs.values()):
            job['outcome'] = 'cancelled'
            job['error'] = job['error'] or reason
            self._block_job_gone(inst, job)

    def _emit_block_job(self, inst, job, state):
        event = {'type': 'block_job', 'instance_uuid': inst.uuid,
                 'disk': job['disk'], 'kind': job['kind'], 'state': state}
        if job['error'] and state != 'ready':
            event['error'] = job['error']
        self._emit(event)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
