"""Locks on an instance and the resources related to it, through tooz.

A conductor workflow on instance X (a resize, a migration, ...) holds the
lock of X and of every volume attached to X for its whole duration;
nova-lite-api tries the same locks, without waiting, before it attaches,
detaches or deletes a volume, and answers 409 when one is held.  The
locks are always taken in one order (the instance, then its volumes
sorted by id), so two holders never deadlock.

Backends (``[coordination] backend_url``): ``file://`` under
``state_path`` by default, for daemons on one host (the kernel drops a
dead process's file locks); across hosts ``etcd3+http://``, ``redis://``
or ``zookeeper://``, whose locks are leases that tooz's heartbeat keeps
alive and that run out when their holder dies.

One ``Coordinator`` per process: with the file backend, POSIX locks are
per process, and closing any descriptor of a lock file would drop the
process's lock on it; tooz keeps greenthreads and threads of one process
apart with a barrier per coordinator.  Services that lock take the
process's one with ``process_coordinator`` (nova-lite-all runs the API and
the conductor in one process).

Waiting.  ``locked`` waits by trying again and again without blocking, up
to its deadline: tooz's blocking acquire means different things by
driver (etcd3gw reads ``timeout`` as the lease's TTL and waits forever).
"""

import contextlib
import os
import threading
import time

from oslo_log import log as logging
import tooz
from tooz import coordination as tooz_coordination

from nova_lite import concurrency
from nova_lite import exception
from nova_lite import utils

LOG = logging.getLogger(__name__)

_PREFIX = 'nova-lite'

# Seconds between two tries of a held lock: from the first to the last.
_RETRY_FIRST, _RETRY_MAX = 0.05, 0.5

# This process's Coordinator and how many services use it.
_process = {'coordinator': None, 'users': 0}


def backend_url(conf):
    """The tooz URL: ``[coordination] backend_url``, or a file:// one
    under ``state_path``."""
    if conf.coordination.backend_url:
        return conf.coordination.backend_url
    return 'file://' + os.path.join(conf.state_path, 'locks')


def instance_lock_name(instance_uuid):
    return '%s-instance-%s' % (_PREFIX, instance_uuid)


def volume_lock_name(volume_id):
    return '%s-volume-%s' % (_PREFIX, volume_id)


def lock_names(instance_uuid=None, volume_ids=()):
    """The names to lock, in the one order every holder takes them."""
    names = [instance_lock_name(instance_uuid)] if instance_uuid else []
    return names + [volume_lock_name(v) for v in sorted(set(volume_ids))]


