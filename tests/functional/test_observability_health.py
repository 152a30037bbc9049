"""The metrics listener of a real daemon: /health, /livez, /readyz, what
it refuses, idle connections, and what happens when it is off or its
port is taken."""

import datetime
import os
import socket
import subprocess
import sys
import time

from nova_lite import baserpc
from nova_lite import context
from nova_lite.testing import scrape
from nova_lite.testing import waiters
from tests.functional import test_observability_rpc as observability

HEALTH_INTERVAL = 2
READ_TIMEOUT = 2.0
IDLE_CONNECTIONS = 100


def listening_ports(pid):
    """The TCP ports process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue        # closed meanwhile
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    ports = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == '0A' and fields[9] in inodes:   # LISTEN
                    ports.add(int(fields[1].rpartition(':')[2], 16))
    return ports


def check_health_body(answer, service_id, version):
    """A /health answer of a healthy service, in the draft's shape."""
    assert answer.status == 200, answer.body
    assert answer.headers['content-type'] == 'application/health+json'
    assert answer.headers['cache-control'] == 'max-age=%d' % HEALTH_INTERVAL
    body = answer.json()
    assert body['serviceId'] == service_id
    assert body['version'] == version
    assert set(body['checks']) == {'rpc:self', 'database:heartbeat',
                                   'hub:lag'}
    for name, entries in body['checks'].items():
        assert entries, name
        for entry in entries:
            assert {'status', 'observedValue', 'observedUnit',
                    'time'} <= set(entry), (name, entry)
            datetime.datetime.fromisoformat(entry['time'])
    for name in ('rpc:self', 'database:heartbeat'):
        (entry,) = body['checks'][name]
        assert entry['status'] == 'pass', (name, entry)
        assert entry['componentId'] == service_id
        assert entry['observedValue'] >= 0
    # warn only from hub:lag (a loaded machine), never fail.
    warned = {name for name, entries in body['checks'].items()
              for entry in entries if entry['status'] != 'pass'}
    assert warned <= {'hub:lag'}, body
    assert body['status'] == ('warn' if warned else 'pass'), body
    return body


def test_health_livez_readyz_and_idle_connections(factory, db, conf,
                                                  client_rpc):
    daemon, address = observability.start_daemon(
        factory, db, 'nova-lite-compute', 'cpu1',
        {'metrics': {'health_interval': HEALTH_INTERVAL,
                     'read_timeout': READ_TIMEOUT}})
    assert listening_ports(daemon.pid) == {int(address.rpartition(':')[2])}
    row = db.service_get('cpu1', 'nova-lite-compute')
    body = check_health_body(scrape.get(address, '/health'), 'compute.cpu1',
                             row['version'])
    assert body['checks']['rpc:self'][0]['observedUnit'] == 'ms'
    assert body['checks']['database:heartbeat'][0]['observedUnit'] == 's'
    for path in ('/livez', '/readyz'):
        assert scrape.get(address, path).status == 200, path
    head = scrape.get(address, '/health', method='HEAD')
    assert (head.status, head.body) == (200, b'')
    post = scrape.get(address, '/health', method='POST')
    assert post.status == 405 and 'GET' in post.headers['allow']
    assert scrape.get(address, '/nope').status == 404
    metrics = scrape.metrics(address)
    assert metrics.value('nova_lite_hub_lag_seconds_count') > 0
    assert metrics.value('nova_lite_threads') > 0
    assert metrics.value('process_resident_memory_bytes') > 0
    assert {labels['state'] for labels in metrics.labels(
        'nova_lite_executor_workers')} == {'busy', 'idle'}

    # A hundred idle connections: /health still answers, RPC is not
    # slowed, and the listener closes them after read_timeout.
    idle = []       # (socket, when it was connected)
    host, _, port = address.rpartition(':')
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append((socket.create_connection((host, int(port)),
                                                  timeout=10),
                         time.monotonic()))
        answer = scrape.get(address, '/health', timeout=5)
        check_health_body(answer, 'compute.cpu1', row['version'])
        assert answer.seconds < 1.0, answer.seconds
        start = time.monotonic()
        reply = baserpc.BaseRPCAPI(conf, 'compute').ping(
            context.get_admin_context(), 'busy', host='cpu1', timeout=5)
        assert reply['arg'] == 'busy'
        assert time.monotonic() - start < 2.0
        kept = []
        for sock, connected_at in idle:
            sock.settimeout(READ_TIMEOUT + 15)
            assert sock.recv(1) == b''      # closed by the server
            kept.append(time.monotonic() - connected_at)
        # Not before read_timeout: the server's clock starts after the
        # connect (0.1 s for timer granularity).
        assert min(kept) >= READ_TIMEOUT - 0.1, min(kept)
    finally:
        for sock, _ in idle:
            sock.close()
    answer = scrape.get(address, '/health')
    check_health_body(answer, 'compute.cpu1', row['version'])


def test_listener_off(factory, db):
    daemon = factory.start_daemon('nova-lite-compute', 'cpu1',
                                  extra={'metrics': {'enabled': False}})
    row = waiters.wait_for_service(db, 'cpu1', 'nova-lite-compute')
    assert not row['metrics_address']
    assert listening_ports(daemon.pid) == set()
    assert 'Metrics and health on' not in daemon.log_text()


def test_port_in_use_is_one_line_and_exit(conf_fixture, db):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        path = conf_fixture.write_config_file(
            'port-taken.conf', extra={'DEFAULT': {'host': 'cpu1'},
                                      'metrics': {'port': port}})
        result = subprocess.run(
            [sys.executable, '-m', 'nova_lite.cmd.compute', '--config-file',
             path], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        'nova-lite-compute: error: Cannot listen for /metrics on '
        '127.0.0.1:%d: Address already in use (see [metrics] bind_host and '
        'port)' % port]
    assert 'Traceback' not in result.stdout
