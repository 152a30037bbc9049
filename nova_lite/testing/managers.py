"""Managers for tests and benchmarks, selected with ``<topic>_manager``:

    [DEFAULT]
    compute_manager = nova_lite.testing.managers:BusyManager

``BusyManager`` blocks its own eventlet hub (or, under the threading
backend, holds the GIL) with CPU work on request, the way a handler that
forgets to yield (or a blocking C call) does, and records when each block
started and ended, so a test can check what the inflight probe reports
against a known truth.  It can also keep a worker busy without blocking
anything (``hang``, a handler stuck in a slow call) and list the modules
its process has loaded (``loaded_modules``).

``StallingConductorManager`` is a conductor that stops for good just before
it hands work to a compute host: the moment to kill it in a takeover test.
"""

import sys
import time

import oslo_messaging as messaging

from nova_lite.conductor import manager as conductor_manager
from nova_lite import manager
from nova_lite import monkey_patch
from nova_lite import rpc
from nova_lite import concurrency


def spin(milliseconds):
    """Busy CPU for ``milliseconds`` without ever yielding to the hub.

    Under the threading backend a Python loop alone would hand the GIL to
    other threads every 5 ms (``sys.getswitchinterval()``); a blocking C
    call that keeps the GIL does not.  The switch interval is raised above
    the spin meanwhile, so the spin holds the GIL as such a call would
    (a thread already waiting may take it once, as the change lands).
    """
    seconds = milliseconds / 1000.0
    interval = sys.getswitchinterval()
    if concurrency.BACKEND == monkey_patch.THREADING:
        sys.setswitchinterval(max(interval, seconds + 1.0))
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    finally:
        sys.setswitchinterval(interval)


class BusyManager(manager.Manager):
    """Server side of ``BusyRPCAPI``."""

    target = messaging.Target(version='1.0')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy_log = []

    def _block(self, milliseconds):
        start = time.time()
        spin(milliseconds)
        self.busy_log.append({'start': start, 'end': time.time()})
        return self.busy_log[-1]

    def block_hub(self, context, milliseconds):
        """Call: block the hub for ``milliseconds``; returns start/end."""
        return self._block(milliseconds)

    def busy_cast(self, context, milliseconds):
        """Cast: block the hub for ``milliseconds``."""
        self._block(milliseconds)

    def hang(self, context, seconds):
        """Cast: keep an executor worker for ``seconds`` without blocking
        anything else (a handler stuck in a slow call)."""
        self.hung = getattr(self, 'hung', 0) + 1
        concurrency.sleep(seconds)

    def get_hung(self, context):
        """Call: how many ``hang`` casts have started."""
        return getattr(self, 'hung', 0)

    def loaded_modules(self, context, prefix):
        """Call: the names in ``sys.modules`` that start with ``prefix``."""
        return sorted(name for name in sys.modules
                      if name.startswith(prefix))

    def get_busy_log(self, context):
        """Call: every block so far, as {start, end} wall times."""
        return list(self.busy_log)

    def reset_busy_log(self, context):
        """Call: forget the blocks so far."""
        self.busy_log = []


class BusyRPCAPI(rpc.RPCAPIBase):
    """Client side of the BusyManager test API (on any topic).

    1.0 - Initial version.
    """

    def __init__(self, conf, topic, **kwargs):
        super().__init__(conf, topic=topic, **kwargs)

    def block_hub(self, ctxt, host, milliseconds):
        return self.client.prepare(server=host).call(
            ctxt, 'block_hub', milliseconds=milliseconds)

    def busy_cast(self, ctxt, host, milliseconds):
        self.client.prepare(server=host).cast(ctxt, 'busy_cast',
                                              milliseconds=milliseconds)

    def get_busy_log(self, ctxt, host):
        return self.client.prepare(server=host).call(ctxt, 'get_busy_log')

    def hang(self, ctxt, host, seconds):
        self.client.prepare(server=host).cast(ctxt, 'hang', seconds=seconds)

    def get_hung(self, ctxt, host):
        return self.client.prepare(server=host).call(ctxt, 'get_hung')

    def loaded_modules(self, ctxt, host, prefix):
        return self.client.prepare(server=host).call(
            ctxt, 'loaded_modules', prefix=prefix)

    def reset_busy_log(self, ctxt, host):
        return self.client.prepare(server=host).call(ctxt, 'reset_busy_log')


class StallingConductorManager(conductor_manager.ConductorManager):
    """A conductor that records its work up to the last step, then hangs."""

    def _cast(self, context, work, resumed):
        concurrency.Event().wait()
