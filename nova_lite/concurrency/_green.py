"""The eventlet backend (``nova_lite.monkey_patch`` has patched already)."""

import atexit
import collections
import importlib
import logging
import os
import sys
import weakref

import eventlet
from eventlet import event as eventlet_event
from eventlet import greenthread
from eventlet import hubs
from eventlet import patcher
from eventlet import tpool
from eventlet import wsgi as eventlet_wsgi

LOG = logging.getLogger(__name__)

RPC_EXECUTOR = 'eventlet'

_native_os = patcher.original('os')
_native_time = patcher.original('time')
_native_threading = patcher.original('threading')
_native_queue = patcher.original('queue')

# Every greenlet eventlet starts (spawn, spawn_n, GreenPool, the RPC
# executor's workers) is noted when created, so the probe counts live
# greenthreads in O(live) instead of walking the heap with gc (~17 ms of hub
# time, and blind to what gc.freeze() moved out of its view).
_LIVE = weakref.WeakSet()
_green_thread_init = greenthread.GreenThread.__init__
_spawn_n = greenthread._spawn_n


def _tracked_init(self, *args, **kwargs):
    _green_thread_init(self, *args, **kwargs)
    _LIVE.add(self)


def _tracked_spawn_n(*args, **kwargs):
    timer, green = _spawn_n(*args, **kwargs)
    _LIVE.add(green)
    return timer, green


if greenthread.GreenThread.__init__ is not _tracked_init:
    greenthread.GreenThread.__init__ = _tracked_init
    greenthread._spawn_n = _tracked_spawn_n


def _native_safe_logging():
    """Give logging locks that native threads can share.

    Monkey-patching made ``threading.RLock`` green, and a green lock that
    two native threads contend never wakes its waiter: two driver threads
    (a thread-pool call, a QMP reader) logging at once hang for good.
    oslo.log's ``PipeMutex`` works for greenthreads and native threads
    alike, and is reentrant as an ``RLock`` is.  Every handler's lock
    (including handlers that exist already) and the logging module's own
    lock (a logger-cache miss, ``setLevel``) become one.  oslo.log's setup
    would otherwise make the module lock a *green* RLock again (its
    "eventlet fix"); it is told that fix is applied.
    """
    from oslo_log import log as oslo_log
    from oslo_log import pipe_mutex

    logging.Handler.createLock = pipe_mutex.pipe_createLock
    for handler in logging.getLogger().handlers:
        handler.createLock()
    oslo_log._EVENTLET_FIX_APPLIED = True
    # Put back at exit, so the mutex is closed while ``os`` still exists
    # (closed at module teardown, it prints an ignored AttributeError).
    atexit.register(setattr, logging, '_lock', logging._lock)
    logging._lock = pipe_mutex.PipeMutex()


_native_safe_logging()


class _GreenHandle:
    def __init__(self, thread):
        self._thread = thread

    @property
    def dead(self):
        return self._thread.dead

    def wait(self):
        """The function's result (or its exception)."""
        return self._thread.wait()

    def join(self, timeout=None):
        """Wait up to ``timeout`` s; True once it has finished."""
        with eventlet.Timeout(timeout, False):
            try:
                self._thread.wait()
            except Exception:  # noqa: BLE001 - its error is not ours
                pass
        return self._thread.dead

    def kill(self):
        """End it (GreenletExit at its next switch); returns True."""
        self._thread.kill()
        return True


def spawn(func, *args, **kwargs):
    """Run ``func`` in a new greenthread."""
    return _GreenHandle(eventlet.spawn(func, *args, **kwargs))


def sleep(seconds=0):
    eventlet.sleep(seconds)


def live_threads():
    """Greenthreads started and not finished yet."""
    return sum(1 for green in list(_LIVE) if not green.dead)


def map_concurrently(func, items, concurrency):
    """``[func(item) for item in items]``, at most ``concurrency`` at once,
    in the order of ``items``."""
    return list(eventlet.GreenPool(concurrency).imap(func, items))


def execute_in_thread(func, *args, **kwargs):
    """Run a blocking ``func`` in eventlet's native thread pool."""
    return tpool.execute(func, *args, **kwargs)


class Event:
    """A one-shot event greenthreads wait on, with a timeout."""

    def __init__(self):
        self._event = eventlet_event.Event()

    def set(self):
        if not self._event.ready():
            self._event.send(True)

    def is_set(self):
        return self._event.ready()

    def wait(self, timeout=None):
        """True once set; False on timeout."""
        if self._event.ready():
            return True
        with eventlet.Timeout(timeout, False):
            self._event.wait()
        return self._event.ready()


