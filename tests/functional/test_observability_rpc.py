"""Every RPC timed, on real daemons over a real broker: per topic, method
and kind on the server (queue, executor_wait, handling) and on the client,
as each daemon's /metrics and the sending process's registry show them."""

import uuid

from oslo_config import cfg
import oslo_messaging as messaging
import prometheus_client
import pytest

from nova_lite import baserpc
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite import exception
from nova_lite.metrics import registry
from nova_lite.testing import scrape
from nova_lite.testing import waiters

PHASES = ('nova_lite_rpc_server_queue_seconds',
          'nova_lite_rpc_server_executor_wait_seconds',
          'nova_lite_rpc_server_handling_seconds')
# One self round trip at start-up, none after: exact counts of ping.
QUIET_HEALTH = {'metrics': {'health_interval': 3600}}


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def start_daemon(factory, db, binary, host, extra=None):
    """Start a daemon; wait until it is up and its first self round trip
    answered (/readyz); returns it and its metrics address."""
    daemon = factory.start_daemon(binary, host, extra=extra)
    try:
        row = waiters.wait_for_service(db, host, binary, timeout=30)
        address = row['metrics_address']
        waiters.wait_for(lambda: scrape.get(address, '/readyz').status == 200,
                         timeout=30, what='%s ready' % binary)
    except waiters.WaitTimeout:
        pytest.fail('%s never came up; its log:\n%s' % (
            binary, daemon.log_text()[-3000:]))
    return daemon, address


def client_count(topic, method, kind, outcome):
    """This process's client-side count (prometheus default registry)."""
    return prometheus_client.REGISTRY.get_sample_value(
        'nova_lite_rpc_client_seconds_count',
        dict(topic=topic, method=method, kind=kind, outcome=outcome)) or 0.0


def wait_handled(address, count, **labels):
    """Wait until ``address`` has handled ``count`` messages matching
    ``labels`` (any outcome); returns that scrape."""
    def _check():
        metrics = scrape.metrics(address)
        got = metrics.value('nova_lite_rpc_server_handling_seconds_count',
                            **labels)
        assert got <= count, 'more handled than sent: %s > %s (%s)' % (
            got, count, labels)
        return metrics if got == count else None
    return waiters.wait_for(_check, timeout=20, what='%d handled %s on %s' % (
        count, labels, address))


def assert_phases(metrics, count, topic, method, kind, outcome='ok'):
    """Each phase counted ``count`` times for (topic, method, kind)."""
    labels = dict(topic=topic, method=method, kind=kind)
    for name in PHASES:
        extra = {'outcome': outcome} if 'handling' in name else {}
        assert metrics.value(name + '_count', **labels, **extra) == count, (
            name, labels, extra)
    assert metrics.value('nova_lite_rpc_unstamped_total', topic=topic,
                         method=method) == 0


