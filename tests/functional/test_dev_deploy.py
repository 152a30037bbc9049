"""README command 1: the local deployment, run as a user would."""

import configparser
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from nova_lite import concurrency
from nova_lite.testing import api


def test_deploy_starts_reports_and_stops_everything(rabbit, tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.dev', '--duration', '2',
         '--state-dir', str(tmp_path / 'dev'), '--transport-url', rabbit.url,
         '--api-port', str(api.free_port())],
        capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert rabbit.password not in out + result.stderr
    for binary, host in (('nova-lite-conductor', 'control1'),
                         ('nova-lite-scheduler', 'control1'),
                         ('nova-lite-inflight', 'control1'),
                         ('nova-lite-api', 'control1'),
                         ('nova-lite-compute', 'compute1'),
                         ('nova-lite-compute', 'compute2')):
        assert ('stopped %-20s host=%-9s exit=0' % (binary, host)) in out
    listing = [line for line in out.splitlines()
               if ' nova-lite-' in line and (' up ' in line or
                                             ' down ' in line)]
    assert listing and all(' up ' in line for line in listing), out
    # Built through the API.
    assert '/v2.1/servers -> 202, req-' in out
    assert ': active on compute' in out
    assert 'Inflight over the last' in out
    report = out.split('Inflight over the last', 1)[1]
    for host in ('compute1', 'compute2', 'control1'):
        assert host in report
    # Every daemon's endpoint, printed and in the file_sd file.
    printed = dict(re.findall(
        r'^metrics (nova-lite-\S+\s+host=\S+)\s+http://(\S+)/metrics',
        out, re.M))
    assert len(printed) == 6, out
    state = tmp_path / 'dev' / 'prometheus'
    groups = json.loads((state / 'nova-lite-targets.json').read_text())
    assert sorted(g['targets'][0] for g in groups) == sorted(
        printed.values())
    assert 'prometheus --config.file %s' % (state / 'prometheus.yml') in out
    # The config it prints for Prometheus is valid, rules included.
    promtool = shutil.which('promtool')
    if promtool is None:
        pytest.fail('promtool is not installed (apt-get install '
                    '--no-install-recommends prometheus)', pytrace=False)
    check = subprocess.run([promtool, 'check', 'config',
                            str(state / 'prometheus.yml')],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'SUCCESS: 1 rule files found' in check.stdout


# On the run's backend (--backend), so each backend's daemons reconnect to
# the cluster's nodes as a user's would.
def test_deploy_on_a_rabbit_cluster(rabbit_reachable_dir):
    state_dir = os.path.join(rabbit_reachable_dir, 'dev')
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.dev', '--duration', '2',
         '--state-dir', state_dir, '--rabbit-cluster', '3', '--computes',
         '1', '--backend', concurrency.BACKEND,
         '--api-port', str(api.free_port())],
        capture_output=True, text=True, timeout=400)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    conf = configparser.ConfigParser()
    conf.read(os.path.join(state_dir, 'nova-lite.conf'))
    url = conf['DEFAULT']['transport_url']
    assert url.count('@127.0.0.1:') == 3, url
    password = url.split('@')[0].rpartition(':')[2]
    assert password not in out + result.stderr
    assert conf['oslo_messaging_rabbit']['rabbit_quorum_queue'] == 'True'
    assert conf['oslo_messaging_rabbit'][
        'rabbit_transient_quorum_queue'] == 'True'
    assert 'RabbitMQ cluster up in' in out
    assert 'rabbit_cluster stop --state-dir %s' % os.path.join(
        state_dir, 'rabbit-cluster') in out
    pids = [int(pid) for pid in re.findall(
        r'^  node \S+ port \d+ pid (\d+)$', out, re.M)]
    assert len(pids) == 3, out
    assert ': active on compute1' in out
    assert 'stopped nova-lite-compute    host=compute1  exit=0' in out
    assert 'stopped the RabbitMQ cluster (3 nodes)' in out
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert os.listdir(os.path.join(state_dir, 'rabbit-cluster')) == []
