"""Small concurrency helpers; the only place besides monkey_patch that names
eventlet, so that a threading backend can replace them later.
"""

import re

import eventlet
from eventlet import event as eventlet_event
from eventlet import tpool

from nova_lite import monkey_patch

_PASSWORD_IN_URL = re.compile(r'(?P<user>[/,@][^:/@,?]*):[^@/,?]*@')


def spawn(func, *args, **kwargs):
    """Run ``func`` in a new greenthread; returns a handle with ``wait()``."""
    return eventlet.spawn(func, *args, **kwargs)


def sleep(seconds=0):
    """Yield to other greenthreads for ``seconds``."""
    eventlet.sleep(seconds)


def live_greenthreads():
    """How many greenthreads were spawned and have not finished yet."""
    return sum(1 for thread in list(monkey_patch.LIVE_GREENTHREADS)
               if not thread.dead)


def map_concurrently(func, items, concurrency):
    """``[func(item) for item in items]`` with at most ``concurrency``
    running at once; results keep the order of ``items``."""
    pool = eventlet.GreenPool(concurrency)
    return list(pool.imap(func, items))


def execute_in_thread(func, *args, **kwargs):
    """Run a blocking ``func`` in a real OS thread without blocking the hub."""
    return tpool.execute(func, *args, **kwargs)


def timeout(seconds, raise_error=True):
    """Context manager bounding its block to ``seconds``.

    It raises ``Timeout`` when time runs out, or with ``raise_error=False``
    silently leaves the block.
    """
    return eventlet.Timeout(seconds, None if raise_error else False)


Timeout = eventlet.Timeout


class Event:
    """A one-shot event greenthreads can wait on, with a timeout."""

    def __init__(self):
        self._event = eventlet_event.Event()

    def set(self):
        if not self._event.ready():
            self._event.send(True)

    def is_set(self):
        return self._event.ready()

    def wait(self, timeout=None):
        """Wait until set; returns True if set, False on timeout."""
        if self._event.ready():
            return True
        with eventlet.Timeout(timeout, False):
            self._event.wait()
        return self._event.ready()


def mask_url(url):
    """``url`` with any password replaced by ``***``; safe to log or print.

    Works for transport URLs with several hosts
    (``rabbit://u:p@h1,u:p@h2/``) and for SQLAlchemy URLs.
    """
    if not url:
        return url
    return _PASSWORD_IN_URL.sub(r'\g<user>:***@', str(url))
