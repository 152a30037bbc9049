"""Waiting on events instead of sleeping and hoping.

Every waiter has a deadline and raises ``WaitTimeout`` with a message that
says what it was waiting for.
"""

from nova_lite import concurrency
from nova_lite import servicegroup
from nova_lite import utils


class WaitTimeout(AssertionError):
    """A waited-for condition did not happen in time."""


def wait_for(predicate, timeout=10.0, interval=0.05, what=None):
    """Wait until ``predicate()`` returns a true value; return that value.

    Exceptions from ``predicate`` count as "not yet" (a row may not exist
    yet) and the last one is reported on timeout.
    """
    return utils.wait_for(predicate, timeout, interval=interval, what=what,
                          error=WaitTimeout)


def wait_for_service(db, host, binary, status='up', service_down_time=None,
                     timeout=30.0, min_report_count=0):
    """Wait until the (host, binary) row exists with ``status``.

    ``min_report_count`` waits for that many heartbeats as well.
    """
    down_time = service_down_time or db.conf.service_down_time

    def _check():
        svc = db.service_get(host, binary)
        if servicegroup.status(svc, down_time) != status:
            return None
        return svc if svc['report_count'] >= min_report_count else None

    return wait_for(_check, timeout=timeout,
                    what='%s on %s to be %s' % (binary, host, status))


class CastWaiter:
    """Wraps a manager method and lets a test wait until it was handled.

        waiter = CastWaiter(svc.manager, 'spawn')
        rpcapi.spawn(ctxt, host, uuid)
        waiter.wait(timeout=5)       # the returned call's kwargs

    Works for casts and calls; an exception inside the method is re-raised
    by ``wait``.
    """

    def __init__(self, manager, method):
        self._manager = manager
        self._method = method
        self._original = getattr(manager, method)
        self.calls = []
        self._event = concurrency.Event()
        self._error = None
        setattr(manager, method, self._wrapper)

    def _wrapper(self, context, **kwargs):
        try:
            return self._original(context, **kwargs)
        except Exception as exc:
            self._error = exc
            raise
        finally:
            self.calls.append(kwargs)
            self._event.set()

    def wait(self, timeout=10.0):
        if not self._event.wait(timeout):
            raise WaitTimeout('%s.%s was not called within %.1fs' % (
                type(self._manager).__name__, self._method, timeout))
        if self._error is not None:
            raise self._error
        return self.calls[0]

    def restore(self):
        setattr(self._manager, self._method, self._original)