class Coordinator:
    """A started tooz coordinator of this process, with heartbeats."""

    def __init__(self, conf, member_id):
        self.url = backend_url(conf)
        self.acquire_timeout = conf.coordination.acquire_timeout
        self._member_id = member_id
        self._coordinator = None
        # The names this process holds (or is trying) now: see _try_once.
        self._here = set()
        self._here_lock = threading.Lock()

    def start(self):
        try:
            self._coordinator = tooz_coordination.get_coordinator(
                self.url, self._member_id.encode())
            # The heartbeat keeps leases (etcd, redis, zookeeper) alive.
            self._coordinator.start(start_heart=True)
        except Exception as exc:  # noqa: BLE001 - tooz raises many kinds
            self._coordinator = None
            raise exception.CoordinationError(
                url=utils.mask_url(self.url),
                reason=utils.mask_url(str(exc))) from exc
        LOG.info('Coordination backend %s started', utils.mask_url(self.url))

    def stop(self):
        if self._coordinator is not None:
            try:
                self._coordinator.stop()
            except Exception:  # noqa: BLE001 - stopping anyway
                LOG.exception('Cannot stop the coordination backend')
            self._coordinator = None

    @contextlib.contextmanager
    def locked(self, names, timeout=None, reason='another action holds it'):
        """Hold the locks ``names`` (see ``lock_names``) for the block.

        Waits up to ``timeout`` seconds for each (None: the configured
        ``acquire_timeout``; 0: not at all), then releases what it holds
        and raises ``ResourceLocked`` naming the lock it did not get.
        """
        if self._coordinator is None:
            raise exception.CoordinationError(
                url=utils.mask_url(self.url), reason='not started')
        if timeout is None:
            timeout = self.acquire_timeout
        held = []
        try:
            for name in names:
                lock = self._acquire(name, timeout)
                if lock is None:
                    raise exception.ResourceLocked(
                        resource=_resource_of(name), reason=reason)
                held.append((name, lock))
            yield
        finally:
            for name, lock in reversed(held):
                try:
                    lock.release()
                except Exception:  # noqa: BLE001 - its lease runs out
                    LOG.exception('Cannot release lock %s', name)
                with self._here_lock:
                    self._here.discard(name)

    def _acquire(self, name, timeout):
        """Try ``name`` until it is ours (its tooz lock) or ``timeout``
        seconds have passed (None)."""
        deadline = time.monotonic() + timeout
        delay = _RETRY_FIRST
        while True:
            lock = self._try_once(name)
            if lock is not None:
                return lock
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            concurrency.sleep(min(delay, left))
            delay = min(delay * 2, _RETRY_MAX)

    def _try_once(self, name):
        """One try of ``name``: its tooz lock, held, or None.

        One tooz lock object per name in this process at a time: with the
        file backend each object has its own descriptor of the lock file,
        and closing one (a failed try's, when it is collected) drops the
        POSIX lock another object of the process holds; so a name held
        here fails at once, without a second object, and a failed try
        gives back its descriptor (or etcd lease) before the name is free
        here again.
        """
        with self._here_lock:
            if name in self._here:
                return None
            self._here.add(name)
        got = False
        try:
            lock = self._coordinator.get_lock(name.encode())
            got = lock.acquire(blocking=False)
            if not got:
                _give_back_failed_try(lock)
        except tooz.ToozError as exc:
            raise exception.CoordinationError(
                url=utils.mask_url(self.url),
                reason=utils.mask_url(str(exc))) from exc
        finally:
            if not got:
                with self._here_lock:
                    self._here.discard(name)
        return lock if got else None


def _give_back_failed_try(lock):
    """What a failed try leaves behind, given back now: the lock file's
    descriptor (fasteners keeps it open; closed later, when the object is
    collected, it would drop the lock another object of this process got
    meanwhile) or the etcd lease it was granted (tooz lets it run out)."""
    try:
        file_lock = getattr(lock, '_lock', None)
        if hasattr(file_lock, '_do_close'):
            file_lock._do_close()
        lease = getattr(lock, '_lease', None)
        if hasattr(lease, 'revoke'):
            lease.revoke()
    except Exception:  # noqa: BLE001 - then it goes as tooz would let it
        LOG.debug('Cannot give back a failed lock try', exc_info=True)


def process_coordinator(conf, member_id):
    """This process's one started ``Coordinator`` (the first caller's
    ``conf`` and ``member_id`` make it); give it back with
    ``release_process_coordinator`` when done.  Services call this from
    their start, one after another."""
    if _process['coordinator'] is None:
        coordinator = Coordinator(conf, member_id)
        coordinator.start()
        _process['coordinator'] = coordinator
    _process['users'] += 1
    return _process['coordinator']


def release_process_coordinator(coordinator):
    """One user fewer of ``coordinator``; the last one stops it."""
    if coordinator is None or coordinator is not _process['coordinator']:
        return      # never started (a service that failed to start)
    _process['users'] -= 1
    if _process['users'] == 0:
        _process['coordinator'] = None
        coordinator.stop()


def _resource_of(name):
    """``nova-lite-volume-<id>`` -> ``Volume <id>``."""
    kind, _, ident = name[len(_PREFIX) + 1:].partition('-')
    return '%s %s' % (kind.capitalize(), ident)
