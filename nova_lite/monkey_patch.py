"""The one place nova_lite patches the standard library for eventlet.

Every ``nova_lite.cmd`` module imports this first, before anything that might
import ``socket``, ``threading`` or ``time``.  Tests import it from
``conftest.py`` for the same reason.

eventlet 0.41 and oslo.messaging's eventlet executor both announce their own
deprecation on every start.  They still work and nova_lite depends on them
knowingly, so only those known warnings are silenced; any other warning still
shows.  Keeping eventlet behind this module and ``nova_lite.utils`` (spawn,
sleep, tpool) is what lets a threading backend be added later.
"""

import warnings
import weakref

_KNOWN_DEPRECATIONS = (
    # eventlet itself, on import.
    r'(?s).*Eventlet is deprecated',
    # oslo.messaging's eventlet executor, on every get_rpc_server().
    r"(?s).*Using the 'executor' argument is deprecated",
    r'(?s).*Eventlet usages are deprecated',
    r'(?s).*eventletutils module is deprecated',
    r"(?s).*Using class 'Green(Future|ThreadPoolExecutor)'",
    r"(?s).*The 'oslo_service.eventlet_backdoor' module",
)

for _message in _KNOWN_DEPRECATIONS:
    warnings.filterwarnings('ignore', message=_message)

import eventlet  # noqa: E402  (the filters must be in place first)

if not eventlet.patcher.is_monkey_patched('socket'):
    eventlet.monkey_patch()

# Every GreenThread (eventlet.spawn, GreenPool, the RPC executor) is noted at
# creation, so the inflight probe can report live greenthreads in O(live)
# instead of walking the heap (gc.get_objects() takes ~17 ms of hub time, and
# misses what gc.freeze() moved out of its view).
LIVE_GREENTHREADS = weakref.WeakSet()
_green_thread_init = eventlet.greenthread.GreenThread.__init__


def _tracked_init(self, *args, **kwargs):
    _green_thread_init(self, *args, **kwargs)
    LIVE_GREENTHREADS.add(self)


if eventlet.greenthread.GreenThread.__init__ is not _tracked_init:
    eventlet.greenthread.GreenThread.__init__ = _tracked_init
