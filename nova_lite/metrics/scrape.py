"""What ``nova-lite-manage rpc stats`` computes from two scrapes.

Pure functions, no I/O: the command fetches each endpoint's ``/metrics``
twice, ``parse`` turns each text into the RPC server histograms, and
``window_rows`` turns the pairs into one row per topic and method::

    before = scrape.parse(text_at_t0)
    after = scrape.parse(text_at_t1)
    rows = scrape.window_rows([(before, after, t1 - t0)])

A row sums its series over kinds, outcomes and endpoints, as
``sum by (topic, method, le) (increase(...))`` would in PromQL, and its
quantiles come from those bucket deltas the way PromQL's
``histogram_quantile`` estimates them (linear inside a bucket).
"""

import collections
import math

from prometheus_client import parser

# Phase -> histogram (the names of nova_lite.metrics.registry).
PHASES = collections.OrderedDict([
    ('queue', 'nova_lite_rpc_server_queue_seconds'),
    ('executor_wait', 'nova_lite_rpc_server_executor_wait_seconds'),
    ('handling', 'nova_lite_rpc_server_handling_seconds'),
])
QUANTILES = (0.5, 0.99)
_PHASE_OF = {name: phase for phase, name in PHASES.items()}


def parse(text):
    """The RPC server histograms of one ``/metrics`` text.

    Returns ``{(phase, topic, method, kind, outcome): {le: cumulative
    count}}`` (``outcome`` is None for queue and executor_wait; ``le`` a
    float, ``math.inf`` last).  Raises ValueError on text that is not the
    Prometheus exposition format.
    """
    series = {}
    for family in parser.text_string_to_metric_families(text):
        phase = _PHASE_OF.get(family.name)
        if phase is None:
            continue
        for sample in family.samples:
            if sample.name != family.name + '_bucket':
                continue
            labels = sample.labels
            key = (phase, labels.get('topic', ''), labels.get('method', ''),
                   labels.get('kind', ''), labels.get('outcome'))
            series.setdefault(key, {})[float(labels['le'])] = sample.value
    return series


def delta(before, after):
    """``after - before`` per bucket of one series.

    A series that went down (its process restarted between the scrapes)
    counts from zero, as PromQL's ``increase`` does; one missing before
    (its first message came in the window) too.
    """
    if before is None or after.get(math.inf, 0) < before.get(math.inf, 0):
        return dict(after)
    return {le: count - before.get(le, 0) for le, count in after.items()}


def histogram_quantile(q, buckets):
    """PromQL's ``histogram_quantile(q, ...)`` over ``{le: cumulative}``.

    None when there is no observation.  Inside the bucket the rank falls
    in, the value is interpolated linearly from the bucket's lower bound
    (0 for the first bucket); a rank in the ``+Inf`` bucket gives the
    highest finite bound.
    """
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    # Buckets summed from several series may be off by a little; PromQL
    # forces them monotonic the same way.
    counts, highest = [], 0.0
    for le in bounds:
        highest = max(highest, buckets[le])
        counts.append(highest)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, in_bucket = 0.0, counts[index]
    if index > 0:
        start = bounds[index - 1]
        in_bucket -= counts[index - 1]
        rank -= counts[index - 1]
    return start + (bounds[index] - start) * (rank / in_bucket)


def _add(into, buckets):
    for le, count in buckets.items():
        into[le] = into.get(le, 0) + count


def window_rows(pairs):
    """One row per topic and method from ``[(before, after, seconds)]``.

    ``before`` and ``after`` are one endpoint's ``parse`` results,
    ``seconds`` apart.  Each row: ``topic``, ``method``, ``count``
    (handled in the window), ``rate`` (handled per second, each endpoint
    over its own window), ``errors`` (handled with an outcome other than
    ``ok``), and per phase ``{'p50': ms, 'p99': ms}`` (None without an
    observation).  Only methods that handled a message are listed, sorted
    by topic and method.
    """
    merged = {}
    for before, after, seconds in pairs:
        for key, buckets in after.items():
            phase, topic, method, _kind, outcome = key
            increase = delta(before.get(key), buckets)
            row = merged.setdefault((topic, method), {
                'count': 0, 'rate': 0.0, 'errors': 0,
                'buckets': {name: {} for name in PHASES}})
            _add(row['buckets'][phase], increase)
            if phase != 'handling':
                continue
            handled = increase.get(math.inf, 0)
            row['count'] += handled
            row['rate'] += handled / seconds if seconds > 0 else 0.0
            if outcome != 'ok':
                row['errors'] += handled
    rows = []
    for (topic, method), row in sorted(merged.items()):
        if not row['count']:
            continue
        out = {'topic': topic, 'method': method, 'count': int(row['count']),
               'rate': row['rate'], 'errors': int(row['errors'])}
        for phase in PHASES:
            out[phase] = {_quantile_key(q): _ms(histogram_quantile(
                q, row['buckets'][phase])) for q in QUANTILES}
        rows.append(out)
    return rows


def _quantile_key(q):
    return 'p%g' % (q * 100)


def _ms(seconds):
    return None if seconds is None else seconds * 1000.0
