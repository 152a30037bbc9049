"""The sweep of a cloud: inflight where a service answers it, else ping;
the service list from one injectable place; what each sample records.

A "Nova-like" service here is Nova's own ``baseapi`` endpoint, as Nova 34
serves it (nova/baserpc.py): namespace ``baseapi`` 1.1, ``ping(arg)``
answering ``{'service': topic, 'arg': arg}``, and no ``inflight``.
"""

import datetime
import json

import oslo_messaging as messaging
import pytest

from nova_lite import baserpc
from nova_lite import context
from nova_lite.db import models
from nova_lite.inflight import manager as inflight_manager
from nova_lite.inflight import methods
from nova_lite.inflight import probe
from nova_lite.inflight import services
from nova_lite import rpc


class NovaBaseRPCAPI:
    """Nova's server side of the base RPC API (nova/baserpc.py)."""

    target = messaging.Target(namespace='baseapi', version='1.1')

    def __init__(self, service_name):
        self.service_name = service_name
        self.pings = 0

    def ping(self, context, arg):
        self.pings += 1
        return {'service': self.service_name, 'arg': arg}

    def get_backdoor_port(self, context):
        return None


@pytest.fixture
def nova_like(factory, conf):
    """A Nova-like conductor on host ``nova1`` (fake:// transport)."""
    # A nova_lite service first: the factory owns the transport.
    factory.start_service('compute', host='lite1')
    endpoint = NovaBaseRPCAPI('conductor')
    server = rpc.get_server(messaging.Target(topic='conductor',
                                             server='nova1'), [endpoint])
    server.start()
    yield endpoint
    server.stop()
    server.wait()


class CountingClient:
    """A BaseRPCAPI that counts the calls of each method."""

    def __init__(self, client):
        self._client = client
        self.calls = []

    def ping(self, *args, **kwargs):
        self.calls.append('ping')
        return self._client.ping(*args, **kwargs)

    def inflight(self, *args, **kwargs):
        self.calls.append('inflight')
        return self._client.inflight(*args, **kwargs)


class RaisingClient:
    """A client whose inflight raises ``exc``; ping answers."""

    def __init__(self, exc):
        self.exc = exc
        self.calls = []

    def inflight(self, *args, **kwargs):
        self.calls.append('inflight')
        raise self.exc

    def ping(self, ctxt, arg, host=None, timeout=None):
        self.calls.append('ping')
        return {'service': 'conductor', 'arg': arg}


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def test_a_nova_service_is_only_ever_pinged(nova_like, conf, ctxt):
    book = methods.MethodBook()
    client = CountingClient(baserpc.BaseRPCAPI(conf, 'conductor'))
    first = book.probe(client, ctxt, 'conductor', host='nova1', sleep=0.05,
                       timeout=5)
    assert first.answered, first
    assert first.method == probe.PING and first.host == 'nova1'
    assert first.total > 0
    # Round trip only: the rest is not measured, hence None, never 0.
    for phase in ('to_service', 'in_service', 'greenthread_overhead',
                  'from_service', 'transit'):
        assert getattr(first, phase) is None, phase
    assert client.calls == ['ping']
    second = book.probe(client, ctxt, 'conductor', host='nova1', sleep=0.05,
                        timeout=5)
    assert second.answered and second.method == probe.PING
    assert client.calls == ['ping', 'ping']
    assert nova_like.pings == 2
    # A nova_lite service still gets the full split: its ping reply names
    # its binary, and it is probed with inflight at once, then only so.
    lite_client = CountingClient(baserpc.BaseRPCAPI(conf, 'compute'))
    for _ in range(2):
        lite = book.probe(lite_client, ctxt, 'compute', host='lite1',
                          sleep=0.05, timeout=5)
        assert lite.method == probe.INFLIGHT and lite.in_service >= 50.0
    assert lite_client.calls == ['ping', 'inflight', 'inflight']
    assert book.method('compute', 'lite1') == probe.INFLIGHT


@pytest.mark.parametrize('exc', [
    messaging.RemoteError('NoSuchMethod', 'Endpoint does not support RPC '
                          'method inflight'),
    messaging.RemoteError('UnsupportedVersion', 'Endpoint does not support '
                          'RPC version 1.1'),
    messaging.NoSuchMethod('inflight'),
    messaging.UnsupportedVersion('1.1'),
])
def test_unsupported_over_a_real_broker_or_the_fake_one(ctxt, exc):
    """A service that answered inflight and no longer does (replaced by
    one that does not serve it) is pinged at once, and from then on."""
    client = RaisingClient(exc)
    book = methods.MethodBook()
    book.remember('conductor', 'n', probe.INFLIGHT)
    sample = book.probe(client, ctxt, 'conductor', host='n', timeout=1)
    assert sample.method == probe.PING and sample.answered
    assert sample.host == 'n' and sample.binary is None
    assert book.method('conductor', 'n') == probe.PING


