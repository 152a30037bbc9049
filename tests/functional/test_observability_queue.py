"""Queue time against a known truth: a compute stopped with SIGSTOP while
casts queue for it.  Every cast waits at least from its send to SIGCONT,
and at most from its send to the moment this test sees it handled; the
server's queue histogram must put each one between those bounds."""

import signal
import time

from nova_lite import baserpc
from nova_lite import concurrency
from nova_lite import context
from nova_lite.metrics import registry
from nova_lite.testing import scrape
from tests.functional import test_observability_rpc as observability

STOPPED_SECONDS = 3.0
CASTS = 10


def bucket_counts(metrics, labels):
    """``{le: cumulative count}`` of the queue histogram for ``labels``."""
    return {bound: metrics.value('nova_lite_rpc_server_queue_seconds_bucket',
                                 le=str(float(bound)), **labels)
            for bound in registry.BUCKETS}


def test_queue_time_of_a_stopped_compute(factory, db, conf, client_rpc):
    daemon, address = observability.start_daemon(
        factory, db, 'nova-lite-compute', 'cpu1', observability.QUIET_HEALTH)
    labels = dict(topic='compute', method='ping', kind='cast')
    first = scrape.metrics(address)
    before = bucket_counts(first, labels)
    cctxt = baserpc.BaseRPCAPI(conf, 'compute').client.prepare(server='cpu1')
    ctxt = context.get_admin_context()

    daemon.signal(signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        sends = []      # (before, after) each cast: its stamp is between
        for n in range(CASTS):
            before_send = time.monotonic()
            cctxt.cast(ctxt, 'ping', arg=n)
            sends.append((before_send, time.monotonic()))
        last_sent = sends[-1][1]
        # The truth this test is about: the compute reads nothing for
        # STOPPED_SECONDS from the SIGSTOP on.
        concurrency.sleep(max(0.0, stopped_at + STOPPED_SECONDS -
                              time.monotonic()))
    finally:
        # Taken before the signal: the compute cannot read before it.
        resumed_at = time.monotonic()
        daemon.signal(signal.SIGCONT)
    # Every cast queued at least this long (sends take milliseconds; a
    # send slow enough to break the bound is reported, not hidden).
    least = resumed_at - last_sent
    assert least >= 2.5, 'casts took %.2fs to send' % (last_sent - stopped_at)

    metrics = observability.wait_handled(address, CASTS, **labels)
    seen_at = time.monotonic()
    most = seen_at - stopped_at
    after = bucket_counts(metrics, labels)
    delta = {bound: after[bound] - before[bound] for bound in after}
    print('\nqueue truth: each cast queued %.2f..%.2fs; cumulative buckets '
          '%s' % (least, most, {bound: count for bound, count in
                                 delta.items() if bound >= 1}))
    assert metrics.value('nova_lite_rpc_server_queue_seconds_count',
                         **labels) == CASTS
    # Their sum: each between SIGCONT and its send, and between the
    # moment this test saw them handled and its send.
    total = (metrics.value('nova_lite_rpc_server_queue_seconds_sum',
                           **labels) -
             first.value('nova_lite_rpc_server_queue_seconds_sum', **labels))
    assert sum(resumed_at - sent_by for _, sent_by in sends) <= total
    assert total <= sum(seen_at - sent_from for sent_from, _ in sends)
    # None in a bucket below the truth's lower bound (2.5 s)...
    below = max(bound for bound in registry.BUCKETS if bound <= least)
    assert delta[below] == 0, (least, delta)
    # ... and all of them at or under the first bucket above its upper
    # bound.
    above = min(bound for bound in registry.BUCKETS if bound >= most)
    assert delta[above] == CASTS, (most, delta)
