"""Inflight manager: probes every registered service, every interval.

Each round reads the services table and probes **all** of them through the
``baseapi.inflight`` call, down and disabled ones included, at most
``[inflight] max_concurrent_pings`` at a time and each bounded by
``ping_timeout``.  The start of the list rotates by one every round, so a
slow service is not always probed last.  A timeout is counted, never fatal;
a stuck service holds one pool slot for ``ping_timeout`` and no more.
"""

import threading
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import baserpc
from nova_lite import exception
from nova_lite.inflight import clocks
from nova_lite.inflight import probe
from nova_lite.inflight import queues
from nova_lite.inflight import sinks
from nova_lite import manager
from nova_lite import concurrency

LOG = logging.getLogger(__name__)


def round_robin(items, round_no):
    """``items`` rotated left by ``round_no`` (mod its length)."""
    if not items:
        return []
    offset = round_no % len(items)
    return items[offset:] + items[:offset]


class InflightManager(manager.Manager):
    """Server side of the inflight RPC API (see ``InflightRPCAPI``)."""

    target = messaging.Target(version='1.0')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._round_no = 0
        # One round at a time: the periodic round and probe_now() share the
        # queue inspector's broker connection and the round-robin offset.
        self._round_lock = threading.Lock()
        self._clients = {}
        self._sinks = []
        self._queues = None
        self._clocks = None

    def init_host(self):
        opts = self.conf.inflight
        if opts.ping_timeout <= opts.sleep_seconds:
            raise exception.ConfigError(
                reason='[inflight] ping_timeout (%s) must be greater than '
                       'sleep_seconds (%s), or every probe times out' % (
                           opts.ping_timeout, opts.sleep_seconds))
        # A round starts every probe_interval, or when the last one ended
        # (bounded by about ping_timeout) if that is later.
        self._clocks = clocks.ClockBook(
            self.host, clocks.FILTER_ROUNDS * max(opts.probe_interval,
                                                  opts.ping_timeout))
        self._sinks = [sinks.DatabaseSink(self.conf, self.db, self._clocks),
                       sinks.ClockSink(self.db, self._clocks),
                       sinks.PrometheusSink(self.conf)]
        if self.conf.statsd.enabled:
            self._sinks.append(sinks.StatsdSink(self.conf))
        self._queues = queues.QueueInspector(self.conf)

    def cleanup_host(self):
        if self._queues is not None:
            self._queues.close()

    def _client(self, topic):
        if topic not in self._clients:
            self._clients[topic] = baserpc.BaseRPCAPI(self.conf, topic)
        return self._clients[topic]

    @manager.periodic_task(spacing=lambda conf: conf.inflight.probe_interval,
                            run_immediately=True)
    def _probe_periodically(self, context):
        self._run_round(context)

    def probe_now(self, context):
        """Call: run a probe round now (after the one running, if any);
        returns its summary (no samples)."""
        summary = self._run_round(context)
        summary.pop('samples')
        return summary

    def _probe_service(self, context, service):
        return probe.probe(self._client(service['topic']), context,
                           service['topic'], host=service['host'],
                           sleep=self.conf.inflight.sleep_seconds,
                           timeout=self.conf.inflight.ping_timeout)

    def _run_round(self, context):
        with self._round_lock:
            return self._run_round_locked(context)

    def _run_round_locked(self, context):
        self._round_no += 1
        started = time.monotonic()
        self._measure_reference()
        services = round_robin(self.db.service_get_all(), self._round_no)
        samples = concurrency.map_concurrently(
            lambda svc: self._probe_service(context, svc), services,
            self.conf.inflight.max_concurrent_pings)
        depths = self._queues.depths(sorted({s['topic'] for s in services}))
        for sink in self._sinks:
            try:
                sink.emit(samples, depths, services)
            except Exception:
                LOG.exception('Inflight sink %s failed', type(sink).__name__)
        summary = self._summarize(samples, depths,
                                  time.monotonic() - started)
        self._log_round(summary, samples)
        return summary

    def _measure_reference(self):
        """This host's clock offset to the database server's, into the
        clock book; a failure is logged, and the round goes on."""
        try:
            measured = self.db.reference_offset(clocks.REFERENCE_PROBES)
        except Exception:  # noqa: BLE001 - the probes matter more
            LOG.warning('Could not read the database server\'s clock',
                        exc_info=True)
            return
        self._clocks.add_reference(clocks.Offset(**measured))

    def _summarize(self, samples, depths, duration):
        answered = [s for s in samples if s.answered]
        return {
            'round': self._round_no, 'services': len(samples),
            'answered': len(answered),
            'timeouts': sum(1 for s in samples if s.timed_out),
            'errors': sum(1 for s in samples if s.error),
            'skewed': sum(1 for s in answered if s.skew),
            'duration': duration, 'queues': depths,
            'order': ['%s@%s' % (s.topic, s.host) for s in samples],
            'samples': samples,
        }

    def _log_round(self, summary, samples):
        for sample in samples:
            LOG.debug('inflight %s@%s: %s', sample.topic, sample.host,
                      sample.as_dict())
        answered = [s for s in samples if s.answered]
        slowest = max(answered, key=lambda s: s.total or 0.0, default=None)
        depth = ' '.join('%s=%s' % (topic, d['messages'])
                         for topic, d in summary['queues'].items() if d)
        LOG.info('Inflight round %d: %d services, %d answered, %d timed out, '
                 '%d errors, %d clock-skewed in %.2fs; slowest %s; queue '
                 'depth %s', summary['round'], summary['services'],
                 summary['answered'], summary['timeouts'],
                 summary['errors'], summary['skewed'], summary['duration'],
                 '%s@%s %.1f ms' % (slowest.topic, slowest.host,
                                    slowest.total or 0.0) if slowest else '-',
                 depth or '-')