@pytest.mark.parametrize('exc', [
    messaging.MessagingTimeout('no reply'),
    messaging.RemoteError('ValueError', 'boom'),
])
def test_a_timeout_or_another_error_is_no_reason_to_switch(ctxt, exc):
    client = RaisingClient(exc)
    book = methods.MethodBook()
    book.remember('conductor', 'n', probe.INFLIGHT)
    for _ in range(2):
        sample = book.probe(client, ctxt, 'conductor', host='n', timeout=1)
        assert sample.method == probe.INFLIGHT and not sample.answered
    assert sample.timed_out == isinstance(exc, messaging.MessagingTimeout)
    assert client.calls == ['inflight', 'inflight']
    assert book.method('conductor', 'n') == probe.INFLIGHT


class SilentClient:
    """A client whose ping never gets an answer."""

    def __init__(self):
        self.calls = []

    def ping(self, ctxt, arg, host=None, timeout=None):
        self.calls.append('ping')
        raise messaging.MessagingTimeout('no reply')


def test_a_service_that_never_answered_is_asked_again(ctxt):
    client = SilentClient()
    book = methods.MethodBook()
    for _ in range(2):
        sample = book.probe(client, ctxt, 'conductor', host='n', timeout=1)
        assert sample.timed_out and sample.method == probe.PING
    assert client.calls == ['ping', 'ping']
    assert book.method('conductor', 'n') is None


def test_a_forced_method_never_falls_back(nova_like, conf, ctxt):
    book = methods.MethodBook()
    client = baserpc.BaseRPCAPI(conf, 'conductor')
    forced = book.probe(client, ctxt, 'conductor', host='nova1', sleep=0,
                        timeout=5, method=probe.INFLIGHT)
    assert forced.method == probe.INFLIGHT and not forced.answered
    assert 'NoSuchMethod' in forced.error
    # A forced method teaches the book nothing.
    assert book.method('conductor', 'nova1') is None
    # A nova_lite service pinged: its reply says who answered.
    pinged = book.probe(baserpc.BaseRPCAPI(conf, 'compute'), ctxt, 'compute',
                        host='lite1', timeout=5, method=probe.PING)
    assert pinged.answered and pinged.method == probe.PING
    assert (pinged.host, pinged.binary) == ('lite1', 'nova-lite-compute')
    assert pinged.in_service is None


def test_nova_lite_ping_answers_as_novas_does(factory, conf, ctxt):
    factory.start_service('scheduler', host='s1')
    reply = baserpc.BaseRPCAPI(conf, 'scheduler').ping(ctxt, 'x', host='s1')
    assert (reply['service'], reply['arg']) == ('scheduler', 'x')
    assert reply['host'] == 's1'


def _row(host, topic='conductor', binary='nova-conductor', status='up',
         disabled=False, age=2.0):
    updated = (None if age is None else datetime.datetime.now(
        datetime.timezone.utc) - datetime.timedelta(seconds=age))
    return {'id': hash(host) % 1000, 'host': host, 'binary': binary,
            'topic': topic, 'status': status, 'disabled': disabled,
            'updated_at': updated, 'version': 66, 'zone': 'internal',
            'heartbeat_age': age, 'metrics': None}


class FakeQueues:
    """The QueueInspector's ``depths``, from a dict."""

    def __init__(self, depths):
        self._depths = depths
        self.asked = []

    def depths(self, queues):
        self.asked.append(list(queues))
        return {queue: self._depths.get(queue) for queue in queues}

    def close(self):
        pass


