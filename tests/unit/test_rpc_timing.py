"""Every RPC timed per method and phase, on the fake:// transport."""

import socket

import oslo_messaging as messaging
import prometheus_client
import pytest

from nova_lite import baserpc
from nova_lite import context
from nova_lite import exception
from nova_lite import manager
from nova_lite.metrics import rpc_timing
from nova_lite.metrics import stamps
from nova_lite import rpc
from nova_lite.testing import waiters


def _value(name, **labels):
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


class _Counter:
    """Reads a metric's value now, and how much it grew since."""

    def __init__(self, name, **labels):
        self.name, self.labels = name, labels
        self.start = _value(name, **labels)

    @property
    def delta(self):
        return _value(self.name, **self.labels) - self.start


class _EchoManager(manager.Manager):
    target = messaging.Target(version='1.0')
    casts = []

    def echo(self, ctxt, value):
        """A documented call."""
        return value

    def note(self, ctxt, value):
        """A documented cast."""
        type(self).casts.append(value)

    def fail(self, ctxt):
        """A documented call that raises a named error."""
        raise exception.InvalidInput(reason='on purpose')


def _client(conf, topic='timed'):
    return rpc.get_client(messaging.Target(topic=topic, version='1.0'),
                          timeout=5)


def test_call_and_cast_are_timed_on_both_sides(factory, conf):
    factory.start_service('timed', host='h1', manager=_EchoManager)
    ctxt = context.get_admin_context()
    server = dict(topic='timed', method='echo', kind='call')
    handled = _Counter('nova_lite_rpc_server_handling_seconds_count',
                       outcome='ok', **server)
    queued = _Counter('nova_lite_rpc_server_queue_seconds_count', **server)
    waited = _Counter('nova_lite_rpc_server_executor_wait_seconds_count',
                      **server)
    called = _Counter('nova_lite_rpc_client_seconds_count', outcome='ok',
                      **server)
    cast = dict(topic='timed', method='note', kind='cast')
    cast_handled = _Counter('nova_lite_rpc_server_handling_seconds_count',
                            outcome='ok', **cast)
    cast_sent = _Counter('nova_lite_rpc_client_seconds_count', outcome='ok',
                         **cast)

    client = _client(conf)
    for value in range(3):
        assert client.prepare(server='h1').call(ctxt, 'echo',
                                                value=value) == value
    _EchoManager.casts = []
    client.prepare(server='h1').cast(ctxt, 'note', value='x')
    waiters.wait_for(lambda: _EchoManager.casts == ['x'], timeout=10,
                       what='the cast handled')
    waiters.wait_for(lambda: cast_handled.delta == 1, timeout=10,
                       what='the cast timed')

    assert handled.delta == queued.delta == waited.delta == 3
    assert called.delta == 3
    assert cast_sent.delta == 1


def test_outcome_is_the_exception_class(factory, conf):
    factory.start_service('timed', host='h1', manager=_EchoManager)
    failed = _Counter('nova_lite_rpc_server_handling_seconds_count',
                      topic='timed', method='fail', kind='call',
                      outcome='InvalidInput')
    client_failed = _Counter('nova_lite_rpc_client_seconds_count',
                             topic='timed', method='fail', kind='call',
                             outcome='InvalidInput')
    with pytest.raises(exception.InvalidInput):
        _client(conf).prepare(server='h1').call(
            context.get_admin_context(), 'fail')
    assert failed.delta == 1
    assert client_failed.delta == 1


def test_undocumented_methods_are_one_label(factory, conf):
    factory.start_service('timed', host='h1', manager=_EchoManager)
    unknown = _Counter('nova_lite_rpc_server_handling_seconds_count',
                       topic='timed', method='_unknown', kind='call',
                       outcome='NoSuchMethod')
    client = _client(conf).prepare(server='h1')
    for name in ('no_such_method', 'init_host', '_private'):
        with pytest.raises(Exception):
            client.call(context.get_admin_context(), name)
    # Plumbing a manager has but RPC may not reach is no label of its own.
    assert _value('nova_lite_rpc_server_handling_seconds_count',
                  topic='timed', method='init_host', kind='call',
                  outcome='NoSuchMethod') == 0
    assert unknown.delta == 3


def test_baseapi_methods_are_labelled_on_the_service_topic(factory, conf):
    factory.start_service('timed', host='h1', manager=_EchoManager)
    pinged = _Counter('nova_lite_rpc_server_handling_seconds_count',
                      topic='timed', method='ping', kind='call',
                      outcome='ok')
    baserpc.BaseRPCAPI(conf, 'timed').ping(context.get_admin_context(), 1,
                                           host='h1')
    assert pinged.delta == 1


