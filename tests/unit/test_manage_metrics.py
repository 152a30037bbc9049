"""nova-lite-manage service list's metrics column, metrics targets and
rpc stats, against stub /metrics endpoints served over real HTTP."""

import json
import os
import signal
import subprocess
import sys

import prometheus_client as prom
import pytest

from nova_lite.cmd import manage
from nova_lite import concurrency
from nova_lite.metrics import registry
from nova_lite.metrics import targets
from nova_lite.testing import api


def _run(conf_fixture, capsys, *args):
    path = conf_fixture.write_config_file()
    code = manage.main(['--config-file', path] + list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _run_exit(conf_fixture, capsys, *args):
    """A command that exits through SystemExit: (code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        _run(conf_fixture, capsys, *args)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def _manage(conf_fixture, *args, **popen_kwargs):
    path = conf_fixture.write_config_file('manage.conf')
    return subprocess.Popen(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file',
         path] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **popen_kwargs)


def _register_nova_lite_all(db, address):
    for binary, topic in (('nova-lite-conductor', 'conductor'),
                          ('nova-lite-scheduler', 'scheduler'),
                          ('nova-lite-compute', 'compute')):
        db.service_register('dev1', binary, topic, '1.0',
                            metrics_address=address)


# -- service list -----------------------------------------------------

def test_service_list_shows_the_metrics_address(conf_fixture, db, capsys):
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0',
                        metrics_address='127.0.0.1:9101')
    db.service_register('h2', 'nova-lite-compute', 'compute', '1.0')
    code, out, _ = _run(conf_fixture, capsys, 'service', 'list', '--json')
    assert code == 0
    assert [(r['host'], r['metrics']) for r in json.loads(out)] == [
        ('h1', '127.0.0.1:9101'), ('h2', None)]
    code, out, _ = _run(conf_fixture, capsys, 'service', 'list')
    header, first, second = out.splitlines()
    assert header.split()[-1] == 'metrics'
    assert first.split()[-1] == '127.0.0.1:9101'
    assert second.split()[-1] == '-'


# -- metrics targets --------------------------------------------------

def test_targets_one_group_per_address_labels_joined(conf_fixture, db,
                                                     capsys):
    _register_nova_lite_all(db, '127.0.0.1:9200')
    db.service_register('cpu1', 'nova-lite-compute', 'compute', '1.0',
                        metrics_address='127.0.0.1:9101')
    db.service_register('cpu2', 'nova-lite-compute', 'compute', '1.0')
    # Bound to every address: reached at the service's host.
    db.service_register('cpu3', 'nova-lite-compute', 'compute', '1.0',
                        metrics_address='0.0.0.0:9102')
    code, out, _ = _run(conf_fixture, capsys, 'metrics', 'targets')
    assert code == 0
    assert json.loads(out) == [
        {'targets': ['127.0.0.1:9101'], 'labels': {
            'topic': 'compute', 'host': 'cpu1',
            'binary': 'nova-lite-compute'}},
        {'targets': ['cpu3:9102'], 'labels': {
            'topic': 'compute', 'host': 'cpu3',
            'binary': 'nova-lite-compute'}},
        {'targets': ['127.0.0.1:9200'], 'labels': {
            'topic': 'compute,conductor,scheduler', 'host': 'dev1',
            'binary': 'nova-lite-compute,nova-lite-conductor,'
                      'nova-lite-scheduler'}}]


def test_targets_without_endpoints_is_an_empty_list(conf_fixture, db,
                                                    capsys):
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    code, out, _ = _run(conf_fixture, capsys, 'metrics', 'targets')
    assert (code, json.loads(out)) == (0, [])


def test_targets_output_replaces_the_file_in_one_rename(conf_fixture, db,
                                                        capsys, tmp_path):
    path = tmp_path / 'nova-lite.json'
    path.write_text('[]\n')
    # Prometheus may be reading the old file right now: it must see it
    # whole, never truncated or half rewritten.
    reader = open(path)
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0',
                        metrics_address='127.0.0.1:9101')
    code, out, _ = _run(conf_fixture, capsys, 'metrics', 'targets',
                        '--output', str(path))
    assert code == 0
    assert out == 'Wrote 1 target(s) to %s\n' % path
    assert reader.read() == '[]\n'
    reader.close()
    assert json.loads(path.read_text())[0]['targets'] == ['127.0.0.1:9101']
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ['nova-lite.json']


def test_targets_failed_write_keeps_the_old_file(conf_fixture, db, capsys,
                                                 tmp_path, monkeypatch):
    path = tmp_path / 'nova-lite.json'
    path.write_text('[]\n')

    def refuse(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(targets.os, 'replace', refuse)
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0',
                        metrics_address='127.0.0.1:9101')
    code, out, err = _run_exit(conf_fixture, capsys, 'metrics', 'targets',
                               '--output', str(path))
    assert code == 1
    assert err.splitlines() == [
        'nova-lite-manage: error: Cannot write the Prometheus targets file '
        '%s: No space left on device' % path]
    assert path.read_text() == '[]\n'
    assert os.listdir(tmp_path) == ['nova-lite.json']


def test_targets_into_a_missing_directory_is_one_line(conf_fixture, db,
                                                      capsys, tmp_path):
    path = tmp_path / 'nope' / 'nova-lite.json'
    code, out, err = _run_exit(conf_fixture, capsys, 'metrics', 'targets',
                               '--output', str(path))
    assert code == 1 and out == ''
    assert err.splitlines() == [
        'nova-lite-manage: error: Cannot write the Prometheus targets file '
        '%s: No such file or directory' % path]


# -- rpc stats ----------------------------------------------------------

class StubEndpoint:
    """A /metrics endpoint over real HTTP whose RPC server histograms
    grow by ``per_scrape`` (``[(topic, method, kind, outcome, seconds)]``)
    on every request, before it answers: two scrapes see exactly one
    request's worth in between."""

    def __init__(self, per_scrape):
        self.per_scrape = per_scrape
        self.scrapes = 0
        self.reg = prom.CollectorRegistry()
        labels = ['topic', 'method', 'kind']
        self.queue = prom.Histogram(
            'nova_lite_rpc_server_queue_seconds', 'q', labels,
            buckets=registry.BUCKETS, registry=self.reg)
        self.wait = prom.Histogram(
            'nova_lite_rpc_server_executor_wait_seconds', 'w', labels,
            buckets=registry.BUCKETS, registry=self.reg)
        self.handling = prom.Histogram(
            'nova_lite_rpc_server_handling_seconds', 'h',
            labels + ['outcome'], buckets=registry.BUCKETS,
            registry=self.reg)
        self.server = concurrency.serve_wsgi(self._app, '127.0.0.1', 0, 4)
        self.address = '127.0.0.1:%d' % self.server.port

    def _app(self, environ, start_response):
        self.scrapes += 1
        for topic, method, kind, outcome, seconds in self.per_scrape:
            self.queue.labels(topic, method, kind).observe(seconds)
            self.wait.labels(topic, method, kind).observe(seconds)
            self.handling.labels(topic, method, kind,
                                 outcome).observe(seconds)
        start_response('200 OK', [('Content-Type', prom.CONTENT_TYPE_LATEST)])
        return [prom.generate_latest(self.reg)]

    def stop(self):
        self.server.stop(1.0)


@pytest.fixture
def endpoint():
    stub = StubEndpoint(
        [('conductor', 'build_instance', 'cast', 'ok', 0.003)] * 3 +
        [('conductor', 'build_instance', 'cast', 'MessagingTimeout', 0.003),
         ('compute', 'spawn', 'cast', 'ok', 0.03)])
    yield stub
    stub.stop()


def test_rpc_stats_json_rows_over_the_window(conf_fixture, db, capsys,
                                             endpoint):
    _register_nova_lite_all(db, endpoint.address)     # scraped once
    code, out, err = _run(conf_fixture, capsys, 'rpc', 'stats',
                          '--interval', '0.3', '--json')
    assert (code, err) == (0, '')
    assert endpoint.scrapes == 2
    rows = json.loads(out)
    assert [(r['topic'], r['method'], r['count'], r['errors'])
            for r in rows] == [('compute', 'spawn', 1, 0),
                               ('conductor', 'build_instance', 4, 1)]
    build = rows[1]
    # 4 handled between two scrapes 0.3 s (and a little) apart.
    assert 4 / 1.0 < build['rate'] <= 4 / 0.3
    # Every one at 3 ms, in the (2.5, 5] ms bucket.
    for phase in ('queue', 'executor_wait', 'handling'):
        assert build[phase]['p50'] == pytest.approx(2.5 + 2.5 * 2 / 4)
        assert build[phase]['p99'] == pytest.approx(2.5 + 2.5 * 3.96 / 4)


def test_rpc_stats_table_and_an_unreachable_endpoint(conf_fixture, db,
                                                     capsys, endpoint):
    dead = '127.0.0.1:%d' % api.free_port()
    db.service_register('cpu1', 'nova-lite-compute', 'compute', '1.0',
                        metrics_address=dead)
    db.service_register('ctl1', 'nova-lite-conductor', 'conductor', '1.0',
                        metrics_address=endpoint.address)
    code, out, err = _run(conf_fixture, capsys, 'rpc', 'stats',
                          '--interval', '0.2')
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith('nova-lite-manage rpc stats: %s (nova-lite-compute '
                           'on cpu1) unreachable: ' % dead)
    assert 'refused' in line
    lines = out.splitlines()
    assert lines[0].startswith('RPC over 0.2 s, 1 of 2 endpoint(s) answered')
    assert lines[1].split() == ['topic', 'method', 'rate', 'errors', 'queue',
                                'executor_wait', 'handling']
    assert lines[2].split()[:2] == ['compute', 'spawn']
    # One spawn at 30 ms, in (25, 50] ms: p50 and p99 interpolated.
    assert lines[2].split()[4:] == ['37.50/49.75'] * 3
    assert lines[3].split()[:2] == ['conductor', 'build_instance']
    assert lines[3].split()[3] == '1'


def test_rpc_stats_without_any_endpoint_is_one_line(conf_fixture, db,
                                                    capsys):
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    code, out, err = _run_exit(conf_fixture, capsys, 'rpc', 'stats')
    assert (code, out) == (1, '')
    assert err.splitlines() == [
        'nova-lite-manage: error: No registered service has a metrics '
        'endpoint (is [metrics] enabled on the daemons?)']


@pytest.mark.parametrize('args, message', [
    (['--interval', '0'], "argument --interval: must be more than 0 and at "
                          "most 3600 seconds, got 0"),
    (['--interval', 'soon'], "argument --interval: not a number: 'soon'"),
    (['--bogus'], 'unrecognized arguments: --bogus'),
])
def test_rpc_stats_bad_arguments_are_one_line_exit_2(conf_fixture, capsys,
                                                     args, message):
    code, out, err = _run_exit(conf_fixture, capsys, 'rpc', 'stats', *args)
    assert (code, out) == (2, '')
    assert err.splitlines() == ['nova-lite-manage rpc stats: error: ' +
                                message]


def test_rpc_stats_watch_refreshes_until_ctrl_c(conf_fixture, db, endpoint):
    db.service_register('ctl1', 'nova-lite-conductor', 'conductor', '1.0',
                        metrics_address=endpoint.address)
    proc = _manage(conf_fixture, 'rpc', 'stats', '--interval', '0.2',
                   '--watch', '--json')
    try:
        # JSON lines, one window each: three of them.
        windows = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert all(w[1]['method'] == 'build_instance' and
                   w[1]['count'] == 4 for w in windows), windows
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert 'Traceback' not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
