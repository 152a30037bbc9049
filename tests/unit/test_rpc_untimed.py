"""rpc.init(conf, timed=False), the RPC benchmark's baseline (fake://):
plain oslo.messaging clients and servers, no stamps, nothing observed;
the default times every message."""

import oslo_messaging as messaging
import prometheus_client
import pytest

from nova_lite import baserpc
from nova_lite import context
from nova_lite import manager
from nova_lite.metrics import stamps
from nova_lite import rpc


@pytest.fixture
def rpc_timed(request, conf):
    rpc.cleanup()
    rpc.init(conf, timed=request.param)
    yield request.param
    rpc.cleanup()


def _count(name, topic):
    value = prometheus_client.REGISTRY.get_sample_value(
        name + '_count', {'topic': topic, 'method': 'ping', 'kind': 'call',
                          'outcome': 'ok'})
    return value or 0.0


def _handled(topic):
    return _count('nova_lite_rpc_server_handling_seconds', topic)


def _sent(topic):
    return _count('nova_lite_rpc_client_seconds', topic)


@pytest.mark.parametrize('rpc_timed', [True, False], indirect=True)
def test_ping_is_timed_only_when_timed(rpc_timed, factory, conf):
    topic = 'untimed_%s' % rpc_timed
    factory.start_service(topic, host='h1', manager=manager.Manager)
    handled, sent = _handled(topic), _sent(topic)
    api = baserpc.BaseRPCAPI(conf, topic)
    reply = api.ping(context.get_admin_context(), 'x', host='h1')
    assert reply['arg'] == 'x'
    # The server observes before it replies: its count is final here.
    assert _handled(topic) - handled == (1 if rpc_timed else 0)
    assert _sent(topic) - sent == (1 if rpc_timed else 0)


@pytest.mark.parametrize('rpc_timed', [True, False], indirect=True)
def test_clients_servers_and_stamps(rpc_timed, conf):
    target = messaging.Target(topic='t', server='h1')
    client = rpc.get_client(target)
    server = rpc.get_server(target, [baserpc.BaseAPI('h1', 'b', '1.0')])
    serializer = client.serializer if not rpc_timed else (
        client._client.serializer)
    values = serializer.serialize_context(context.get_admin_context())
    assert (stamps.CONTEXT_KEY in values) is rpc_timed
    assert isinstance(client, rpc.TimedClient) is rpc_timed
    assert isinstance(server, rpc.TimedRPCServer) is rpc_timed
    assert isinstance(server, rpc.CountingRPCServer)
    assert isinstance(server.dispatcher, rpc.TimedDispatcher) is rpc_timed


def test_cleanup_restores_timing(conf):
    rpc.cleanup()
    rpc.init(conf, timed=False)
    rpc.cleanup()
    rpc.init(conf)
    try:
        client = rpc.get_client(messaging.Target(topic='t'))
        assert isinstance(client, rpc.TimedClient)
    finally:
        rpc.cleanup()
