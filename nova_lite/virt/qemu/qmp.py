"""A small synchronous QMP client for native threads.

One ``QMPClient`` is one connection to one QEMU's QMP unix socket.
``connect`` reads the greeting and negotiates capabilities; from then on a
native reader thread owns the receiving side: it hands every event to
``on_event`` (in the order QEMU sent it, so an event that QEMU emitted
before a reply is handled before that reply is returned) and the reply of
the one command in flight to ``execute``, matched by id.  QMP carries one
command at a time; ``execute`` serializes its callers with its own lock, so
the client is safe whoever calls it (the compute's monitor lock already
serializes the compute's own commands).  When the socket closes (``quit``,
or QEMU killed) the command in flight fails with ``QMPClosed`` and
``on_close(reason)`` is called once, unless ``close()`` closed it.

Everything here blocks its calling thread: it uses the unpatched
``socket`` and ``threading`` modules (``concurrency.native_module``) and
must never run on the eventlet hub; driver calls reach it through
``ThreadPoolDriver``.  ``on_event`` and ``on_close`` run in the reader
thread: they must not call ``execute`` on the same client (the reply they
would wait for is read by the thread they hold).
"""

import itertools
import json

from oslo_log import log as logging

from nova_lite import concurrency

LOG = logging.getLogger(__name__)

_socket = concurrency.native_module('socket')
_threading = concurrency.native_module('threading')


class QMPError(Exception):
    """Base of the QMP client's errors."""


class QMPConnectError(QMPError):
    """The socket cannot be reached or did not greet as QMP."""


class QMPClosed(QMPError):
    """The connection is closed; the reason is the message."""


class QMPTimeout(QMPError):
    """No reply in time (the connection stays usable: a late reply is
    recognised by its id and dropped)."""


class QMPCommandError(QMPError):
    """QEMU answered a command with an error."""

    def __init__(self, command, error_class, desc):
        super().__init__('%s: %s (%s)' % (command, desc, error_class))
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QMPClient:
    """A QMP connection: ``execute`` from any native thread, events to
    ``on_event(message)`` from the reader thread."""

    def __init__(self, path, timeout, on_event=None, on_close=None,
                 name=None):
        self.path = path
        self.timeout = timeout
        self.name = name or path
        self.greeting = None
        self._on_event = on_event
        self._on_close = on_close
        self._sock = None
        self._reader = None
        self._ids = itertools.count(1)
        self._command_lock = _threading.Lock()   # one command on the wire
        self._lock = _threading.Lock()           # the fields below
        self._pending = None
        self._closed = None        # the reason, once closed
        self._close_requested = False

    # -- connection ----------------------------------------------------

    def connect(self, timeout=None):
        """Connect, read the greeting and enter command mode."""
        timeout = self.timeout if timeout is None else timeout
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
            rfile = sock.makefile('rb')
            greeting = self._read_message(rfile)
            if not isinstance(greeting, dict) or 'QMP' not in greeting:
                raise QMPConnectError('%s: not a QMP greeting: %r' % (
                    self.name, greeting))
            sock.sendall(self._encode('qmp_capabilities', None, 0))
            reply = self._read_message(rfile)
            while isinstance(reply, dict) and 'event' in reply:
                reply = self._read_message(rfile)   # none are sent yet
            if not isinstance(reply, dict) or 'return' not in reply:
                raise QMPConnectError('%s: qmp_capabilities failed: %r' % (
                    self.name, reply))
        except (OSError, ValueError) as exc:
            sock.close()
            raise QMPConnectError('%s: %s' % (self.name, exc)) from exc
        except QMPError:
            sock.close()
            raise
        sock.settimeout(None)
        self.greeting = greeting['QMP']
        self._sock = sock
        self._reader = _threading.Thread(
            target=self._read_loop, args=(rfile,), daemon=True,
            name='qmp-%s' % self.name)
        self._reader.start()
        return self

    def close(self):
        """Close the connection; ``on_close`` is not called for it."""
        with self._lock:
            self._close_requested = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        reader = self._reader
        if (reader is not None and
                reader is not _threading.current_thread()):
            reader.join(self.timeout)

    @property
    def closed(self):
        """None while open, else why it closed."""
        return self._closed

    # -- commands ------------------------------------------------------

    def execute(self, command, arguments=None, timeout=None):
        """Run one command; its ``return`` value.

        Raises ``QMPCommandError`` (QEMU's error class and description),
        ``QMPTimeout`` or ``QMPClosed``.
        """
        timeout = self.timeout if timeout is None else timeout
        if not self._command_lock.acquire(timeout=timeout):
            raise QMPTimeout('%s: %s: another command held the monitor for '
                             '%ss' % (self.name, command, timeout))
        try:
            with self._lock:
                if self._closed is not None:
                    raise QMPClosed('%s: %s' % (self.name, self._closed))
                waiter = {'id': next(self._ids), 'reply': None,
                          'done': _threading.Event()}
                self._pending = waiter
            try:
                self._sock.sendall(self._encode(command, arguments,
                                                waiter['id']))
            except OSError as exc:
                self._shut('send failed: %s' % exc)
            if not waiter['done'].wait(timeout):
                with self._lock:
                    if self._pending is waiter:
                        self._pending = None
                raise QMPTimeout('%s: no reply to %s within %ss' % (
                    self.name, command, timeout))
        finally:
            self._command_lock.release()
        reply = waiter['reply']
        if reply is None:
            raise QMPClosed('%s: %s' % (self.name, self._closed))
        if 'error' in reply:
            error = reply['error']
            raise QMPCommandError(command, error.get('class'),
                                  error.get('desc'))
        return reply.get('return')

    # -- internals -----------------------------------------------------

    @staticmethod
    def _encode(command, arguments, command_id):
        message = {'execute': command, 'id': command_id}
        if arguments:
            message['arguments'] = arguments
        return json.dumps(message).encode() + b'\n'

    def _read_message(self, rfile):
        line = rfile.readline()
        if not line:
            raise QMPConnectError('%s: connection closed' % self.name)
        return json.loads(line)

    def _read_loop(self, rfile):
        reason = 'connection closed by QEMU'
        try:
            for line in rfile:
                try:
                    message = json.loads(line)
                except ValueError:
                    LOG.warning('%s: not JSON, ignored: %r', self.name,
                                line[:200])
                    continue
                self._dispatch(message)
        except (OSError, ValueError) as exc:
            reason = 'connection lost: %s' % exc
        finally:
            rfile.close()
            self._shut(reason)

    def _dispatch(self, message):
        if 'event' in message:
            if self._on_event is not None:
                try:
                    self._on_event(message)
                except Exception:  # noqa: BLE001 - the reader must go on
                    LOG.exception('%s: event handler failed for %s',
                                  self.name, message.get('event'))
            return
        with self._lock:
            waiter = self._pending
            if waiter is not None and message.get('id') == waiter['id']:
                self._pending = None
            else:
                waiter = None
        if waiter is None:
            LOG.warning('%s: reply to no command in flight, dropped: %.200r',
                        self.name, message)
            return
        waiter['reply'] = message
        waiter['done'].set()

    def _shut(self, reason):
        """Mark closed, fail the command in flight, tell ``on_close``."""
        with self._lock:
            if self._closed is not None:
                return
            self._closed = reason
            waiter, self._pending = self._pending, None
            requested = self._close_requested
        if waiter is not None:
            waiter['done'].set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        if not requested and self._on_close is not None:
            try:
                self._on_close(reason)
            except Exception:  # noqa: BLE001 - nothing else to tell
                LOG.exception('%s: close handler failed', self.name)
