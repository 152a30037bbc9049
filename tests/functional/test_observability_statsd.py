"""RPC timings to statsd, read from a real UDP socket: the daemon's server
timers and the sending process's client timers and counters."""

import collections
import secrets
import socket
import time

import oslo_messaging as messaging
import pytest

from nova_lite import baserpc
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import context
from nova_lite import exception
from nova_lite.metrics import rpc_timing
from nova_lite import rpc
from tests.functional import test_observability_rpc as observability


class StatsdListener:
    """A UDP socket on loopback that keeps every statsd line it gets, by
    sender (``(host, port)`` of the sending socket)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.lines = []     # (sender, name, value, type, rate)

    def receive_until(self, predicate, timeout=20.0, what='statsd lines'):
        """Read datagrams until ``predicate(self)`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('no %s within %ss; got:\n%s' % (
                    what, timeout, '\n'.join(map(str, self.lines))))
            self.sock.settimeout(left)
            try:
                data, sender = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            for line in data.decode('utf-8').splitlines():
                self.lines.append((sender,) + parse(line))

    def count(self, name, kind, sender=None):
        return sum(1 for line in self.lines
                   if line[1] == name and line[3] == kind and
                   (sender is None or line[0] == sender))

    def sender_of(self, name):
        return next(line[0] for line in self.lines if line[1] == name)


def parse(line):
    """``name:value|type[|@rate]`` -> (name, value, type, rate)."""
    name, _, rest = line.partition(':')
    fields = rest.split('|')
    rate = 1.0
    if len(fields) > 2:
        assert fields[2].startswith('@'), line
        rate = float(fields[2][1:])
    return name, float(fields[0]), fields[1], rate


@pytest.fixture
def statsd_listener():
    listener = StatsdListener()
    yield listener
    listener.sock.close()


@pytest.fixture
def statsd_conf(conf, statsd_listener):
    """statsd on for this process (the sender) and its daemons."""
    prefix = 'nltest%s' % secrets.token_hex(3)
    values = {'enabled': True, 'host': '127.0.0.1',
              'port': statsd_listener.port, 'prefix': prefix}
    for name, value in values.items():
        conf.set_override(name, value, group='statsd')
    rpc.init(conf)
    yield values
    rpc.cleanup()
    for name in values:
        conf.clear_override(name, group='statsd')
    rpc_timing.configure(conf)      # statsd off again in this process


def test_rpc_timings_to_statsd(factory, db, conf, statsd_conf,
                               statsd_listener):
    prefix = statsd_conf['prefix']
    observability.start_daemon(
        factory, db, 'nova-lite-compute', 'cpu1',
        dict(observability.QUIET_HEALTH, statsd=statsd_conf))
    ctxt = context.get_admin_context()
    client = baserpc.BaseRPCAPI(conf, 'compute')
    for n in range(3):
        client.ping(ctxt, n, host='cpu1')
    client.client.prepare(server='cpu1').cast(ctxt, 'ping', arg='cast')
    for _ in range(2):
        with pytest.raises(exception.InstanceNotFound):
            compute_rpcapi.ComputeRPCAPI(conf).get_info(ctxt, 'cpu1', 'nope')
    with pytest.raises(messaging.MessagingTimeout):
        client.ping(ctxt, 'lost', host='no-such-host', timeout=1)

    server = '%s.rpc.server.compute.' % prefix
    sent = '%s.rpc.client.compute.' % prefix
    expected_server = {  # name: (type, count), from the daemon
        server + 'get_info.queue': ('ms', 2),
        server + 'get_info.executor_wait': ('ms', 2),
        server + 'get_info.handling': ('ms', 2),
        server + 'get_info.error': ('c', 2),
    }
    expected_client = {  # from this process
        sent + 'ping.call': ('ms', 4),       # 3 answered, 1 timed out
        sent + 'ping.cast': ('ms', 1),
        sent + 'ping.timeout': ('c', 1),
        sent + 'get_info.call': ('ms', 2),
        sent + 'get_info.error': ('c', 2),
    }

    def _all_there(listener):
        names = {line[1] for line in listener.lines}
        if not set(expected_server) <= names:
            return False
        daemon = listener.sender_of(server + 'get_info.handling')
        counts = collections.Counter(
            (line[1], line[0] == daemon) for line in listener.lines)
        return (all(counts[name, True] >= count for name, (_, count)
                    in expected_server.items()) and
                all(counts[name, False] >= count for name, (_, count)
                    in expected_client.items()) and
                # The 3 calls and the cast of ping, on the server.
                counts[server + 'ping.handling', True] >= 4)

    statsd_listener.receive_until(_all_there, what='every timer')
    daemon = statsd_listener.sender_of(server + 'get_info.handling')
    for name, (kind, count) in expected_server.items():
        assert statsd_listener.count(name, kind, daemon) == count, name
    mine = [line for line in statsd_listener.lines if line[0] != daemon]
    for name, (kind, count) in expected_client.items():
        assert sum(1 for line in mine
                   if line[1] == name and line[3] == kind) == count, name
    # Only rpc.client lines come from this process, and every value is a
    # non-negative number at rate 1 ([statsd] rpc_sample_rate).
    assert {line[1].rpartition('.')[0] for line in mine} <= {
        sent + 'ping', sent + 'get_info'}
    for _, name, value, _, rate in statsd_listener.lines:
        assert value >= 0 and rate == 1.0, name
    for phase in ('queue', 'executor_wait', 'handling'):
        assert statsd_listener.count(server + 'ping.' + phase, 'ms',
                                     daemon) >= 4
