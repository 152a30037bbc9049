"""etc/prometheus: promtool checks the rules and the example config, and
``promtool test rules`` runs every recording rule and alert on made-up
series.  promtool is a real component (Debian ``prometheus``, which
bin/nova-lite-dev test installs): missing, these tests fail."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

ETC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, 'etc',
                   'prometheus')
RULES = os.path.abspath(os.path.join(ETC, 'nova-lite-rules.yml'))
CONFIG = os.path.abspath(os.path.join(ETC, 'prometheus.yml'))


@pytest.fixture(scope='module')
def promtool():
    path = shutil.which('promtool')
    if path is None:
        pytest.fail('promtool is not installed: apt-get install '
                    '--no-install-recommends prometheus (bin/nova-lite-dev '
                    'test does)', pytrace=False)
    return path


def _promtool(promtool, *args):
    return subprocess.run([promtool] + list(args), capture_output=True,
                          text=True, timeout=60)


def test_promtool_checks_the_rules(promtool):
    result = _promtool(promtool, 'check', 'rules', RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SUCCESS: 12 rules found' in result.stdout


def test_promtool_checks_the_example_config(promtool):
    result = _promtool(promtool, 'check', 'config', CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    # It loads the rules beside it, too.
    assert 'SUCCESS: 1 rule files found' in result.stdout
    with open(CONFIG) as handle:
        [job] = yaml.safe_load(handle)['scrape_configs']
    assert job['honor_labels'] is True
    assert job['file_sd_configs'][0]['files']


def _series(name, labels, values):
    text = ','.join('%s="%s"' % item for item in sorted(labels.items()))
    return {'series': '%s{%s}' % (name, text), 'values': values}


def _histogram(name, labels, buckets):
    """``buckets``: ``{le: values}`` in promtool's expanding notation;
    ``_count`` is the +Inf bucket."""
    return [_series(name + '_bucket', dict(labels, le=le), values)
            for le, values in buckets.items()] + [
        _series(name + '_count', labels, buckets['+Inf'])]


TARGET = {'job': 'nova_lite', 'instance': '127.0.0.1:9101',
          'host': 'cpu1', 'binary': 'nova-lite-compute'}


def _alert(name, labels):
    return {'exp_labels': dict(labels, alertname=name)}


def _rule_tests():
    """Every rule, on series that trip it and series that must not."""
    slow = {'topic': 'compute', 'method': 'spawn', 'kind': 'cast'}
    fast = {'topic': 'conductor', 'method': 'build_instance',
            'kind': 'cast'}
    series = []
    # 10 spawns a minute, all queued for between 1 and 2.5 s.
    series += _histogram('nova_lite_rpc_server_queue_seconds', slow, {
        '1': '0+0x30', '2.5': '0+10x30', '+Inf': '0+10x30'})
    # 60 builds a minute, queued under 5 ms.
    series += _histogram('nova_lite_rpc_server_queue_seconds', fast, {
        '0.0025': '0+0x30', '0.005': '0+60x30', '+Inf': '0+60x30'})
    series += _histogram('nova_lite_rpc_server_handling_seconds',
                         dict(fast, outcome='ok'), {
                             '0.01': '0+0x30', '0.025': '0+54x30',
                             '+Inf': '0+54x30'})
    series += _histogram('nova_lite_rpc_server_handling_seconds',
                         dict(fast, outcome='NoValidHost'), {
                             '0.01': '0+0x30', '0.025': '0+6x30',
                             '+Inf': '0+6x30'})
    # The hub of cpu1's compute lags 100-250 ms; cpu2's under 1 ms.
    series += _histogram('nova_lite_hub_lag_seconds',
                         dict(TARGET, topic='compute'), {
        '0.1': '0+0x30', '0.25': '0+600x30', '+Inf': '0+600x30'})
    series += _histogram('nova_lite_hub_lag_seconds', dict(
        TARGET, instance='127.0.0.1:9102', host='cpu2', topic='compute'), {
            '0.001': '0+600x30', '+Inf': '0+600x30'})
    # cpu1 stops answering the probe at minute 2; cpu2 answers one of
    # two probers (enough); cpu3's endpoint goes down at minute 1.
    inflight = {'job': 'nova_lite', 'instance': '127.0.0.1:9200',
                'binary': 'nova-lite-inflight'}
    series += [
        _series('nova_lite_service_reachable', dict(
            inflight, topic='compute', host='cpu1'), '1 1 0x20'),
        _series('nova_lite_service_reachable', dict(
            inflight, topic='compute', host='cpu2'), '0x20'),
        _series('nova_lite_service_reachable', dict(
            inflight, instance='127.0.0.1:9201', topic='compute',
            host='cpu2'), '1x20'),
        _series('up', dict(TARGET, instance='127.0.0.1:9103', host='cpu3'),
                '1 0x20'),
        _series('up', TARGET, '1x20'),
        # i1 loses etcd at minute 2; i2 never does.  i1's rounds overrun
        # once a minute; i2's once.
        _series('nova_lite_inflight_coordination_fallback', dict(
            inflight, host='i1'), '0 0 1x20'),
        _series('nova_lite_inflight_coordination_fallback', dict(
            inflight, instance='127.0.0.1:9201', host='i2'), '0x22'),
        _series('nova_lite_inflight_round_overruns_total', dict(
            inflight, host='i1'), '0+1x30'),
        _series('nova_lite_inflight_round_overruns_total', dict(
            inflight, instance='127.0.0.1:9201', host='i2'), '0 1x30'),
    ]
    return [{
        'interval': '1m',
        'input_series': series,
        'promql_expr_test': [
            {'expr': 'nova_lite:rpc_server_queue_seconds:p99_5m',
             'eval_time': '10m',
             'exp_samples': [
                 {'labels': 'nova_lite:rpc_server_queue_seconds:p99_5m'
                            '{topic="compute",method="spawn"}',
                  'value': 2.485},
                 {'labels': 'nova_lite:rpc_server_queue_seconds:p99_5m'
                            '{topic="conductor",method="build_instance"}',
                  'value': 0.004975}]},
            {'expr': 'nova_lite:rpc_server_handling_seconds:p99_5m',
             'eval_time': '10m',
             'exp_samples': [
                 {'labels': 'nova_lite:rpc_server_handling_seconds:p99_5m'
                            '{topic="conductor",method="build_instance"}',
                  'value': 0.02485}]},
            {'expr': 'nova_lite:rpc_server_handled:rate5m{topic='
                     '"conductor"}',
             'eval_time': '10m',
             'exp_samples': [
                 {'labels': 'nova_lite:rpc_server_handled:rate5m'
                            '{topic="conductor",method="build_instance"}',
                  'value': 1.0}]},
            {'expr': 'nova_lite:rpc_server_errors:rate5m',
             'eval_time': '10m',
             'exp_samples': [
                 {'labels': 'nova_lite:rpc_server_errors:rate5m'
                            '{topic="conductor",method="build_instance"}',
                  'value': 0.1}]},
        ],
        'alert_rule_test': [
            # Pending for 10 minutes first.
            {'eval_time': '9m', 'alertname': 'NovaLiteRPCQueueTimeHigh',
             'exp_alerts': []},
            {'eval_time': '12m', 'alertname': 'NovaLiteRPCQueueTimeHigh',
             'exp_alerts': [_alert('NovaLiteRPCQueueTimeHigh', {
                 'severity': 'warning', 'topic': 'compute',
                 'method': 'spawn'})]},
            {'eval_time': '8m', 'alertname': 'NovaLiteHubLagHigh',
             # Per process: by instance, with the target's labels.
             'exp_alerts': [_alert('NovaLiteHubLagHigh', {
                 'severity': 'warning', 'instance': '127.0.0.1:9101',
                 'topic': 'compute', 'host': 'cpu1',
                 'binary': 'nova-lite-compute'})]},
            {'eval_time': '6m',
             'alertname': 'NovaLiteInflightCoordinationFallback',
             'exp_alerts': []},
            {'eval_time': '8m',
             'alertname': 'NovaLiteInflightCoordinationFallback',
             'exp_alerts': [_alert('NovaLiteInflightCoordinationFallback',
                                   dict(inflight, host='i1',
                                        severity='warning'))]},
            {'eval_time': '5m', 'alertname': 'NovaLiteInflightRoundsOverrun',
             'exp_alerts': []},
            {'eval_time': '14m',
             'alertname': 'NovaLiteInflightRoundsOverrun',
             'exp_alerts': [_alert('NovaLiteInflightRoundsOverrun',
                                   dict(inflight, host='i1',
                                        severity='warning'))]},
            {'eval_time': '3m', 'alertname': 'NovaLiteServiceUnreachable',
             'exp_alerts': []},
            {'eval_time': '5m', 'alertname': 'NovaLiteServiceUnreachable',
             'exp_alerts': [_alert('NovaLiteServiceUnreachable', {
                 'severity': 'critical', 'topic': 'compute',
                 'host': 'cpu1'})]},
            {'eval_time': '4m', 'alertname': 'NovaLiteMetricsEndpointDown',
             'exp_alerts': [_alert('NovaLiteMetricsEndpointDown', dict(
                 TARGET, instance='127.0.0.1:9103', host='cpu3',
                 severity='warning'))]},
        ],
    }]


def test_promtool_runs_every_rule(promtool, tmp_path):
    with open(RULES) as handle:
        rules = yaml.safe_load(handle)
    # The annotations' templates are promtool check rules' business; here
    # the alerts are compared on their labels only.
    for group in rules['groups']:
        for rule in group['rules']:
            rule.pop('annotations', None)
    rules_path = tmp_path / 'rules.yml'
    rules_path.write_text(json.dumps(rules))      # JSON is YAML
    tests_path = tmp_path / 'tests.yml'
    tests_path.write_text(json.dumps({
        'rule_files': [str(rules_path)], 'evaluation_interval': '1m',
        'tests': _rule_tests()}))
    result = _promtool(promtool, 'test', 'rules', str(tests_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'SUCCESS' in result.stdout
