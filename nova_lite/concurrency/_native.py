"""The threading backend: native threads only; eventlet is never imported."""

import concurrent.futures
import importlib
import logging
import queue
import socketserver
import threading
import time
from wsgiref import simple_server

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


class _QuietHandler(simple_server.WSGIRequestHandler):
    """wsgiref's handler; the app logs each request, not this."""

    def log_message(self, format, *args):
        LOG.debug('wsgiref: ' + format, *args)

    def address_string(self):
        return self.client_address[0]


class _PooledWSGIServer(simple_server.WSGIServer):
    """wsgiref's server with each connection in a bounded thread pool
    (ThreadingMixIn would start a thread per connection, unbounded)."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app, host, port, pool_size, read_timeout=None,
                 bounded=False):
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=pool_size, thread_name_prefix='nova-lite-wsgi')
        self._pool_size = pool_size
        self._bounded = bounded
        self._busy = 0
        self._idle = threading.Condition()
        handler = type('_Handler', (_QuietHandler,),
                       {'timeout': read_timeout})
        super().__init__((host, port), handler)
        self.set_app(app)

    def server_bind(self):
        # Not HTTPServer's: its getfqdn() may wait on DNS for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()

    def process_request(self, request, client_address):
        with self._idle:
            if self._bounded and self._busy >= self._pool_size:
                # Every worker holds a connection: refuse this one rather
                # than queue it without bound.
                self.shutdown_request(request)
                return
            self._busy += 1
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one connection only
            LOG.exception('Error serving %s', client_address[0])
        finally:
            self.shutdown_request(request)
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def handle_error(self, request, client_address):
        LOG.exception('Error serving %s', client_address[0])


class _NativeWSGIServer:
    kind = 'wsgiref, threaded'

    def __init__(self, app, host, port, pool_size, read_timeout=None,
                 bounded=False):
        self._server = _PooledWSGIServer(app, host, port, pool_size,
                                         read_timeout, bounded)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.1},
            name='nova-lite-wsgi-accept', daemon=True)
        self._thread.start()

    def stop(self, timeout):
        """Stop accepting, then wait up to ``timeout`` s for the requests
        in flight (and those accepted but queued); True once none is."""
        deadline = time.monotonic() + timeout
        self._server.shutdown()
        self._server.socket.close()
        server = self._server
        with server._idle:
            while server._busy and time.monotonic() < deadline:
                server._idle.wait(max(0.0, deadline - time.monotonic()))
            drained = not server._busy
        server._pool.shutdown(wait=False)
        return drained


def serve_wsgi(app, host, port, pool_size, read_timeout=None,
               bounded=False):
    """Listen on ``host:port`` (``OSError`` if it cannot) and serve
    ``app`` from a pool of ``pool_size`` native threads; returns the
    server (``port``, ``stop(timeout)``).  ``read_timeout`` closes a
    connection idle that long; ``bounded`` closes connections beyond
    ``pool_size`` at once instead of queueing them."""
    return _NativeWSGIServer(app, host, port, pool_size, read_timeout,
                             bounded)