def test_unstamped_message_is_counted_not_queued(factory, conf):
    """A foreign client (no nova_lite serializer, no stamp) still works."""
    factory.start_service('timed', host='h1', manager=_EchoManager)
    labels = dict(topic='timed', method='echo')
    unstamped = _Counter('nova_lite_rpc_unstamped_total', **labels)
    queued = _Counter('nova_lite_rpc_server_queue_seconds_count',
                      kind='call', **labels)
    foreign = messaging.get_rpc_client(
        rpc.TRANSPORT, messaging.Target(topic='timed', server='h1'),
        timeout=5)
    assert foreign.call({}, 'echo', value=7) == 7
    assert unstamped.delta == 1
    assert queued.delta == 0


def test_client_timeout_outcome(factory, conf):
    factory.start_service('timed', host='h1', manager=_EchoManager)
    timed_out = _Counter('nova_lite_rpc_client_seconds_count',
                         topic='nobody', method='echo', kind='call',
                         outcome='timeout')
    with pytest.raises(messaging.MessagingTimeout):
        rpc.get_client(messaging.Target(topic='nobody'), timeout=0.2).call(
            context.get_admin_context(), 'echo', value=1)
    assert timed_out.delta == 1


def test_the_stamp_rides_in_the_context():
    stamps.configure('sender-host')
    stamps.set_own_offset(0.25)
    try:
        values = rpc.RequestContextSerializer().serialize_context(
            context.get_admin_context())
        stamp = values[stamps.CONTEXT_KEY]
        assert stamp['host'] == 'sender-host'
        assert stamp['offset'] == 0.25
        # A receiver ignores it: the context it rebuilds is an ordinary one.
        assert rpc.RequestContextSerializer().deserialize_context(
            values).request_id == values['request_id']
    finally:
        stamps.set_own_offset(None)


@pytest.mark.parametrize('sender, receiver, sent, received, expected', [
    # Same clock, no offsets: the plain difference.
    (None, None, 100.0, 100.5, (0.5, False)),
    # The sender's clock runs 2 s ahead of the reference: its stamp is
    # 2 s late on the reference's scale.
    (2.0, None, 102.0, 100.5, (0.5, False)),
    # The receiver's runs 1 s ahead.
    (None, 1.0, 100.0, 101.5, (0.5, False)),
    # Still negative after the correction: clamped to 0 and counted.
    (None, None, 100.0, 99.0, (0.0, True)),
])
def test_queue_time_corrects_both_offsets(sender, receiver, sent, received,
                                          expected):
    stamps.set_own_offset(receiver)
    try:
        stamp = {'sent_at': sent, 'host': 'a', 'offset': sender}
        value, skewed = stamps.queue_seconds(stamp, received)
        assert (round(value, 6), skewed) == expected
    finally:
        stamps.set_own_offset(None)


@pytest.mark.parametrize('stamp', [None, {}, {'sent_at': 'soon'}, 'x',
                                   {'sent_at': None}])
def test_a_malformed_stamp_is_unstamped(stamp):
    assert stamps.queue_seconds(stamp, 100.0) == (None, False)


def test_clock_skew_is_counted_and_observed_as_zero():
    skewed = _Counter('nova_lite_rpc_clock_skew_total', topic='t',
                      method='m')
    zero = _Counter('nova_lite_rpc_server_queue_seconds_bucket', topic='t',
                    method='m', kind='cast', le='0.0005')
    rpc_timing.observe_server('t', 'm', 'cast', 0.0, 0.001, 0.002, 'ok',
                              skewed=True)
    assert skewed.delta == 1
    assert zero.delta == 1


def test_statsd_gets_the_rpc_timings(conf):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(('127.0.0.1', 0))
    listener.settimeout(5)
    conf.set_override('enabled', True, group='statsd')
    conf.set_override('port', listener.getsockname()[1], group='statsd')
    rpc_timing.configure(conf)
    try:
        rpc_timing.observe_server('compute', 'spawn', 'cast', 0.010, 0.002,
                                  0.5, 'InstanceNotFound')
        rpc_timing.observe_client('compute', 'get_stats', 'call', 5.0,
                                  'timeout')
        lines = []
        while len(lines) < 6:
            lines += listener.recv(65535).decode().splitlines()
    finally:
        conf.clear_override('enabled', group='statsd')
        conf.clear_override('port', group='statsd')
        rpc_timing.configure(conf)
        listener.close()
    assert sorted(lines) == sorted([
        'nova_lite.rpc.server.compute.spawn.queue:10.000000|ms',
        'nova_lite.rpc.server.compute.spawn.executor_wait:2.000000|ms',
        'nova_lite.rpc.server.compute.spawn.handling:500.000000|ms',
        'nova_lite.rpc.server.compute.spawn.error:1|c',
        'nova_lite.rpc.client.compute.get_stats.call:5000.000000|ms',
        'nova_lite.rpc.client.compute.get_stats.timeout:1|c',
    ])
