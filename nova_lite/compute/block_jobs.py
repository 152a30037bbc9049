"""Block jobs on the compute manager, after libvirt's block-job-abort.

``block_job_abort(flags)``:
- ``0`` (sync): returns once the job is gone.  It waits on the job's end
  event and, as a fallback, polls ``block_job_info``, for at most
  ``[compute] block_job_abort_timeout``; on timeout it raises
  ``BlockJobAbortTimeout`` and the job stays "being ended" (a second abort
  says so) until the hypervisor ends it.
- ``ABORT_ASYNC``: returns at once; the end comes as a notification.
- ``PIVOT``: switch to the copy; a copy job that is not ready is refused.
- Unknown bits are refused (``InvalidFlags``), like libvirt's
  virCheckFlags.

Whatever the flags, the end is announced to every listener as the
``compute.block_job.cancelled`` or ``compute.block_job.completed``
notification from ``compute.<host>``.
"""

import time

import oslo_messaging as messaging

from nova_lite import exception
from nova_lite import concurrency
from nova_lite.virt import jobs

ABORT_ASYNC = 1
PIVOT = 2
ABORT_FLAGS = ABORT_ASYNC | PIVOT

# Named errors a caller of the compute API can cause; they go back to the
# caller without a server-side traceback.
CALLER_ERRORS = (exception.InstanceNotFound, exception.DiskNotFound,
                 exception.InvalidInput, exception.BlockJobBusy,
                 exception.BlockJobNotFound, exception.BlockJobEnding,
                 exception.BlockJobNotReady, exception.BlockJobAbortTimeout,
                 exception.JobAcquireTimeout, exception.InvalidState)


def check_flags(flags, allowed, method):
    if isinstance(flags, bool) or not isinstance(flags, int) or flags < 0:
        raise exception.InvalidInput(reason='flags must be a non-negative '
                                            'integer, got %r' % (flags,))
    if flags & ~allowed:
        raise exception.InvalidFlags(flags=flags, method=method,
                                     allowed=allowed)


class BlockJobsMixin:
    """The block-job part of ComputeManager."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._block_job_ends = {}   # (uuid, disk) -> Event

    def _block_job_event(self, event):
        key = (event['instance_uuid'], event['disk'])
        if event['state'] in ('cancelled', 'completed'):
            waiter = self._block_job_ends.get(key)
            if waiter is not None:
                waiter.set()
            payload = {'instance_uuid': event['instance_uuid'],
                       'disk': event['disk'], 'job_type': event['kind'],
                       'host': self.host}
            if 'error' in event:
                payload['error'] = event['error']
            self._notify(None, 'compute.block_job.%s' % event['state'],
                         payload)

    def _block_job_info(self, instance_uuid, disk):
        return self._run_job(instance_uuid, jobs.QUERY,
                             self.driver.block_job_info, disk)

    @messaging.expected_exceptions(*CALLER_ERRORS)
    def block_job_start(self, context, instance_uuid, disk, kind):
        """Call: start a ``kind`` (copy, commit, pull) job on ``disk``."""
        self._run_job(instance_uuid, jobs.MODIFY, self.driver.block_job_start,
                      disk, kind)
        return self._block_job_info(instance_uuid, disk)

    @messaging.expected_exceptions(*CALLER_ERRORS)
    def block_job_info(self, context, instance_uuid, disk):
        """Call: the job's progress on ``disk``, or None without a job."""
        return self._block_job_info(instance_uuid, disk)

    @messaging.expected_exceptions(*CALLER_ERRORS)
    def block_job_abort(self, context, instance_uuid, disk, flags=0):
        """Call: end the job on ``disk`` (see the module docstring)."""
        check_flags(flags, ABORT_FLAGS, 'block_job_abort')
        key = (instance_uuid, disk)
        # Listen before asking, so a quick end is not missed.
        ended = self._block_job_ends.setdefault(key, concurrency.Event())
        try:
            self._run_job(instance_uuid, jobs.MODIFY,
                          self.driver.block_job_abort, disk,
                          pivot=bool(flags & PIVOT))
            if flags & ABORT_ASYNC:
                return {'ended': False}
            self._wait_block_job_gone(instance_uuid, disk, ended)
            return {'ended': True}
        finally:
            if self._block_job_ends.get(key) is ended:
                del self._block_job_ends[key]

    def _wait_block_job_gone(self, instance_uuid, disk, ended):
        timeout = self.conf.compute.block_job_abort_timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise exception.BlockJobAbortTimeout(
                    instance_uuid=instance_uuid, disk=disk, timeout=timeout)
            if ended.wait(min(remaining,
                              self.conf.compute.task_poll_interval)):
                return
            # Fallback: the event may be lost, or the driver has none.
            if self._block_job_info(instance_uuid, disk) is None:
                return
