"""One QEMU instance as the driver sees it: files, process, QMP connection,
cached state, block jobs and the waiters of driver threads.

``feed`` runs in the QMP reader thread for every event; a driver thread
that needs an event registers a ``Waiter`` *before* sending the command
that causes it (QEMU often emits the event before the command's reply).
"""

from nova_lite import concurrency

_threading = concurrency.native_module('threading')

# query-status 'status' -> the power state nova_lite reports.
POWER_STATES = {
    'running': 'running',
    'shutdown': 'shutdown',
    'guest-panicked': 'crashed',
    'internal-error': 'crashed',
}
PAUSED = 'paused'     # every other run state: prelaunch, inmigrate, ...

# Instance.state values beside the power states.
BUILDING = 'building'
INCOMING = 'incoming'       # a destination's QEMU waiting for a migration
DELETING = 'deleting'


def power_state(status):
    """The power state for a QEMU run state."""
    return POWER_STATES.get(status, PAUSED)


class Waiter:
    """Waits, in a native thread, for the first event ``predicate``
    accepts, or for the connection to close."""

    def __init__(self, predicate):
        self.predicate = predicate
        self.message = None
        self.closed = None
        self._event = _threading.Event()

    def _offer(self, message):
        if self.predicate(message):
            self.message = message
            self._event.set()
            return True
        return False

    def _close(self, reason):
        self.closed = reason
        self._event.set()

    def wake(self):
        """End the wait early (the waiting thread re-checks its state)."""
        self._event.set()

    def wait(self, timeout):
        """The event, or None on timeout, on ``wake`` or once closed."""
        self._event.wait(timeout)
        return self.message


class Instance:
    """The driver's record of one instance."""

    def __init__(self, instance_uuid, layout, memory_mb, disk_bytes,
                 state=BUILDING):
        self.uuid = instance_uuid
        self.layout = layout
        self.memory_mb = memory_mb
        self.disk_bytes = disk_bytes
        self.disk_file = layout.disk        # what vda runs on now
        self.state = state
        self.process = None
        self.client = None
        # The driver itself is stopping, moving or receiving it: its
        # STOP/RESUME/SHUTDOWN and the socket closing are expected.
        self.busy = None
        self.shutdown_reason = None
        self.block_jobs = {}                 # disk -> job dict
        self.ports = ()                      # held migration ports
        self.copies = 0
        self.migration_status = None         # from MIGRATION events
        self.migration_events = 0
        self.discarded = False
        self._waiters = []
        self._lock = _threading.Lock()

    def __repr__(self):
        return '<Instance %s %s>' % (self.uuid, self.state)

    @property
    def running(self):
        return self.client is not None and self.client.closed is None

    def expect(self, predicate):
        """A ``Waiter`` for an event to come."""
        waiter = Waiter(predicate)
        with self._lock:
            if self.client is not None and self.client.closed is not None:
                waiter._close(self.client.closed)
            else:
                self._waiters.append(waiter)
        return waiter

    def forget(self, waiter):
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def feed(self, message):
        """Offer an event to the waiters (reader thread)."""
        with self._lock:
            self._waiters = [waiter for waiter in self._waiters
                             if not waiter._offer(message)]

    def closed(self, reason):
        """The QMP connection closed: every waiter wakes up."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter._close(reason)

    def job_by_id(self, job_id):
        for job in self.block_jobs.values():
            if job['id'] == job_id:
                return job
        return None
