"""The QMP client against a fake QMP server on a real unix socket, and the
[qemu] option checks."""

import json
import os
import shutil
import tempfile

import pytest

from nova_lite import concurrency
from nova_lite import exception
from nova_lite import virt
from nova_lite.conf import qemu as qemu_conf
from nova_lite.testing import waiters
from nova_lite.virt.qemu import qmp

_socket = concurrency.native_module('socket')
_threading = concurrency.native_module('threading')

GREETING = {'QMP': {'version': {'qemu': {'major': 7, 'minor': 2,
                                         'micro': 0}}, 'capabilities': []}}
TIMEOUT = 5.0


class FakeQMP:
    """One QMP peer in a native thread: greets, checks qmp_capabilities,
    then runs ``script(self)`` (which reads commands and writes replies
    and events)."""

    def __init__(self, path, script, greeting=GREETING):
        self.path = path
        self.script = script
        self.greeting = greeting
        self.commands = []
        self.error = None
        self._listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._listener.settimeout(TIMEOUT)
        self._conn = None
        self._thread = _threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        try:
            self._conn, _ = self._listener.accept()
            self._conn.settimeout(TIMEOUT)
            self._rfile = self._conn.makefile('rb')
            self.send(self.greeting)
            if 'QMP' not in self.greeting:
                return
            command = self.recv()
            assert command['execute'] == 'qmp_capabilities', command
            self.reply(command, {})
            self.script(self)
        except Exception as exc:  # noqa: BLE001 - reported by join()
            self.error = exc
        finally:
            if self._conn is not None:
                # Shut down: the reader's makefile holds the socket open.
                try:
                    self._conn.shutdown(_socket.SHUT_RDWR)
                except OSError:
                    pass
                self._conn.close()
            self._listener.close()

    def send(self, message):
        self._conn.sendall(json.dumps(message).encode() + b'\r\n')

    def recv(self):
        line = self._rfile.readline()
        if not line:
            raise EOFError('client closed')
        command = json.loads(line)
        self.commands.append(command)
        return command

    def reply(self, command, value, **extra):
        self.send(dict({'return': value, 'id': command['id']}, **extra))

    def event(self, name, **data):
        self.send({'event': name, 'data': data,
                   'timestamp': {'seconds': 0, 'microseconds': 0}})

    def join(self):
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), 'fake QMP peer still running'
        if self.error is not None:
            raise self.error


@pytest.fixture
def sock_path():
    # A short path: unix socket paths are limited to 107 bytes.
    directory = tempfile.mkdtemp(prefix='nlqmp')
    yield os.path.join(directory, 'qmp.sock')
    shutil.rmtree(directory, ignore_errors=True)


class Recorder:
    def __init__(self):
        self.events = []
        self.closes = []
        self.threads = set()

    def on_event(self, message):
        self.threads.add(concurrency.native_thread_id())
        self.events.append(message)

    def on_close(self, reason):
        self.closes.append(reason)


def _client(path, recorder=None, timeout=TIMEOUT):
    recorder = recorder or Recorder()
    return qmp.QMPClient(path, timeout, on_event=recorder.on_event,
                         on_close=recorder.on_close).connect()


def test_greeting_and_capabilities(sock_path):
    peer = FakeQMP(sock_path, lambda peer: peer.reply(peer.recv(),
                                                      {'status': 'running'}))
    client = _client(sock_path)
    assert client.greeting['version']['qemu']['major'] == 7
    assert client.execute('query-status') == {'status': 'running'}
    peer.join()
    client.close()
    assert peer.commands[0] == {'execute': 'qmp_capabilities', 'id': 0}
    assert peer.commands[1]['execute'] == 'query-status'
    assert 'arguments' not in peer.commands[1]


def test_not_a_qmp_greeting_is_refused(sock_path):
    peer = FakeQMP(sock_path, None, greeting={'hello': 'world'})
    with pytest.raises(qmp.QMPConnectError, match='not a QMP greeting'):
        _client(sock_path)
    peer.join()


def test_nothing_listening_is_a_connect_error(sock_path):
    with pytest.raises(qmp.QMPConnectError):
        _client(sock_path)


def test_reply_matched_by_id_and_events_come_first_in_order(sock_path):
    def script(peer):
        command = peer.recv()
        assert command['arguments'] == {'device': 'vda'}
        peer.event('JOB_STATUS_CHANGE', id='vda', status='created')
        peer.send({'return': 'stale', 'id': command['id'] + 100})
        peer.event('JOB_STATUS_CHANGE', id='vda', status='running')
        peer.reply(command, {})
        peer.event('BLOCK_JOB_COMPLETED', device='vda')
        peer.reply(peer.recv(), [])

    peer = FakeQMP(sock_path, script)
    recorder = Recorder()
    client = _client(sock_path, recorder)
    assert client.execute('block-stream', {'device': 'vda'}) == {}
    # Events QEMU sent before the reply were handed over before it.
    assert [e['data']['status'] for e in recorder.events[:2]] == [
        'created', 'running']
    assert client.execute('query-block-jobs') == []
    peer.join()
    client.close()
    assert [e['event'] for e in recorder.events] == [
        'JOB_STATUS_CHANGE', 'JOB_STATUS_CHANGE', 'BLOCK_JOB_COMPLETED']
    # Events run in the client's own native reader thread.
    assert recorder.threads and (concurrency.native_thread_id()
                                 not in recorder.threads)


