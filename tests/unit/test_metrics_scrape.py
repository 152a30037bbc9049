"""nova_lite.metrics.scrape: parsing /metrics and the window math."""

import math

import prometheus_client as prom
import pytest

from nova_lite.metrics import registry
from nova_lite.metrics import scrape

INF = math.inf


@pytest.mark.parametrize('q, buckets, expected', [
    # The rank falls exactly on the first bucket's top: its bound.
    (0.5, {0.1: 10, 0.2: 20, INF: 20}, 0.1),
    # Linear inside the bucket: 0.1 + 0.1 * (19.8 - 10) / 10.
    (0.99, {0.1: 10, 0.2: 20, INF: 20}, 0.198),
    # In the first bucket, from 0: 0.1 * 2.5 / 10.
    (0.25, {0.1: 10, 0.2: 10, INF: 10}, 0.025),
    # A rank in +Inf gives the highest finite bound.
    (0.5, {0.1: 1, 0.2: 1, INF: 10}, 0.2),
    (0.0, {0.1: 4, INF: 4}, 0.0),
    # Empty buckets are skipped: the rank's bucket is (0.25, 0.5].
    (0.5, {0.1: 0, 0.25: 0, 0.5: 2, INF: 2}, 0.375),
])
def test_histogram_quantile_as_promql(q, buckets, expected):
    assert scrape.histogram_quantile(q, buckets) == pytest.approx(expected)


@pytest.mark.parametrize('buckets', [
    {0.1: 0, INF: 0},           # no observation
    {0.1: 3, 0.2: 5},           # no +Inf bucket
    {INF: 3},                   # one bucket only
    {},
])
def test_histogram_quantile_none_without_data(buckets):
    assert scrape.histogram_quantile(0.5, buckets) is None


def test_histogram_quantile_forces_monotonic_buckets():
    """Summed across endpoints a higher bucket may come out lower; PromQL
    takes the running maximum."""
    buckets = {0.1: 2, 0.2: 6, 0.3: 5, 0.4: 8, INF: 8}
    # Read as 2, 6, 6, 8: the rank 7 is 1 of the 2 in (0.3, 0.4].
    assert scrape.histogram_quantile(0.875, buckets) == pytest.approx(0.35)


def test_delta_counts_a_reset_or_a_new_series_from_zero():
    before = {0.1: 5, INF: 7}
    assert scrape.delta(before, {0.1: 6, INF: 10}) == {0.1: 1, INF: 3}
    assert scrape.delta(before, {0.1: 1, INF: 2}) == {0.1: 1, INF: 2}
    assert scrape.delta(None, {0.1: 1, INF: 2}) == {0.1: 1, INF: 2}


def _exposition(observations):
    """/metrics text of a fresh registry holding the RPC server
    histograms (the names and labels of nova_lite.metrics.registry)."""
    reg = prom.CollectorRegistry()
    queue = prom.Histogram(registry.RPC_SERVER_QUEUE._name, 'q',
                           ['topic', 'method', 'kind'],
                           buckets=registry.BUCKETS, registry=reg)
    wait = prom.Histogram(registry.RPC_SERVER_EXECUTOR_WAIT._name, 'w',
                          ['topic', 'method', 'kind'],
                          buckets=registry.BUCKETS, registry=reg)
    handling = prom.Histogram(registry.RPC_SERVER_HANDLING._name, 'h',
                              ['topic', 'method', 'kind', 'outcome'],
                              buckets=registry.BUCKETS, registry=reg)
    other = prom.Counter('nova_lite_rpc_unstamped', 'u', ['topic', 'method'],
                         registry=reg)
    other.labels('conductor', 'build_instance').inc()
    for topic, method, kind, outcome, seconds in observations:
        queue.labels(topic, method, kind).observe(seconds)
        wait.labels(topic, method, kind).observe(seconds / 10)
        handling.labels(topic, method, kind, outcome).observe(seconds * 10)
    return prom.generate_latest(reg).decode()


def test_parse_keeps_the_rpc_server_histograms_only():
    series = scrape.parse(_exposition([
        ('conductor', 'build_instance', 'cast', 'ok', 0.003)]))
    assert set(series) == {
        ('queue', 'conductor', 'build_instance', 'cast', None),
        ('executor_wait', 'conductor', 'build_instance', 'cast', None),
        ('handling', 'conductor', 'build_instance', 'cast', 'ok')}
    queue = series[('queue', 'conductor', 'build_instance', 'cast', None)]
    assert sorted(queue) == sorted(registry.BUCKETS) + [INF]
    assert (queue[0.0025], queue[0.005], queue[INF]) == (0, 1, 1)


def test_parse_refuses_what_is_not_the_exposition_format():
    with pytest.raises(ValueError):
        scrape.parse('<html>not metrics</html>\n')


def test_window_rows_sum_endpoints_kinds_and_outcomes():
    old = [('conductor', 'build_instance', 'cast', 'ok', 0.003)] * 4
    a0 = scrape.parse(_exposition(old))
    a1 = scrape.parse(_exposition(
        old + [('conductor', 'build_instance', 'cast', 'ok', 0.003)] * 9 +
        [('conductor', 'build_instance', 'call', 'InstanceNotFound', 0.003),
         ('compute', 'spawn', 'cast', 'ok', 0.0004)]))
    # A second endpoint (another conductor), over 2 s.
    b0 = scrape.parse(_exposition([]))
    b1 = scrape.parse(_exposition(
        [('conductor', 'build_instance', 'cast', 'ok', 0.04)] * 10))
    rows = scrape.window_rows([(a0, a1, 5.0), (b0, b1, 2.0)])
    assert [(r['topic'], r['method']) for r in rows] == [
        ('compute', 'spawn'), ('conductor', 'build_instance')]
    spawn, build = rows
    assert (build['count'], build['errors']) == (20, 1)
    assert build['rate'] == pytest.approx(10 / 5.0 + 10 / 2.0)
    # queue: 10 at 3 ms (in (2.5, 5] ms), 10 at 40 ms (in (25, 50] ms).
    assert build['queue']['p50'] == pytest.approx(5.0)
    assert build['queue']['p99'] == pytest.approx(25 + 25 * 9.8 / 10)
    # handling: 10 at 30 ms (in (25, 50]), 10 at 400 ms (in (250, 500]).
    assert build['handling']['p50'] == pytest.approx(50.0)
    assert build['executor_wait']['p50'] == pytest.approx(0.5)
    assert (spawn['count'], spawn['errors']) == (1, 0)
    assert spawn['rate'] == pytest.approx(1 / 5.0)
    # One observation of 0.4 ms, in (0, 0.5] ms.
    assert spawn['queue'] == {'p50': pytest.approx(0.25),
                              'p99': pytest.approx(0.495)}


def test_window_rows_leave_out_methods_idle_in_the_window():
    text = _exposition([('compute', 'spawn', 'cast', 'ok', 0.01)])
    series = scrape.parse(text)
    assert scrape.window_rows([(series, series, 5.0)]) == []