def test_casts_and_calls_timed_per_method(factory, db, conf, ctxt,
                                          client_rpc):
    _, conductor = start_daemon(factory, db, 'nova-lite-conductor', 'ctl1')
    _, scheduler = start_daemon(factory, db, 'nova-lite-scheduler', 'ctl1')
    _, compute = start_daemon(factory, db, 'nova-lite-compute', 'cpu1',
                              QUIET_HEALTH)
    builds_before = client_count('conductor', 'build_instance', 'cast', 'ok')

    # Real traffic: build_instance (cast) -> select_host (call) -> spawn
    # (cast), across three processes.
    uuids = [str(uuid.uuid4()) for _ in range(2)]
    for instance_uuid in uuids:
        conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
            ctxt, instance_uuid)
    for instance_uuid in uuids:
        waiters.wait_for(
            lambda: db.instance_get(instance_uuid)['vm_state'] == 'active',
            timeout=30, what='instance %s active' % instance_uuid)
    assert client_count('conductor', 'build_instance', 'cast',
                        'ok') - builds_before == 2
    on_conductor = wait_handled(conductor, 2, topic='conductor',
                                method='build_instance')
    assert_phases(on_conductor, 2, 'conductor', 'build_instance', 'cast')
    # The conductor is a client too: its own sends, on its own /metrics.
    assert on_conductor.value('nova_lite_rpc_client_seconds_count',
                              topic='scheduler', method='select_host',
                              kind='call', outcome='ok') == 2
    assert on_conductor.value('nova_lite_rpc_client_seconds_count',
                              topic='compute', method='spawn', kind='cast',
                              outcome='ok') == 2
    assert_phases(wait_handled(scheduler, 2, topic='scheduler',
                               method='select_host'),
                  2, 'scheduler', 'select_host', 'call')
    assert_phases(wait_handled(compute, 2, topic='compute', method='spawn'),
                  2, 'compute', 'spawn', 'cast')

    # baseapi on the compute: 3 calls and 2 casts of ping, beside the
    # start-up self round trip (a call) already counted.
    before = scrape.metrics(compute)
    self_pings = before.value('nova_lite_rpc_server_handling_seconds_count',
                              topic='compute', method='ping', kind='call')
    client = baserpc.BaseRPCAPI(conf, 'compute')
    for n in range(3):
        assert client.ping(ctxt, n, host='cpu1')['arg'] == n
    for n in range(2):
        client.client.prepare(server='cpu1').cast(ctxt, 'ping', arg=n)
    after = wait_handled(compute, self_pings + 5, topic='compute',
                         method='ping')
    assert_phases(after, self_pings + 3, 'compute', 'ping', 'call')
    assert_phases(after, 2, 'compute', 'ping', 'cast')

    # An exception's outcome is its class, on both sides.
    not_found_before = client_count('compute', 'get_info', 'call',
                                    'InstanceNotFound')
    with pytest.raises(exception.InstanceNotFound):
        compute_rpcapi.ComputeRPCAPI(conf).get_info(ctxt, 'cpu1', 'nope')
    assert client_count('compute', 'get_info', 'call',
                        'InstanceNotFound') - not_found_before == 1
    metrics = wait_handled(compute, 1, topic='compute', method='get_info')
    assert_phases(metrics, 1, 'compute', 'get_info', 'call',
                  outcome='InstanceNotFound')

    # Undocumented names (unknown, private, manager plumbing) are one
    # label: _unknown.
    raw = compute_rpcapi.ComputeRPCAPI(conf).client.prepare(server='cpu1')
    names = ('no_such_method_%s' % uuid.uuid4().hex[:6], '_fail',
             'init_host')
    for name in names:
        sent_before = client_count('compute', name, 'call', 'RemoteError')
        with pytest.raises(messaging.RemoteError) as err:
            raw.call(ctxt, name)
        assert err.value.exc_type == 'NoSuchMethod'
        # The caller names its own methods; what it got is a RemoteError.
        assert client_count('compute', name, 'call',
                            'RemoteError') - sent_before == 1
    metrics = wait_handled(compute, 3, topic='compute',
                           method=registry.UNKNOWN_METHOD)
    assert_phases(metrics, 3, 'compute', registry.UNKNOWN_METHOD, 'call',
                  outcome='NoSuchMethod')
    documented = {'spawn', 'ping', 'get_info', registry.UNKNOWN_METHOD}
    for name in PHASES:
        assert {labels['method'] for labels in metrics.labels(
            name + '_count')} == documented, name

    # A call that nobody answers: outcome timeout, on the client only.
    timeouts_before = client_count('compute', 'ping', 'call', 'timeout')
    with pytest.raises(messaging.MessagingTimeout):
        client.ping(ctxt, 'lost', host='no-such-host', timeout=1)
    assert client_count('compute', 'ping', 'call',
                        'timeout') - timeouts_before == 1


def test_foreign_client_works_and_is_counted_unstamped(factory, db, rabbit):
    """As openstack-helm's probe reaches Nova: plain oslo.messaging, no
    nova_lite serializer (so no stamp), the control exchange, topic +
    server, namespace baseapi."""
    _, compute = start_daemon(factory, db, 'nova-lite-compute', 'cpu1',
                              QUIET_HEALTH)
    before = scrape.metrics(compute)
    labels = dict(topic='compute', method='ping', kind='call')
    # oslo.messaging registers some of its options on the global CONF
    # only (its tracing), so a client of its own uses that, like
    # openstack-helm's probe; the URL and the exchange are given here.
    transport = messaging.get_rpc_transport(cfg.CONF, url=rabbit.url)
    try:
        client = messaging.get_rpc_client(
            transport, messaging.Target(exchange='nova_lite', topic='compute',
                                        server='cpu1', namespace='baseapi',
                                        version='1.0'), timeout=10)
        reply = client.call({}, 'ping', arg='from afar')
    finally:
        transport.cleanup()
    assert reply['arg'] == 'from afar' and reply['host'] == 'cpu1'
    after = wait_handled(
        compute, before.value('nova_lite_rpc_server_handling_seconds_count',
                              **labels) + 1, **labels)
    assert after.value('nova_lite_rpc_unstamped_total', topic='compute',
                       method='ping') == 1
    # No stamp, no queue time; the other phases are measured as usual.
    queue = 'nova_lite_rpc_server_queue_seconds_count'
    assert after.value(queue, **labels) == before.value(queue, **labels)
    wait = 'nova_lite_rpc_server_executor_wait_seconds_count'
    assert after.value(wait, **labels) == before.value(wait, **labels) + 1