def test_the_sweep_probes_the_enabled_services_of_the_injected_list(
        nova_like, conf, db, ctxt):
    """An injected list: a nova_lite compute, a Nova-like conductor, a
    conductor that never answers though its heartbeat says up (its queue
    holds messages, no consumer), a disabled one and Nova's API (never
    probed)."""
    conf.set_override('sleep_seconds', 0.05, group='inflight')
    conf.set_override('ping_timeout', 1.0, group='inflight')
    listed = [_row('lite1', topic='compute', binary='nova-lite-compute'),
              _row('nova1'),
              _row('stuck', age=3.5),
              _row('off', disabled=True, status='down', age=None),
              # Nova's API: a row in its services table, no RPC server.
              _row('api', topic='osapi_compute', binary='nova-osapi_compute',
                   age=None)]
    mgr = inflight_manager.InflightManager(conf=conf, host='i1', db=db,
                                           binary='nova-lite-inflight')
    mgr.use_services(lambda: listed)
    mgr.init_host()
    mgr._queues = FakeQueues({
        'conductor.nova1': {'messages': 0, 'consumers': 1},
        'conductor.stuck': {'messages': 2, 'consumers': 0}})
    summary = mgr._run_round(ctxt)
    samples = {s.host: s for s in summary['samples']}
    assert sorted(samples) == ['lite1', 'nova1', 'stuck']
    # Each topic's queue and each probed service's topic.host queue.
    assert mgr._queues.asked == [['compute', 'conductor', 'compute.lite1',
                                  'conductor.nova1', 'conductor.stuck']]
    lite, nova, stuck = samples['lite1'], samples['nova1'], samples['stuck']
    assert lite.method == probe.INFLIGHT and lite.in_service is not None
    assert nova.method == probe.PING and nova.in_service is None
    assert nova.binary == 'nova-conductor'
    assert (nova.up, nova.heartbeat_age) == (True, 2.0)
    assert (nova.queue_messages, nova.queue_consumers) == (0, 1)
    assert stuck.timed_out and stuck.binary == 'nova-conductor'
    assert stuck.flags == ['unreachable', 'no_consumers']
    assert summary['flagged'] == {
        'conductor@stuck': ['unreachable', 'no_consumers']}
    stored = {s['host']: s for s in db.inflight_samples_since(60)}
    assert (stored['nova1']['method'], stored['nova1']['in_service'],
            stored['nova1']['up']) == ('ping', None, True)
    assert stored['nova1']['total'] == pytest.approx(nova.total)
    assert (stored['stuck']['flags'], stored['stuck']['heartbeat_age'],
            stored['stuck']['queue_messages'],
            stored['stuck']['queue_consumers']) == (
        'unreachable,no_consumers', 3.5, 2, 0)
    assert stored['lite1']['flags'] is None
    # The Nova-like one is pinged at once in the next round.
    pings = nova_like.pings
    del listed[2]
    mgr._run_round(ctxt)
    assert nova_like.pings == pings + 1
    assert mgr._methods.method('conductor', 'nova1') == probe.PING


def test_the_default_list_is_nova_lites_services_table(conf, db):
    """``[cloud] kind = nova_lite`` (the default): nova_lite's own."""
    db.service_register('c1', 'nova-lite-compute', 'compute', '1.0')
    db.service_register('c2', 'nova-lite-compute', 'compute', '1.0')
    db.service_set_disabled('c2', 'nova-lite-compute', True)
    with db._session() as session, session.begin():
        row = session.query(models.Service).filter_by(host='c2').one()
        row.last_seen_up = models.utcnow() - datetime.timedelta(seconds=600)
    source = services.source(conf, db)
    rows = {r['host']: r for r in source.list_services()}
    source.close()
    assert set(rows['c1']) == set(services.KEYS)
    assert (rows['c1']['status'], rows['c1']['disabled']) == ('up', False)
    assert rows['c1']['heartbeat_age'] < 60
    assert rows['c1']['updated_at'].tzinfo is datetime.timezone.utc
    assert (rows['c2']['status'], rows['c2']['disabled']) == ('down', True)
    assert rows['c2']['heartbeat_age'] == pytest.approx(600, abs=30)


@pytest.mark.parametrize('forced,code', [(None, 0), ('ping', 0),
                                         ('inflight', 1)])
def test_nova_lite_ping_of_a_nova_like_service(nova_like, conf, capsys,
                                               forced, code):
    from nova_lite.cmd import ping

    args = ping.build_parser().parse_args(
        ['conductor@nova1', '-c', '2', '-i', '0.01', '--json'] +
        (['--method', forced] if forced else []))
    assert ping.run(conf, args, 'conductor', 'nova1') == code
    lines = [json.loads(line) for line in
             capsys.readouterr().out.splitlines()]
    replies, summary = lines[:-1], lines[-1]
    assert [r['seq'] for r in replies] == [1, 2]
    if code:
        assert summary['lost'] == 2
        assert all('NoSuchMethod' in r['error'] for r in replies)
        return
    assert summary['methods'] == ['ping'] and summary['lost'] == 0
    for reply in replies:
        assert reply['method'] == 'ping' and reply['total'] > 0
        assert reply['in_service'] is None and reply['to_service'] is None
    assert summary['in_service'] is None
    assert summary['total']['count'] == 2
