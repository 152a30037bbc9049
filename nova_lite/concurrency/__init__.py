"""Concurrency primitives for the backend chosen by ``monkey_patch``.

The eventlet and threading backends differ here and nowhere else; the rest
of nova_lite uses only these names:

- ``spawn(func, *args)``: a green or native thread; the handle has
  ``wait()`` (its result), ``join(timeout)`` (True once finished) and
  ``dead``;
- ``sleep(seconds)``, ``Event``, ``map_concurrently(func, items, n)``;
- ``execute_in_thread(func, *args)``: a blocking call (a hypervisor API)
  in the bounded native thread pool;
- ``call_blocking_io(func, *args)``: a blocking library call (the SQL
  driver) where it cannot stall other work: eventlet's one native I/O thread,
  or the calling thread under threading;
- ``live_threads()``: live greenthreads (eventlet) or threads (threading);
- ``HubQueue(handler)``: items ``put`` from any native thread are handed to
  ``handler`` in one green or native thread;
- ``blocking_sleep``, ``native_timer``, ``native_lock``,
  ``native_thread_id``: for code that runs in native threads (driver calls,
  driver timers);
- ``native_module(name)``: the unpatched standard-library module (``socket``,
  ``select``, ``subprocess``, ``threading``) for I/O in native threads,
  such as the QEMU driver's QMP connections and ``qemu-img`` runs; nothing
  outside this package imports eventlet to get them;
- ``serve_wsgi(app, host, port, pool_size)``: an HTTP server for a WSGI
  app (eventlet's WSGI server, or wsgiref with a native thread pool);
- ``RPC_EXECUTOR``: the oslo.messaging executor of the backend.
"""

from nova_lite import monkey_patch

BACKEND = monkey_patch.BACKEND

if BACKEND == monkey_patch.EVENTLET:
    from nova_lite.concurrency import _green as _impl
else:
    from nova_lite.concurrency import _native as _impl

RPC_EXECUTOR = _impl.RPC_EXECUTOR
spawn = _impl.spawn
sleep = _impl.sleep
Event = _impl.Event
map_concurrently = _impl.map_concurrently
execute_in_thread = _impl.execute_in_thread
call_blocking_io = _impl.call_blocking_io
live_threads = _impl.live_threads
HubQueue = _impl.HubQueue
blocking_sleep = _impl.blocking_sleep
native_timer = _impl.native_timer
native_lock = _impl.native_lock
native_thread_id = _impl.native_thread_id
native_module = _impl.native_module
serve_wsgi = _impl.serve_wsgi
