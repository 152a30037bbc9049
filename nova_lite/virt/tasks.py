"""Waiting for a driver task without holding a thread.

``wait_for_task`` runs in a greenthread: between polls it sleeps on the hub
(no native thread is held per operation), each ``poll_task`` runs in the
thread pool, and a completion event from the driver wakes it early, so
polling is only the fallback when an event is lost or the driver has none.
A wait that ends before its task does (a timeout, a failed poll, the
greenthread killed) cancels the task on the hypervisor.
"""

import time

from oslo_log import log as logging

from nova_lite import exception
from nova_lite import concurrency
from nova_lite.virt import driver as virt_driver

LOG = logging.getLogger(__name__)


class TaskEvents:
    """Completion events by task id, fed from the driver's event thread."""

    def __init__(self):
        self._events = {}

    def expect(self, task_id):
        return self._events.setdefault(task_id, concurrency.Event())

    def done(self, task_id):
        # An event for a task nobody waits on (any more) is dropped; a waiter
        # that registers late polls first and sees the task done.
        event = self._events.get(task_id)
        if event is not None:
            event.set()

    def forget(self, task_id):
        self._events.pop(task_id, None)


class Task:
    """A running driver task; ``wait()`` returns its last poll result."""

    def __init__(self, driver, task_id, operation, instance_uuid, events,
                 poll_interval, timeout=None, on_poll=None, monitor=None):
        """``monitor`` is a callable giving the instance's monitor lock."""
        self.driver = driver
        self.task_id = task_id
        self.operation = operation
        self.instance_uuid = instance_uuid
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.polls = 0
        self._on_poll = on_poll
        self._monitor = monitor
        self._events = events
        self._event = events.expect(task_id) if driver.emits_events else None
        self._cancelled = False

    def _poll(self):
        self.polls += 1
        if self._monitor is None:
            return self.driver.poll_task(self.task_id)
        with self._monitor():
            return self.driver.poll_task(self.task_id)

    def cancel(self):
        """Ask the driver to stop; ``wait()`` then raises TaskCancelled."""
        self._cancelled = True
        self.driver.cancel_task(self.task_id)
        if self._event is not None:
            self._event.set()

    def wait(self):
        """Wait for the task to end; its last poll result.

        However the wait ends short of the task's end (timeout, a failed
        poll, the greenthread killed), the task is cancelled on the
        hypervisor: nothing is left running that nobody waits for.
        """
        deadline = (time.monotonic() + self.timeout) if self.timeout else None
        ended = False
        try:
            while True:
                status = self._poll()
                if status['state'] in virt_driver.TASK_DONE:
                    ended = True
                if self._on_poll is not None:
                    self._on_poll(status)
                if ended:
                    return self._result(status)
                wait = self.poll_interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        raise exception.TaskTimeout(
                            operation=self.operation,
                            instance_uuid=self.instance_uuid,
                            timeout=self.timeout)
                if self._event is not None:
                    self._event.wait(wait)
                else:
                    concurrency.sleep(wait)
        finally:
            self._events.forget(self.task_id)
            if not ended:
                self._cancel_abandoned()

    def _cancel_abandoned(self):
        LOG.warning('Cancelling %s task %s of instance %s: its wait ended '
                    'before it did', self.operation, self.task_id,
                    self.instance_uuid)
        try:
            if self._monitor is None:
                self.driver.cancel_task(self.task_id)
            else:
                with self._monitor():
                    self.driver.cancel_task(self.task_id)
        except Exception:  # noqa: BLE001 - the original error matters more
            LOG.exception('Cannot cancel task %s', self.task_id)

    def _result(self, status):
        if status['state'] == virt_driver.TASK_SUCCESS:
            return status
        if status['state'] == virt_driver.TASK_CANCELLED or self._cancelled:
            raise exception.TaskCancelled(operation=self.operation,
                                          instance_uuid=self.instance_uuid)
        raise exception.TaskFailed(operation=self.operation,
                                   instance_uuid=self.instance_uuid,
                                   reason=status['error'] or 'unknown error')
