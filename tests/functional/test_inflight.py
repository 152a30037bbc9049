"""The inflight probe across real daemons on a real broker."""

import json
import signal
import socket
import subprocess
import sys

import pytest

from nova_lite import context
from nova_lite.inflight import rpcapi as inflight_rpcapi
from nova_lite.testing import waiters


@pytest.fixture
def statsd_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(('127.0.0.1', 0))
    sock.settimeout(0.2)
    yield sock
    sock.close()


@pytest.fixture
def probed(factory, db, client_rpc, statsd_socket):
    """Two computes (one with dots in its host) and an inflight daemon
    that sends to the test's UDP statsd socket."""
    inflight_opts = {
        'inflight': {'sleep_seconds': 0.1, 'ping_timeout': 2,
                     'probe_interval': 3600, 'max_concurrent_pings': 4},
        'statsd': {'enabled': True, 'host': '127.0.0.1',
                   'port': statsd_socket.getsockname()[1], 'prefix': 'nl'},
    }
    daemons = {
        'cpu1': factory.start_daemon('nova-lite-compute', 'cpu1.example'),
        'cpu2': factory.start_daemon('nova-lite-compute', 'cpu2'),
        'inflight': factory.start_daemon('nova-lite-inflight', 'prober',
                                         extra=inflight_opts),
    }
    for daemon in daemons.values():
        try:
            waiters.wait_for_service(db, daemon.host, daemon.binary)
        except waiters.WaitTimeout:
            pytest.fail('%s never came up:\n%s' % (
                daemon.binary, daemon.log_text()[-3000:]))
    return daemons


def _probe_now(conf, daemons):
    try:
        return inflight_rpcapi.InflightRPCAPI(conf).probe_now(
            context.get_admin_context(), timeout=30)
    except Exception:
        print(daemons['inflight'].log_text()[-5000:])
        raise


def _statsd_lines(sock, until, timeout=15):
    lines = []

    def _received():
        try:
            data, _ = sock.recvfrom(65535)
            lines.extend(data.decode().splitlines())
        except socket.timeout:
            pass
        return until(lines)

    waiters.wait_for(_received, timeout=timeout, interval=0,
                     what='statsd lines')
    return lines


def _cli(conf_fixture, module, *args):
    path = conf_fixture.write_config_file('cli.conf')
    return subprocess.run(
        [sys.executable, '-m', module, '--config-file', path] + list(args),
        capture_output=True, text=True, timeout=120)


def test_round_probes_every_service_and_feeds_statsd(probed, conf,
                                                     statsd_socket):
    summary = _probe_now(conf, probed)
    assert summary['services'] == 3
    assert summary['answered'] == 3 and summary['timeouts'] == 0
    wanted = {'nl.inflight.compute.%s.%s' % (host, name)
              for host in ('cpu1_example', 'cpu2')
              for name in ('to_service', 'in_service', 'greenthread_overhead',
                           'from_service', 'total', 'greenthreads',
                           'workers')}

    # The start-up round may have seen one compute only: wait for a round
    # that saw both, and two consumers on the compute queue.
    def _complete(lines):
        seen = {line.split(':')[0] for line in lines}
        return (wanted <= seen and
                'nl.queue.compute.consumers:2|g' in lines and
                'nl.queue.compute.depth' in seen)
    lines = _statsd_lines(statsd_socket, _complete)
    for line in lines:
        name, _, rest = line.partition(':')
        value, _, kind = rest.partition('|')
        float(value)  # every value parses
        expected_kind = {'greenthreads': 'g', 'workers': 'g', 'depth': 'g',
                         'consumers': 'g', 'timeout': 'c', 'up': 'g',
                         'heartbeat_age': 'g', 'unreachable': 'c',
                         'no_consumers': 'c', 'slow': 'c',
                         'unacked': 'g'}.get(
                             name.rsplit('.', 1)[1], 'ms')
        assert kind == expected_kind, line
        if name.endswith('.in_service'):
            assert float(value) >= 100.0  # includes the 0.1 s sleep
        if name.endswith('.workers'):
            assert float(value) >= 1      # the probe's own handler


