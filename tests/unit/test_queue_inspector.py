"""The queue inspector's broker connection on single- and multi-host
transport URLs (no broker needed: kombu connects lazily)."""

import base64
import http.server
import json
import threading
import urllib.parse

import pytest

from nova_lite.inflight import queues


def test_one_host(conf):
    connection = queues.kombu_connection(
        conf, 'rabbit://u:secret@10.0.0.1:5673/vh')
    assert connection.alt == ['amqp://u:secret@10.0.0.1:5673/vh']
    assert (connection.hostname, connection.port, connection.userid,
            connection.password, connection.virtual_host) == (
        '10.0.0.1', 5673, 'u', 'secret', 'vh')
    assert connection.transport_cls == 'pyamqp'


def test_every_host_of_a_cluster_in_order(conf):
    connection = queues.kombu_connection(
        conf, 'rabbit://a:p1@h1:5672,b:p2@h2:5673,c:p3@h3/vh')
    assert connection.alt == ['amqp://a:p1@h1:5672/vh',
                              'amqp://b:p2@h2:5673/vh',
                              'amqp://c:p3@h3:5672/vh']
    assert connection.failover_strategy is not None
    # The next host after a failure is the URL's next one.
    connection.maybe_switch_next()
    assert (connection.hostname, connection.port, connection.userid) == (
        'h2', 5673, 'b')


def test_quoting_and_the_default_vhost(conf):
    connection = queues.kombu_connection(conf, 'rabbit://u:p%40ss@h1:5672/')
    assert connection.alt == ['amqp://u:p%40ss@h1:5672/%2F']
    assert (connection.password, connection.virtual_host) == ('p@ss', '/')


class _Management(http.server.BaseHTTPRequestHandler):
    """RabbitMQ's GET /api/queues/VHOST, from ``QUEUES`` (path: the
    vhost's queues, each with its name)."""

    QUEUES = {}
    seen = []

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get('Authorization')))
        if self.headers.get('Authorization') != 'Basic ' + base64.b64encode(
                b'mon:s3cr@t').decode():
            self.send_error(401)
            return
        body = self.QUEUES.get(urllib.parse.urlsplit(self.path).path)
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def management():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Management)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Management.seen = []
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_management_api_counts_what_a_frozen_consumer_holds(
        conf, management, caplog):
    """A consumer that took messages and never acknowledged them (a
    SIGSTOPped service): the management API counts them, a passive
    declare would not."""
    conf.set_override('transport_url',
                      'rabbit://nova:pw@127.0.0.1:5672/nova vh')
    conf.set_override('rabbit_management_url',
                      management.replace('//', '//mon:s3cr%40t@'),
                      group='inflight')
    _Management.QUEUES = {'/api/queues/nova%20vh': [
        {'name': 'conductor.ctl', 'messages_ready': 0,
         'messages_unacknowledged': 5, 'consumers': 1},
        # Statistics not collected yet: not known, not 0.
        {'name': 'compute.new'}]}
    inspector = queues.inspector(conf)
    assert isinstance(inspector, queues.ManagementInspector)
    assert inspector.depths(['conductor.ctl', 'compute.new', 'gone']) == {
        'conductor.ctl': {'messages': 0, 'unacked': 5, 'consumers': 1},
        'compute.new': None, 'gone': None}
    # One request for the round, whatever the number of queues.
    assert len(_Management.seen) == 1, _Management.seen
    # A wrong password: None, and one warning with the password masked.
    conf.set_override('rabbit_management_url',
                      management.replace('//', '//mon:wrong@'),
                      group='inflight')
    assert queues.inspector(conf).depths(['conductor.ctl']) == {
        'conductor.ctl': None}
    warnings = [r.getMessage() for r in caplog.records
                if r.levelname == 'WARNING']
    assert len(warnings) == 1 and 'HTTP 401' in warnings[0], warnings
    assert 'wrong' not in warnings[0] and 'mon:***@' in warnings[0]


def test_without_the_management_api_a_passive_declare(conf):
    assert isinstance(queues.inspector(conf), queues.QueueInspector)
