"""Small concurrency helpers; the only place besides monkey_patch that names
eventlet, so that a threading backend can replace them later.
"""

import collections
import logging
import os
import re
import time

import eventlet
from eventlet import event as eventlet_event
from eventlet import hubs
from eventlet import patcher
from eventlet import tpool

from nova_lite import monkey_patch

LOG = logging.getLogger(__name__)

_native_os = patcher.original('os')
_native_time = patcher.original('time')
_native_threading = patcher.original('threading')

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


def wait_for(predicate, timeout, interval=0.05, what=None,
             retry_errors=(Exception,), error=TimeoutError):
    """Call ``predicate()`` until it returns a true value; return that value.

    Exceptions in ``retry_errors`` count as "not yet" (a row may not exist
    yet); the last one is named in the ``error`` raised after ``timeout``
    seconds.  Other exceptions propagate at once.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except retry_errors as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = ' (last error: %s)' % last_error if last_error else ''
            raise error('Timed out after %.1fs waiting for %s%s' % (
                timeout, what or getattr(predicate, '__name__', 'predicate'),
                detail))
        sleep(interval)


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


class ThreadToGreenQueue:
    """Hands items from native OS threads (driver callbacks) to one
    greenthread, safely: eventlet objects must only be touched from the hub's
    own thread, so the native side only appends to a deque and writes a byte
    to a pipe, which the greenthread waits on cooperatively.
    """

    def __init__(self, handler):
        self._handler = handler
        self._items = collections.deque()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        # A full pipe already holds a wake-up; a driver thread never waits.
        os.set_blocking(self._write_fd, False)
        self._closed = False
        self._thread = spawn(self._dispatch)

    def put(self, item):
        """Callable from any thread."""
        self._items.append(item)
        try:
            _native_os.write(self._write_fd, b'x')
        except OSError:
            pass  # full (a wake-up is pending) or closed (consumer gone)

    def _dispatch(self):
        while not self._closed:
            hubs.trampoline(self._read_fd, read=True)
            try:
                os.read(self._read_fd, 4096)
            except (BlockingIOError, OSError):
                pass
            while self._items:
                item = self._items.popleft()
                try:
                    self._handler(item)
                except Exception:  # noqa: BLE001 - one bad event only
                    LOG.exception('Event handler failed for %r', item)

    def close(self):
        self._closed = True
        self._thread.kill()
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def blocking_sleep(seconds):
    """A real, thread-blocking sleep, for code running in native threads
    (a driver call in the thread pool), where the green sleep must not be
    used."""
    _native_time.sleep(seconds)


def native_timer(seconds, func, *args):
    """Run ``func(*args)`` after ``seconds`` in a native daemon thread."""
    timer = _native_threading.Timer(seconds, func, args)
    timer.daemon = True
    timer.start()
    return timer


def native_lock():
    """A lock for state shared with native threads."""
    return _native_threading.Lock()


def mask_url(url):
    """``url`` with any password replaced by ``***``; safe to log or print.

    Works for transport URLs with several hosts
    (``rabbit://u:p@h1,u:p@h2/``) and for SQLAlchemy URLs.
    """
    if not url:
        return url
    return _PASSWORD_IN_URL.sub(r'\g<user>:***@', str(url))