def test_killed_service_times_out_and_rounds_go_on(probed, conf, conf_fixture,
                                                   statsd_socket):
    probed['cpu2'].signal(signal.SIGKILL)
    probed['cpu2'].wait(timeout=10)
    summary = _probe_now(conf, probed)
    assert summary['timeouts'] == 1 and summary['answered'] == 2
    # The loop goes on: a later round runs and still answers the rest.  (The
    # daemon's own start-up round may land between our two, so "later", not
    # "next": a CI run saw rounds 1 and 3.)
    again = _probe_now(conf, probed)
    assert again['round'] > summary['round']
    assert again['answered'] == 2
    _statsd_lines(statsd_socket, lambda lines: any(
        line == 'nl.inflight.compute.cpu2.timeout:1|c' for line in lines))
    report = _cli(conf_fixture, 'nova_lite.cmd.manage', 'inflight', 'report',
                  '--json')
    assert report.returncode == 0, report.stderr
    rows = {(r['topic'], r['host']): r for r in json.loads(report.stdout)}
    assert rows[('compute', 'cpu2')]['timeouts'] >= 2
    assert rows[('compute', 'cpu1.example')]['samples'] >= 2
    assert set(rows[('compute', 'cpu1.example')]['total']) == {'p50', 'p95',
                                                               'max'}
    # One machine, one clock: the true offset of every host is 0.
    cpu1 = rows[('compute', 'cpu1.example')]
    assert abs(cpu1['clock_offset_ms']) <= cpu1['clock_offset_bound_ms']
    text = _cli(conf_fixture, 'nova_lite.cmd.manage', 'inflight', 'report')
    assert 'cpu1.example' in text.stdout and 'p50/p95/max' in text.stdout


def test_ping_cli_output_and_exit_codes(probed, conf_fixture):
    ok = _cli(conf_fixture, 'nova_lite.cmd.ping', 'compute@cpu2', '-c', '2',
              '-i', '0.1', '--sleep', '0')
    assert ok.returncode == 0, ok.stdout + ok.stderr
    replies = [l for l in ok.stdout.splitlines() if l.startswith('reply')]
    assert len(replies) == 2
    assert all('reply from cpu2 (nova-lite-compute' in l for l in replies)
    assert '2 probes sent, 2 answered, 0% lost' in ok.stdout
    assert 'greenthread_overhead  min/avg/max/p99 =' in ok.stdout
    assert 'clock offset of cpu2: ' in ok.stdout

    shared = _cli(conf_fixture, 'nova_lite.cmd.ping', 'compute', '-c', '3',
                  '-i', '0.05', '--sleep', '0', '--json')
    assert shared.returncode == 0, shared.stderr
    objects = [json.loads(line) for line in shared.stdout.splitlines()]
    assert [o['type'] for o in objects] == ['reply'] * 3 + ['summary']
    assert {o['host'] for o in objects[:3]} <= {'cpu1.example', 'cpu2'}
    assert objects[-1]['answered'] == 3
    # One machine, one clock: each host's offset is 0 within its bound.
    offsets = objects[-1]['clock_offsets']
    assert set(offsets) == {o['host'] for o in objects[:3]}
    assert all(abs(c['offset_ms']) <= c['bound_ms'] for c in offsets.values())

    lost = _cli(conf_fixture, 'nova_lite.cmd.ping', 'compute@ghost', '-c',
                '1', '-t', '1', '--sleep', '0')
    assert lost.returncode == 1
    assert 'timeout: seq=1 no reply from compute@ghost' in lost.stdout
    assert '1 probes sent, 0 answered, 100% lost' in lost.stdout
    assert 'Traceback' not in lost.stdout + lost.stderr
