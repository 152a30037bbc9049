"""Per-instance job control, after libvirt's qemu domain jobs, with the
"interruptible async job" its developers proposed.

State of one instance::

    regular   : None | QUERY | MODIFY | DESTROY | ABORT   (who holds it)
    async     : None | MIGRATION_OUT | SNAPSHOT | BLOCK_COPY
    interruptible : bool   (only meaningful while an async job runs)
    mask      : the regular job types the async job lets in

Rules:

1. Regular jobs exclude each other: at most one at a time.
2. Async jobs exclude each other, and one starts only when no regular job
   runs.
3. While an async job runs, a regular job may start **only** while the
   async job is *interruptible* and only if its type is in the async job's
   mask (e.g. QUERY during a migration's convergence wait).
4. Leaving the interruptible state first waits for the running regular job
   (if any) to end; from then on nothing runs beside the async job.
5. Monitor serialization: ``monitor()`` admits one driver command per
   instance at a time, whichever job (or none) issues it.

Starting a job waits at most ``[compute] job_acquire_timeout`` seconds; the
timeout error names the job that holds the instance.

    regular job:    with jobs.job(QUERY): ... with jobs.monitor(): driver call
    async job:      with jobs.async_job(MIGRATION_OUT, mask={QUERY}) as aj:
                        aj.enter_interruptible(); ...; aj.leave_interruptible()
"""

import collections
import contextlib
import threading
import time

from nova_lite import exception

QUERY = 'QUERY'
MODIFY = 'MODIFY'
DESTROY = 'DESTROY'
ABORT = 'ABORT'
REGULAR_JOBS = frozenset([QUERY, MODIFY, DESTROY, ABORT])

MIGRATION_OUT = 'MIGRATION_OUT'
SNAPSHOT = 'SNAPSHOT'
BLOCK_COPY = 'BLOCK_COPY'
ASYNC_JOBS = frozenset([MIGRATION_OUT, SNAPSHOT, BLOCK_COPY])


HISTORY_LENGTH = 1000


class InstanceJobs:
    """The job state of one instance.  Greenthread-safe (eventlet patches
    ``threading.Condition`` to a green one)."""

    def __init__(self, instance_uuid, acquire_timeout):
        self.instance_uuid = instance_uuid
        self.acquire_timeout = acquire_timeout
        self._cond = threading.Condition()
        self._monitor = threading.Lock()
        self.regular = None
        self.async_job = None
        self.interruptible = False
        self.mask = frozenset()
        # The latest transitions the state machine allowed, for tests and
        # debugging; bounded, as an instance lives long.
        self.history = collections.deque(maxlen=HISTORY_LENGTH)

    def _holder(self):
        parts = []
        if self.async_job:
            parts.append('%s (async, %s)' % (
                self.async_job,
                'interruptible, allows %s' % ','.join(sorted(self.mask))
                if self.interruptible else 'not interruptible'))
        if self.regular:
            parts.append('%s (regular)' % self.regular)
        return ' and '.join(parts) or 'nothing (contention)'

    def _wait_until(self, allowed, job, timeout):
        timeout = self.acquire_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not allowed():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise exception.JobAcquireTimeout(
                    timeout=timeout, job=job,
                    instance_uuid=self.instance_uuid, holder=self._holder())
            self._cond.wait(remaining)

    def _regular_allowed(self, job_type):
        if self.regular is not None:
            return False
        if self.async_job is None:
            return True
        return self.interruptible and job_type in self.mask

    def begin(self, job_type, timeout=None):
        if job_type not in REGULAR_JOBS:
            raise exception.InvalidJob(reason='%r is not a regular job' %
                                       job_type)
        with self._cond:
            self._wait_until(lambda: self._regular_allowed(job_type),
                             job_type, timeout)
            self.regular = job_type
            self.history.append(('begin', job_type, self.async_job,
                                 self.interruptible))

    def end(self, job_type):
        with self._cond:
            if self.regular != job_type:
                raise exception.InvalidJob(
                    reason='ending %s but %s holds the instance' % (
                        job_type, self.regular))
            self.regular = None
            self.history.append(('end', job_type, self.async_job,
                                 self.interruptible))
            self._cond.notify_all()

    @contextlib.contextmanager
    def job(self, job_type, timeout=None):
        """Hold a regular job for the block."""
        self.begin(job_type, timeout)
        try:
            yield self
        finally:
            self.end(job_type)

    def begin_async(self, job_type, mask=(), timeout=None):
        if job_type not in ASYNC_JOBS:
            raise exception.InvalidJob(reason='%r is not an async job' %
                                       job_type)
        mask = frozenset(mask)
        if not mask <= REGULAR_JOBS:
            raise exception.InvalidJob(reason='mask %s is not regular jobs'
                                       % sorted(mask))
        with self._cond:
            self._wait_until(lambda: self.async_job is None and
                             self.regular is None, job_type, timeout)
            self.async_job, self.mask = job_type, mask
            self.interruptible = False
            self.history.append(('begin_async', job_type, None, False))

    def enter_interruptible(self):
        with self._cond:
            self._require_async()
            self.interruptible = True
            self.history.append(('interruptible', self.async_job,
                                 self.regular, True))
            self._cond.notify_all()

    def leave_interruptible(self, timeout=None):
        """Close the window; waits for the running regular job to end."""
        with self._cond:
            self._require_async()
            # No new regular job from here on ...
            self.interruptible = False
            # ... and the one already running (if any) finishes first.
            self._wait_until(lambda: self.regular is None, self.async_job,
                             timeout)
            self.history.append(('uninterruptible', self.async_job, None,
                                 False))

    def end_async(self):
        with self._cond:
            self._require_async()
            self.history.append(('end_async', self.async_job, self.regular,
                                 self.interruptible))
            self.async_job, self.mask = None, frozenset()
            self.interruptible = False
            self._cond.notify_all()

    def _require_async(self):
        if self.async_job is None:
            raise exception.InvalidJob(reason='no async job is running')

    @contextlib.contextmanager
    def async_job_held(self, job_type, mask=(), timeout=None):
        """Hold an async job for the block."""
        self.begin_async(job_type, mask, timeout)
        try:
            yield self
        finally:
            self.end_async()

    @contextlib.contextmanager
    def monitor(self):
        """At most one driver command per instance at a time."""
        with self._monitor:
            yield

    def run(self, job_type, func, *args, **kwargs):
        """``func(*args, **kwargs)``, one driver command, as a regular job
        of ``job_type`` and under the monitor."""
        with self.job(job_type):
            with self.monitor():
                return func(*args, **kwargs)


