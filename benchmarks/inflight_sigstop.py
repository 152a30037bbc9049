"""Inflight benchmark case 6: a stopped compute, and what its /metrics say.

The truth is made, not assumed: the compute daemon is stopped (SIGSTOP) for
``stop`` seconds while ``pings`` inflight probes are sent to it, then
continued (SIGCONT).  No message can leave the broker into a stopped
process, so each probe's queue time is at least the time from its sending
to the SIGCONT (the truth; the prober and the daemon share this host's
clock).  Its handler then sleeps the probe's ``sleep``.

Measured: the daemon's own histograms on its /metrics (at the
``metrics_address`` of its services row), before and after, for
``{topic="compute", method="inflight", kind="call"}``:
``nova_lite_rpc_server_queue_seconds`` must count every probe above
``BOUND`` (a bucket bound), and ``nova_lite_rpc_server_handling_seconds``
must hold the sleep within +-10% (its mean, from _sum / _count: the
buckets are too coarse for that).
"""

import os
import signal
import statistics
import time

QUEUE = 'nova_lite_rpc_server_queue_seconds'
HANDLING = 'nova_lite_rpc_server_handling_seconds'
BOUND = 2.5
TARGET_ERROR = 0.10


def _histograms(address):
    """``{(histogram, 'count'|'sum'|'above'): value}`` for the probes'
    series (``above``: observations greater than BOUND)."""
    from nova_lite.testing import scrape

    metrics = scrape.metrics(address)
    labels = {'topic': 'compute', 'method': 'inflight', 'kind': 'call'}
    values = {}
    for name, extra in ((QUEUE, {}), (HANDLING, {'outcome': 'ok'})):
        count = metrics.value(name + '_count', **labels, **extra)
        values[name, 'count'] = count
        values[name, 'sum'] = metrics.value(name + '_sum', **labels, **extra)
        values[name, 'above'] = count - metrics.value(
            name + '_bucket', le=str(BOUND), **labels, **extra)
    return values


def run(bench, ctxt, base, daemon, pings=10, stop=3.0, sleep=1.0):
    """Stop ``daemon`` ``stop`` s while ``pings`` probes queue; a dict of
    truths and measurements."""
    from nova_lite.inflight import probe
    from nova_lite import concurrency

    row = bench.db.service_get(daemon.host, 'nova-lite-compute')
    address = row['metrics_address']
    if not address:
        raise SystemExit('%s has no metrics_address in its row' %
                         daemon.host)
    before = _histograms(address)
    os.kill(daemon.pid, signal.SIGSTOP)
    stopped_at = time.time()
    try:
        probes = [concurrency.spawn(probe.probe, base, ctxt, 'compute',
                                    host=daemon.host, sleep=sleep,
                                    timeout=stop + 30)
                  for _ in range(pings)]
        concurrency.sleep(max(0.0, stopped_at + stop - time.time()))
    finally:
        continued_at = time.time()
        os.kill(daemon.pid, signal.SIGCONT)
    samples = [p.wait() for p in probes]
    # Every reply has come back, so the daemon observed every probe (it
    # observes before it replies).
    after = _histograms(address)
    delta = {key: after[key] - before[key] for key in after}
    truths = [continued_at - s.sent_at for s in samples]
    return {
        'address': address, 'pings': pings, 'stop': stop, 'sleep': sleep,
        'answered': sum(1 for s in samples if s.answered),
        'truth_min': min(truths), 'truth_mean': statistics.mean(truths),
        'truth_median': statistics.median(truths),
        'truth_above': sum(1 for t in truths if t > BOUND),
        'queue_count': delta[QUEUE, 'count'],
        'queue_above': delta[QUEUE, 'above'],
        'queue_mean': _mean(delta, QUEUE),
        'to_service_median': statistics.median(
            s.to_service / 1000.0 for s in samples
            if s.to_service is not None) if any(
                s.to_service is not None for s in samples) else None,
        'handling_count': delta[HANDLING, 'count'],
        'handling_mean': _mean(delta, HANDLING),
    }


def _mean(delta, name):
    count = delta[name, 'count']
    return delta[name, 'sum'] / count if count else None


def _err(measured, truth):
    if measured is None:
        return float('inf')
    return abs(measured - truth) / truth


def _s(value):
    return 'n/a' if value is None else '%.3f' % value


def report(backend, result):
    """Print the truth against the daemon's histograms; the checks."""
    print('6. compute stopped (SIGSTOP) %.1f s while %d inflight probes '
          '(%.1f s sleep) queued for it; its /metrics at %s, before and '
          'after' % (result['stop'], result['pings'], result['sleep'],
                     result['address']))
    print('  %-40s %12s %12s %8s' % ('', 'truth', 'measured', 'error'))
    rows = [
        ('probes queued > %.1f s (queue buckets)' % BOUND,
         '%d' % result['truth_above'], '%d' % result['queue_above'], ''),
        ('probes in the queue histogram', '%d' % result['pings'],
         '%d' % result['queue_count'], ''),
        ('queue s, mean (_sum/_count)', _s(result['truth_mean']),
         _s(result['queue_mean']), '%.1f%%' % (100 * _err(
             result['queue_mean'], result['truth_mean']))),
        ('probe\'s to_service s, median', _s(result['truth_median']),
         _s(result['to_service_median']), '%.1f%%' % (100 * _err(
             result['to_service_median'], result['truth_median']))),
        ('probes in the handling histogram (ok)', '%d' % result['pings'],
         '%d' % result['handling_count'], ''),
        ('handling s, mean (_sum/_count)', _s(result['sleep']),
         _s(result['handling_mean']), '%.1f%%' % (100 * _err(
             result['handling_mean'], result['sleep']))),
    ]
    for title, truth, measured, error in rows:
        print('  %-40s %12s %12s %8s' % (title, truth, measured, error))
    print('  (truth: from each probe\'s sending to the SIGCONT, min %.3f s; '
          'answered %d of %d)' % (result['truth_min'], result['answered'],
                                  result['pings']))
    return [
        ('%s: SIGSTOP %.0f s, every probe counted in queue > %.1f s' % (
            backend, result['stop'], BOUND),
         result['queue_above'] == result['pings'] == result['truth_above']
         and result['queue_count'] == result['pings']),
        ('%s: SIGSTOP, handling holds the %.1f s sleep within +-10%%' % (
            backend, result['sleep']),
         result['handling_count'] == result['pings'] and
         _err(result['handling_mean'], result['sleep']) <= TARGET_ERROR),
    ]
