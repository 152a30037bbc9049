"""nova_lite.testing.prometheus: a Prometheus that cannot be had fails
loudly and at once (the functional tests turn that into a failure)."""

import time

import pytest

from nova_lite.testing import prometheus


def test_a_missing_binary_is_prometheus_unavailable(tmp_path):
    server = prometheus.PrometheusServer(tmp_path / 'targets.json',
                                         binary='no-such-prometheus')
    with pytest.raises(prometheus.PrometheusUnavailable,
                       match='no-such-prometheus is not installed'):
        server.setUp()


def test_a_server_that_exits_fails_at_once_with_its_log(tmp_path):
    # `false` starts and exits 1, like a Prometheus refusing its config.
    server = prometheus.PrometheusServer(tmp_path / 'targets.json',
                                         binary='false', start_timeout=60)
    started = time.monotonic()
    with pytest.raises(prometheus.PrometheusUnavailable,
                       match='it exited with 1'):
        server.setUp()
    assert time.monotonic() - started < 30


def test_the_config_scrapes_the_file_with_honor_labels(tmp_path):
    server = prometheus.PrometheusServer(tmp_path / 'targets.json',
                                         rule_files=[tmp_path / 'r.yml'],
                                         scrape_interval=1.0)
    config = server.config()
    assert config['global']['scrape_interval'] == '1s'
    assert config['rule_files'] == [str(tmp_path / 'r.yml')]
    [job] = config['scrape_configs']
    assert job['honor_labels'] is True
    assert job['file_sd_configs'] == [{
        'files': [str(tmp_path / 'targets.json')], 'refresh_interval': '1s'}]