class HubQueue:
    """Hands items from native threads to ``handler`` in one greenthread.

    eventlet objects may only be touched from the hub's own thread, so the
    native side only appends to a deque and writes a byte to a pipe, which
    the greenthread waits on cooperatively.  ``put`` never blocks.
    """

    def __init__(self, handler):
        self._handler = handler
        self._items = collections.deque()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        # A full pipe already holds a wake-up; a driver thread never waits.
        os.set_blocking(self._write_fd, False)
        self._closed = False
        self._thread = eventlet.spawn(self._dispatch)

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
            except OSError:
                pass
            while self._items:
                item = self._items.popleft()
                try:
                    self._handler(item)
                except Exception:  # noqa: BLE001 - one bad item only
                    LOG.exception('Handler failed for %r', item)

    def close(self):
        self._closed = True
        self._thread.kill()
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class _IOThread:
    """One native thread that runs blocking library calls for the hub.

    One, not a pool: SQLAlchemy's connection pool guards itself with
    ``threading`` locks, which monkey-patching turned green, and a green lock
    contended by two native threads never wakes its waiter.  A single thread
    never contends them.  Results come back through a ``HubQueue``.
    """

    def __init__(self):
        self._requests = _native_queue.SimpleQueue()
        self._replies = None
        self._thread = None
        self._lock = _native_threading.Lock()

    def _start(self):
        with self._lock:
            if self._thread is None:
                self._replies = HubQueue(lambda done: done())
                self._thread = _native_threading.Thread(
                    target=self._serve, name='nova-lite-io', daemon=True)
                self._thread.start()

    def _serve(self):
        while True:
            func, args, kwargs, slot = self._requests.get()
            try:
                slot['result'] = func(*args, **kwargs)
            except BaseException:  # noqa: BLE001 - re-raised by the caller
                slot['error'] = sys.exc_info()[1]
            self._replies.put(slot['done'].set)

    def call(self, func, *args, **kwargs):
        if _native_threading.current_thread() is self._thread:
            return func(*args, **kwargs)       # a nested call
        self._start()
        slot = {'done': Event()}
        self._requests.put((func, args, kwargs, slot))
        slot['done'].wait()
        if 'error' in slot:
            raise slot['error']
        return slot['result']


_IO_THREAD = _IOThread()


def call_blocking_io(func, *args, **kwargs):
    """Run ``func`` in the one native I/O thread; the hub runs meanwhile."""
    return _IO_THREAD.call(func, *args, **kwargs)


def blocking_sleep(seconds):
    """A real sleep, for code running in native threads."""
    _native_time.sleep(seconds)


def native_timer(seconds, func, *args):
    """``func(*args)`` after ``seconds``, in a native daemon thread."""
    timer = _native_threading.Timer(seconds, func, args)
    timer.daemon = True
    timer.start()
    return timer


def native_lock():
    """A lock for state shared with native threads."""
    return _native_threading.Lock()


def native_thread_id():
    """The OS thread running the caller (every greenthread shares one)."""
    return _native_threading.get_ident()


# What subprocess imports that monkey-patching changed: an unpatched
# subprocess must see the originals of all of them, or its waits and pipes
# are green (and would spin a private hub in whatever native thread calls
# them).
_SUBPROCESS_DEPS = ('os', 'select', 'selectors', 'time', 'threading')
_NATIVE_MODULES = {}


def _unpatched_subprocess():
    saver = patcher.SysModulesSaver(('subprocess',) + _SUBPROCESS_DEPS)
    try:
        for name in _SUBPROCESS_DEPS:
            sys.modules[name] = patcher.original(name)
        sys.modules.pop('subprocess', None)
        return importlib.import_module('subprocess')
    finally:
        saver.restore()


def native_module(name):
    """The standard-library module ``name`` as it was before
    monkey-patching (``socket``, ``select``, ``subprocess``,
    ``threading``, ...), for code that runs in native threads: its calls
    block the calling thread, never a hub."""
    module = _NATIVE_MODULES.get(name)
    if module is None:
        module = (_unpatched_subprocess() if name == 'subprocess'
                  else patcher.original(name))
        _NATIVE_MODULES[name] = module
    return module


class _GreenWSGIServer:
    """eventlet's WSGI server in a greenthread, each connection in a
    greenthread of a pool of ``pool_size``."""

    kind = 'eventlet.wsgi'

    def __init__(self, app, host, port, pool_size, read_timeout=None,
                 bounded=False):
        # No SO_REUSEPORT (eventlet's default): a second server on a port
        # in use must fail, not share it.
        self._sock = eventlet.listen((host, port), reuse_port=False)
        self.port = self._sock.getsockname()[1]
        self._pool = eventlet.GreenPool(pool_size)
        # debug=False: an error never sends a traceback to the client;
        # the app logs each request itself (log_output=False).  An idle
        # keep-alive connection gives its pool slot back after 10 s.
        self._thread = eventlet.spawn(
            eventlet_wsgi.server, self._sock, app, custom_pool=self._pool,
            log=logging.getLogger('eventlet.wsgi.server'), log_output=False,
            debug=False, keepalive=read_timeout or 10,
            socket_timeout=read_timeout or 60)

    def stop(self, timeout):
        """Stop accepting (idle connections are closed), then wait up to
        ``timeout`` s for the requests in flight; True once none is."""
        self._thread.kill()
        with eventlet.Timeout(timeout, False):
            self._pool.waitall()
        return self._pool.running() == 0


def serve_wsgi(app, host, port, pool_size, read_timeout=None,
               bounded=False):
    """Listen on ``host:port`` (``OSError`` if it cannot) and serve
    ``app`` with eventlet's WSGI server; returns the server (``port``,
    ``stop(timeout)``).  ``read_timeout`` closes a connection idle that
    long.  The pool always bounds the connections served at once (more
    wait in the listen backlog), so ``bounded`` changes nothing here."""
    return _GreenWSGIServer(app, host, port, pool_size, read_timeout)
