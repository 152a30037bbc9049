"""The threading backend: native threads only; eventlet is never imported."""

import concurrent.futures
import importlib
import logging
import queue
import threading
import time

LOG = logging.getLogger(__name__)

RPC_EXECUTOR = 'threading'

# Driver calls: a bounded pool, as eventlet's tpool (EVENTLET_THREADPOOL_SIZE
# defaults to 20 there).
_POOL_SIZE = 20
_pool = None
_pool_lock = threading.Lock()


class _NativeHandle:
    def __init__(self, func, args, kwargs):
        self._result = None
        self._error = None
        self._thread = threading.Thread(target=self._run,
                                        args=(func, args, kwargs),
                                        daemon=True)
        self._thread.start()

    def _run(self, func, args, kwargs):
        try:
            self._result = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to wait()
            self._error = exc

    @property
    def dead(self):
        return not self._thread.is_alive()

    def wait(self):
        """The function's result (or its exception)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result

    def join(self, timeout=None):
        """Wait up to ``timeout`` s; True once it has finished."""
        self._thread.join(timeout)
        return self.dead

    def kill(self):
        """A native thread cannot be killed: it is a daemon thread, so it
        ends with the process.  Returns False."""
        return False


def spawn(func, *args, **kwargs):
    """Run ``func`` in a new native (daemon) thread."""
    return _NativeHandle(func, args, kwargs)


def sleep(seconds=0):
    time.sleep(seconds)


def live_threads():
    """Native threads alive in this process, the main one included."""
    return threading.active_count()


def map_concurrently(func, items, concurrency):
    items = list(items)
    if not items:
        return []
    with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(func, items))


def _driver_pool():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=_POOL_SIZE, thread_name_prefix='nova-lite-tpool')
        return _pool


def execute_in_thread(func, *args, **kwargs):
    """Run a blocking ``func`` in the bounded native pool; wait for it."""
    return _driver_pool().submit(func, *args, **kwargs).result()


def call_blocking_io(func, *args, **kwargs):
    """Every thread is native here: the calling thread runs ``func``."""
    return func(*args, **kwargs)


class Event:
    """``threading.Event`` whose ``wait`` says True once set."""

    def __init__(self):
        self._event = threading.Event()

    def set(self):
        self._event.set()

    def is_set(self):
        return self._event.is_set()

    def wait(self, timeout=None):
        return self._event.wait(timeout)


class HubQueue:
    """Hands items ``put`` from any thread to ``handler`` in one thread."""

    _STOP = object()

    def __init__(self, handler):
        self._handler = handler
        self._items = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._dispatch, daemon=True,
                                        name='nova-lite-events')
        self._thread.start()

    def put(self, item):
        self._items.put(item)

    def _dispatch(self):
        while True:
            item = self._items.get()
            if item is self._STOP:
                return
            try:
                self._handler(item)
            except Exception:  # noqa: BLE001 - one bad item only
                LOG.exception('Handler failed for %r', item)

    def close(self):
        self._items.put(self._STOP)


def blocking_sleep(seconds):
    time.sleep(seconds)


def native_timer(seconds, func, *args):
    timer = threading.Timer(seconds, func, args)
    timer.daemon = True
    timer.start()
    return timer


def native_lock():
    return threading.Lock()


def native_thread_id():
    return threading.get_ident()


def native_module(name):
    """The standard-library module ``name``: nothing is patched here."""
    return importlib.import_module(name)