class JobControl:
    """``InstanceJobs`` by instance uuid.

    Code that runs jobs holds an instance's state for as long as it uses it
    (``held``); ``forget`` (the instance was destroyed or has left this
    host) drops the state once nobody holds it.  Dropping it earlier would
    let a newcomer get a fresh state, with a second monitor lock, beside a
    greenthread still using the old one: two commands could overlap.
    """

    def __init__(self, acquire_timeout):
        self.acquire_timeout = acquire_timeout
        self._instances = {}
        self._holders = collections.Counter()
        self._forgotten = set()
        self._lock = threading.Lock()

    def __getitem__(self, instance_uuid):
        """The state, created if new, for inspection: it is not held."""
        with self._lock:
            return self._get(instance_uuid)

    def __contains__(self, instance_uuid):
        return instance_uuid in self._instances

    def __len__(self):
        return len(self._instances)

    def _get(self, instance_uuid):
        jobs = self._instances.get(instance_uuid)
        if jobs is None:
            jobs = self._instances[instance_uuid] = InstanceJobs(
                instance_uuid, self.acquire_timeout)
        return jobs

    @contextlib.contextmanager
    def held(self, instance_uuid):
        """The instance's state, kept (never forgotten) for the block."""
        with self._lock:
            jobs = self._get(instance_uuid)
            self._holders[instance_uuid] += 1
        try:
            yield jobs
        finally:
            with self._lock:
                self._holders[instance_uuid] -= 1
                if not self._holders[instance_uuid]:
                    del self._holders[instance_uuid]
                    if instance_uuid in self._forgotten:
                        self._drop(instance_uuid)

    def run(self, instance_uuid, job_type, func, *args, **kwargs):
        """``InstanceJobs.run`` on the instance's state, held meanwhile."""
        with self.held(instance_uuid) as jobs:
            return jobs.run(job_type, func, *args, **kwargs)

    def forget(self, instance_uuid):
        """Drop the instance's state now, or when its last holder ends."""
        with self._lock:
            if self._holders.get(instance_uuid):
                self._forgotten.add(instance_uuid)
            else:
                self._drop(instance_uuid)

    def _drop(self, instance_uuid):
        self._forgotten.discard(instance_uuid)
        self._instances.pop(instance_uuid, None)
