"""Acceptance: a real Prometheus, fed by ``nova-lite-manage metrics
targets``, scrapes every daemon of a real deployment (conductor,
scheduler, two computes, inflight, api, each its own process, on a real
RabbitMQ) without a scrape error; PromQL shows build_instance's queue,
executor_wait and handling on the conductor, and spawn's on the computes,
and their counts equal the builds sent.  ``rpc stats`` sees the same
builds.  Prometheus is a real component: missing, these tests fail.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite.testing import api
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import prometheus
from nova_lite.testing import services as nl_services
from nova_lite.testing import waiters
from tests.functional import test_api

RULES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, 'etc',
                     'prometheus', 'nova-lite-rules.yml')
BUILDS = 3
PHASES = ('queue', 'executor_wait', 'handling')


@pytest.fixture(scope='module')
def deployment(rabbit):
    with test_api.api_deployment(rabbit, {
            'conductor': ('nova-lite-conductor', 'ctl1', None),
            'scheduler': ('nova-lite-scheduler', 'ctl1', None),
            'inflight': ('nova-lite-inflight', 'ctl1', None),
            'compute1': ('nova-lite-compute', 'cpu1', None),
            'compute2': ('nova-lite-compute', 'cpu2', None)}) as env:
        yield env


def _manage(conf_fixture, *args, **kwargs):
    path = conf_fixture.write_config_file('manage.conf')
    return subprocess.Popen(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file',
         path] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **kwargs)


def _write_targets(conf_fixture, path):
    proc = _manage(conf_fixture, 'metrics', 'targets', '--output',
                   str(path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture
def prom_server():
    """``prom_server(targets_file)``: a started PrometheusServer with the
    shipped rules; a missing binary fails the test."""
    started = []

    def start(targets_file):
        server = prometheus.PrometheusServer(targets_file,
                                             rule_files=[RULES])
        try:
            server.setUp()
        except prometheus.PrometheusUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(server)
        return server

    yield start
    for server in started:
        server.cleanUp()


def _build(client, count, prefix):
    ids = []
    for n in range(count):
        resp = client.post('/v2.1/servers', {'server': {
            'name': '%s-%d' % (prefix, n), 'imageRef': 'cirros',
            'flavorRef': '1'}})
        assert resp.status == 202, resp
        ids.append(resp.json['server']['id'])
    for server_id in ids:
        api.wait_for_server(client, server_id, 'ACTIVE')
    return ids


def _count(phase, **labels):
    return 'sum(nova_lite_rpc_server_%s_seconds_count{%s})' % (
        phase, ','.join('%s="%s"' % item for item in sorted(labels.items())))


def test_prometheus_scrapes_every_daemon_and_counts_every_build(
        deployment, prom_server, tmp_path):
    env = deployment
    groups = _write_targets(env.conf_fixture, tmp_path / 'nova-lite.json')
    # One target per daemon, each labelled with its service.
    assert sorted((g['labels']['binary'], g['labels']['host'])
                  for g in groups) == sorted(
        (d.binary, d.host) for d in env.daemons.values())
    prom = prom_server(tmp_path / 'nova-lite.json')
    prom.wait_for_targets(len(env.daemons))

    # A series appears with its first message, and PromQL's rate() only
    # counts what comes after a series' first sample: one build first, so
    # that the recording rules see the others.
    sent = 0
    for count in (1, BUILDS):
        _build(env.admin, count, 'scraped')
        sent += count
        # The conductor handles build_instance (a cast from the API) and
        # casts spawn to a compute; each phase counted once per build.
        for topic, method, binary in (
                ('conductor', 'build_instance', 'nova-lite-conductor'),
                ('compute', 'spawn', 'nova-lite-compute')):
            for phase in PHASES:
                prom.wait_for_value(_count(phase, topic=topic, method=method,
                                           binary=binary), sent)
            outcomes = prom.query(
                'sum by (outcome, kind) (nova_lite_rpc_server_handling_'
                'seconds_count{topic="%s",method="%s"})' % (topic, method))
            assert outcomes == [({'outcome': 'ok', 'kind': 'cast'}, sent)]
    # Each compute's spawns come from its own endpoint.
    per_host = prom.query(
        'sum by (host) (nova_lite_rpc_server_handling_seconds_count'
        '{method="spawn"})')
    assert {labels['host'] for labels, _ in per_host} <= {'cpu1', 'cpu2'}
    # The API's side: its casts, confirmed by the broker.
    prom.wait_for_value(
        'sum(nova_lite_rpc_client_seconds_count{binary="nova-lite-api",'
        'topic="conductor",method="build_instance",kind="cast",'
        'outcome="ok"})', sent)
    # The shipped recording rules have its p99s (numbers, not NaN).
    for phase in ('queue', 'handling'):
        p99 = waiters.wait_for(lambda: prom.query(
            'nova_lite:rpc_server_%s_seconds:p99_5m{topic="conductor",'
            'method="build_instance"} >= 0' % phase), timeout=30,
            what='the recorded p99 %s time of build_instance' % phase)
        assert 0 < p99[0][1] < 60, p99

    # honor_labels: the series keep their own topic; none was renamed.
    assert prom.query('count({__name__=~"nova_lite_.+",'
                      'exported_topic!=""})') == []
    # No scrape failed, from the first to the last.
    for target in prom.targets():
        assert (target['health'], target['lastError']) == ('up', ''), target
    ups = prom.query('min_over_time(up{job="nova_lite"}[10m])')
    assert len(ups) == len(env.daemons)
    assert all(value == 1 for _, value in ups), ups


def test_rpc_stats_sees_the_builds(deployment):
    env = deployment
    proc = _manage(env.conf_fixture, 'rpc', 'stats', '--interval', '1',
                   '--watch', '--json')
    try:
        # The first window: every endpoint scraped twice, none failing.
        json.loads(proc.stdout.readline())
        _build(env.admin, 2, 'watched')
        # Windows do not overlap: their counts add up to the builds.
        seen = {'build_instance': 0, 'spawn': 0}
        rows = []

        def _all_counted():
            window = json.loads(proc.stdout.readline())
            for row in window:
                if (row['topic'], row['method']) in (
                        ('conductor', 'build_instance'),
                        ('compute', 'spawn')):
                    seen[row['method']] += row['count']
                    rows.append(row)
            return seen == {'build_instance': 2, 'spawn': 2}

        waiters.wait_for(_all_counted, timeout=60, interval=0,
                         what='2 builds and 2 spawns in rpc stats windows')
        for row in rows:
            assert row['errors'] == 0 and row['rate'] > 0, row
            for phase in PHASES:
                assert 0 <= row[phase]['p50'] <= row[phase]['p99'], row
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read() == ''
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_nova_lite_all_is_one_target_with_its_topics(rabbit, prom_server,
                                                     tmp_path):
    """Several services behind one listener: one target, labels joined,
    and each RPC series still tells its topic (honor_labels)."""
    port = api.free_port()
    # A vhost of its own: the module's deployment consumes the same
    # topics on the session's.
    with nl_fixtures.RabbitVhost() as vhost, \
            nl_fixtures.ConfFixture(transport_url=vhost.url) as conf_fixture, \
            nl_services.ServiceFactory(conf_fixture) as factory:
        db = db_api.API(conf_fixture.conf)
        migration.db_sync(db)
        factory.start_daemon('nova-lite-all', 'dev1', extra={
            'api': {'host': '127.0.0.1', 'port': port,
                    'auth_strategy': 'noauth2'}})
        for binary in ('nova-lite-conductor', 'nova-lite-scheduler',
                       'nova-lite-compute', 'nova-lite-inflight',
                       'nova-lite-api'):
            waiters.wait_for_service(db, 'dev1', binary)
        groups = _write_targets(conf_fixture, tmp_path / 'all.json')
        [group] = groups
        assert group['labels'] == {
            'topic': 'api,compute,conductor,inflight,scheduler',
            'host': 'dev1',
            'binary': 'nova-lite-api,nova-lite-compute,nova-lite-conductor,'
                      'nova-lite-inflight,nova-lite-scheduler'}
        prom = prom_server(tmp_path / 'all.json')
        prom.wait_for_targets(1)
        client = api.APIClient('http://127.0.0.1:%d' % port)
        api.wait_for_api(client)
        _build(client, 1, 'all')
        for topic, method in (('conductor', 'build_instance'),
                              ('compute', 'spawn')):
            prom.wait_for_value(_count('handling', topic=topic,
                                       method=method, host='dev1'), 1)
        # A process-wide series has no topic of its own: the target's.
        lag = prom.query('count by (topic) (nova_lite_hub_lag_seconds_count)')
        assert lag == [({'topic': group['labels']['topic']}, 1)]
        db.dispose()