def test_error_reply_is_a_command_error(sock_path):
    def script(peer):
        command = peer.recv()
        peer.send({'error': {'class': 'GenericError',
                             'desc': 'cannot commit an image into itself'},
                   'id': command['id']})

    peer = FakeQMP(sock_path, script)
    client = _client(sock_path)
    with pytest.raises(qmp.QMPCommandError) as err:
        client.execute('block-commit', {'device': 'vda'})
    assert err.value.error_class == 'GenericError'
    assert 'into itself' in str(err.value)
    peer.join()
    client.close()


def test_socket_closed_fails_the_command_and_calls_on_close(sock_path):
    def script(peer):
        peer.recv()
        peer.event('SHUTDOWN', guest=False, reason='host-qmp-quit')
        # ... and the connection closes without a reply (QEMU killed).

    peer = FakeQMP(sock_path, script)
    recorder = Recorder()
    client = _client(sock_path, recorder)
    with pytest.raises(qmp.QMPClosed):
        client.execute('quit')
    peer.join()
    assert client.closed
    with pytest.raises(qmp.QMPClosed):
        client.execute('query-status')
    # The reader thread fails the command first, then calls on_close.
    waiters.wait_for(lambda: recorder.closes, timeout=10,
                     what='on_close after the socket closed')
    assert len(recorder.closes) == 1
    assert recorder.events[0]['event'] == 'SHUTDOWN'


def test_close_by_the_client_does_not_call_on_close(sock_path):
    def script(peer):
        with pytest.raises(EOFError):
            peer.recv()

    peer = FakeQMP(sock_path, script)
    recorder = Recorder()
    client = _client(sock_path, recorder)
    client.close()
    peer.join()
    assert recorder.closes == []
    with pytest.raises(qmp.QMPClosed):
        client.execute('query-status')


def test_timeout_then_the_late_reply_is_dropped(sock_path):
    go_on = _threading.Event()

    def script(peer):
        late = peer.recv()
        go_on.wait(TIMEOUT)
        peer.reply(late, 'late')           # after the client gave up
        peer.reply(peer.recv(), 'fresh')

    peer = FakeQMP(sock_path, script)
    client = _client(sock_path)
    with pytest.raises(qmp.QMPTimeout):
        client.execute('query-status', timeout=0.1)
    go_on.set()
    assert client.execute('query-status') == 'fresh'
    peer.join()
    client.close()


def test_one_command_on_the_wire_at_a_time(sock_path):
    threads = 8
    in_flight = []

    def script(peer):
        for _ in range(threads):
            command = peer.recv()
            in_flight.append(command['id'])
            # Nothing else may arrive before this reply: probe briefly.
            peer._conn.settimeout(0.02)
            try:
                extra = peer._conn.recv(1, _socket.MSG_PEEK)
            except _socket.timeout:
                extra = b''
            peer._conn.settimeout(TIMEOUT)
            assert not extra, 'a second command arrived before the reply'
            peer.reply(command, command['arguments']['n'])

    peer = FakeQMP(sock_path, script)
    client = _client(sock_path)
    results = {}

    def call(n):
        results[n] = client.execute('echo', {'n': n})

    workers = [_threading.Thread(target=call, args=(n,))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    peer.join()
    client.close()
    assert results == {n: n for n in range(threads)}
    assert len(set(in_flight)) == threads


def test_the_socket_is_not_eventlets(sock_path):
    """QMP I/O blocks its native thread, never a hub, on both backends."""
    peer = FakeQMP(sock_path, lambda peer: None)
    client = _client(sock_path)
    assert 'eventlet' not in type(client._sock).__module__
    assert 'eventlet' not in type(client._reader).__module__
    client.close()
    peer.join()


# -- [qemu] options -------------------------------------------------------

@pytest.mark.parametrize('value', ['', '49152', '49152-49215', 'a:b',
                                   '49215:49152', '80:90', '50000:50000',
                                   '60000:70000'])
def test_bad_port_range_is_one_line_config_error(value):
    with pytest.raises(exception.ConfigError) as err:
        qemu_conf.port_range(value)
    assert 'migration_port_range' in str(err.value)
    assert '\n' not in str(err.value)


def test_port_range():
    assert qemu_conf.port_range('49152:49215') == (49152, 49215)


def test_missing_binary_is_config_error_at_driver_load(conf):
    conf.set_override('driver', 'qemu', group='compute')
    conf.set_override('binary', 'qemu-system-nonesuch', group='qemu')
    with pytest.raises(exception.ConfigError) as err:
        virt.load_driver(conf, 'h1')
    assert "'qemu-system-nonesuch'" in str(err.value)


def test_bad_port_range_is_config_error_at_driver_load(conf):
    conf.set_override('driver', 'qemu', group='compute')
    conf.set_override('migration_port_range', '1:2', group='qemu')
    with pytest.raises(exception.ConfigError, match='migration_port_range'):
        virt.load_driver(conf, 'h1')


def test_instances_path_follows_state_path_at_runtime(conf):
    assert conf.qemu.instances_path == os.path.join(conf.state_path,
                                                    'instances')


def test_native_threads_can_log_at_the_same_time():
    """Driver threads (pool calls, QMP readers) log; under eventlet a
    green handler lock contended by two native threads would hang them."""
    import logging

    handler = logging.StreamHandler(open(os.devnull, 'w'))
    logger = logging.getLogger('nova_lite.test_native_logging')
    logger.addHandler(handler)
    logger.propagate = False
    done = []

    def log_a_lot(name):
        for line in range(3000):
            logger.warning('%s %d', name, line)
        done.append(name)

    workers = [_threading.Thread(target=log_a_lot, args=(name,),
                                 daemon=True) for name in ('a', 'b')]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(TIMEOUT)
        assert sorted(done) == ['a', 'b'], 'a logging thread hung'
    finally:
        logger.removeHandler(handler)
        handler.stream.close()
