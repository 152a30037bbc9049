"""Inflight manager: probes its share of the cloud's services, every
round.

Rounds are aligned to the wall clock: round k covers [k * probe_interval,
(k + 1) * probe_interval), and a loop of its own (a green or native
thread, started once the service consumes) runs round k at its start.
Each round reads the cloud's service list (``nova_lite.inflight.services``:
nova_lite's own services table, or a real Nova's) and probes the enabled
RPC services (not Nova's API services) the probing group's ring gives this
daemon in round k
(``nova_lite.inflight.ring``: several inflight daemons share the work;
alone, one probes everything), down ones included, at most
``[inflight] max_concurrent_pings`` at a time and each bounded by
``ping_timeout``.  A service is probed with ``baseapi.inflight`` (the
four-way split) where its first ping's reply shows it is nova_lite's,
else with ``baseapi.ping`` (a round trip only; every Nova service):
``nova_lite.inflight.methods``.  The
start of the list rotates by one every round, so a slow service is not
always probed last.  A timeout is counted, never fatal; a stuck service
holds one pool slot for ``ping_timeout`` and no more.

Each sample also gets what the round saw of its service: the heartbeat's
verdict and age (from the list), the ready and unacknowledged messages
and the consumers of its ``topic.host`` queue (``nova_lite.inflight.
queues``), and the flags (``nova_lite.inflight.verdicts``:
unreachable, no_consumers, slow).

A round that ends after its interval is an overrun: counted
(``nova_lite_inflight_round_overruns_total``), logged, and the next round
starts at the next boundary, so rounds never overlap (the rounds skipped
meanwhile are not run).  ``probe_now`` (RPC) probes everything, outside
the ring, under the same round lock; its samples have no round number.
"""

import os
import threading
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import baserpc
from nova_lite import exception
from nova_lite.inflight import clocks
from nova_lite.inflight import methods
from nova_lite.inflight import queues
from nova_lite.inflight import ring
from nova_lite.inflight import services as services_source
from nova_lite.inflight import sinks
from nova_lite.inflight import verdicts
from nova_lite import context as nova_context
from nova_lite import manager
from nova_lite.metrics import registry
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
        # Rounds this daemon ran (ring rounds and probe_now's): the
        # round-robin offset.
        self._round_no = 0
        # One round at a time: the ring's round and probe_now() share the
        # queue inspector's broker connection and the round-robin offset.
        self._round_lock = threading.Lock()
        self._clients = {}
        self._sinks = []
        self._statsd = None
        self._queues = None
        self._clocks = None
        # This daemon's name in the probing group and on its samples.
        self.prober = ring.prober_name(self.host, os.getpid())
        self._ring = None
        self._rounds = None
        self._stop_rounds = concurrency.Event()
        self._rebalances_sent = 0
        # How each (topic, host) is probed: inflight, or ping.
        self._methods = methods.MethodBook()
        # () -> the cloud's services (see use_services), and the source
        # it is from when this manager made it (closed at the end).
        self._list_services = None
        self._source = None

    def use_services(self, list_services):
        """Take the service list from ``list_services()`` (dicts with the
        keys of ``nova_lite.inflight.services.KEYS``) instead of
        ``services.source(conf, db)``; before ``init_host``."""
        self._list_services = list_services

    def init_host(self):
        opts = self.conf.inflight
        if opts.ping_timeout <= opts.sleep_seconds:
            raise exception.ConfigError(
                reason='[inflight] ping_timeout (%s) must be greater than '
                       'sleep_seconds (%s), or every probe times out' % (
                           opts.ping_timeout, opts.sleep_seconds))
        ring.validate(self.conf)
        # A round starts every probe_interval, or when the last one ended
        # (bounded by about ping_timeout) if that is later.
        self._clocks = clocks.ClockBook(
            self.host, clocks.FILTER_ROUNDS * max(opts.probe_interval,
                                                  opts.ping_timeout))
        self._sinks = [sinks.DatabaseSink(self.conf, self.db, self._clocks),
                       sinks.ClockSink(self.db, self._clocks),
                       sinks.PrometheusSink(self.conf)]
        if self.conf.statsd.enabled:
            self._statsd = sinks.StatsdSink(self.conf)
            self._sinks.append(self._statsd)
        self._queues = queues.inspector(self.conf)
        if self._list_services is None:
            self._source = services_source.source(self.conf, self.db)
            self._list_services = self._source.list_services

    def post_start_hook(self):
        self.start_probing()

    def cleanup_host(self):
        self.stop_probing()
        if self._queues is not None:
            self._queues.close()
        if self._source is not None:
            self._source.close()

    def start_probing(self, probe_ring=None):
        """Join the probing group (``probe_ring``: a ``ProbeRing``, made
        here when None), then run the rounds on a thread of their own."""
        self._ring = probe_ring or ring.ProbeRing(self.conf, self.prober)
        self._ring.start()
        self._rounds = concurrency.spawn(self._round_loop)

    def stop_probing(self):
        """Leave the group at once (the others take over from their next
        round), then let the round running, if any, finish."""
        self._stop_rounds.set()
        if self._ring is not None:
            self._ring.stop()
        if self._rounds is not None and not self._rounds.join(
                self.conf.inflight.ping_timeout + 1.0):
            LOG.warning('The inflight round still runs; stopping anyway')

    def _client(self, topic):
        if topic not in self._clients:
            self._clients[topic] = baserpc.BaseRPCAPI(self.conf, topic)
        return self._clients[topic]

    def _round_loop(self):
        """Round k at k * probe_interval, for every k until stopped; the
        first one (the round now) at once."""
        round_no = self._ring.round_of(time.time())
        while not self._stop_rounds.is_set():
            self._ring_round(round_no)
            round_no = self._wait_for_next(round_no)

    def _ring_round(self, round_no):
        started = time.monotonic()
        try:
            # A fresh request_id per round, so that its RPC and log lines
            # can be told apart.
            summary = self._run_round(nova_context.get_admin_context(),
                                      round_no)
        except Exception:  # noqa: BLE001 - the next round tries again
            LOG.exception('Inflight round %d failed', round_no)
            summary = None
        duration = time.monotonic() - started
        registry.INFLIGHT_ROUND_SECONDS.observe(duration)
        overrun = time.time() >= (round_no + 1) * self._ring.interval
        if overrun:
            registry.INFLIGHT_ROUND_OVERRUNS.inc()
            LOG.warning('Inflight round %d took %.2fs, longer than its '
                        '%ss interval; the next round starts at the next '
                        'boundary', round_no, duration, self._ring.interval)
        self._emit_ring_stats(summary, duration, overrun)

    def _wait_for_next(self, done):
        """Wait for the boundary after the round ``done`` ended (woken
        early by stop_probing); returns that round's number."""
        interval = self._ring.interval
        # Never a round number twice, even if the clock stepped back.
        round_no = max(done, self._ring.round_of(time.time())) + 1
        # The wall clock, checked again after each wait: a step of the
        # clock moves the boundary.
        while True:
            left = round_no * interval - time.time()
            if left <= 0 or self._stop_rounds.wait(left):
                return round_no

    def _emit_ring_stats(self, summary, duration, overrun):
        if self._statsd is None:
            return
        rebalances = self._ring.rebalances
        try:
            self._statsd.emit_ring(
                self.host, members=self._ring.members(),
                owned=None if summary is None else summary['services'],
                fallback=self._ring.fallback,
                rebalances=rebalances - self._rebalances_sent,
                overrun=overrun, seconds=duration)
        except Exception:  # noqa: BLE001 - statsd is best effort
            LOG.exception('Inflight sink StatsdSink failed')
        self._rebalances_sent = rebalances

    def probe_now(self, context):
        """Call: probe every service now, outside the ring (after the
        round running, if any); returns the summary (no samples)."""
        summary = self._run_round(context)
        summary.pop('samples')
        return summary

    def _probe_service(self, context, service):
        return self._methods.probe(self._client(service['topic']), context,
                                   service['topic'], host=service['host'],
                                   sleep=self.conf.inflight.sleep_seconds,
                                   timeout=self.conf.inflight.ping_timeout)

    def _services(self):
        """The services of the cloud to probe (``services.to_probe``);
        the method book forgets the others."""
        listed = self._list_services()
        self._methods.forget_others((s['topic'], s['host']) for s in listed)
        return services_source.to_probe(listed)

    def _run_round(self, context, round_no=None):
        """Probe this daemon's share of wall-clock round ``round_no``, or
        every service when None (probe_now)."""
        with self._round_lock:
            return self._run_round_locked(context, round_no)

    def _run_round_locked(self, context, round_no):
        self._round_no += 1
        started = time.monotonic()
        self._measure_reference()
        services = self._services()
        if round_no is not None:
            services = self._ring.share(services, round_no)
        services = round_robin(services, self._round_no)
        samples = concurrency.map_concurrently(
            lambda svc: self._probe_service(context, svc), services,
            self.conf.inflight.max_concurrent_pings)
        # After the probes: a frozen service's probe is then in its queue
        # (``topic.host``, which is also the service's ring key).
        depths = self._queues.depths(
            sorted({s['topic'] for s in services}) +
            sorted({ring.service_key(s) for s in services}))
        for sample, service in zip(samples, services):
            sample.prober = self.prober
            sample.round_no = round_no
            _annotate(sample, service, depths)
        verdicts.flag_round(samples, self.conf.inflight.slow_factor,
                            self.conf.inflight.slow_floor_ms)
        for sink in self._sinks:
            try:
                sink.emit(samples, depths, services)
            except Exception:
                LOG.exception('Inflight sink %s failed', type(sink).__name__)
        summary = self._summarize(samples, depths,
                                  time.monotonic() - started, round_no)
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

    def _summarize(self, samples, depths, duration, round_no):
        answered = [s for s in samples if s.answered]
        return {
            'round': self._round_no, 'round_no': round_no,
            'prober': self.prober, 'services': len(samples),
            'answered': len(answered),
            'timeouts': sum(1 for s in samples if s.timed_out),
            'flagged': {'%s@%s' % (s.topic, s.host): s.flags
                        for s in samples if s.flags},
            'errors': sum(1 for s in samples if s.error),
            'skewed': sum(1 for s in answered if s.skew),
            'duration': duration, 'queues': depths,
            'order': ['%s@%s' % (s.topic, s.host) for s in samples],
            'samples': samples,
        }

    def _log_round(self, summary, samples):
        if summary['flagged']:
            LOG.warning('Inflight round %s flagged %s', summary['round_no'],
                        ', '.join('%s (%s)' % (name, ','.join(flags))
                                  for name, flags in
                                  sorted(summary['flagged'].items())))
        for sample in samples:
            LOG.debug('inflight %s@%s: %s', sample.topic, sample.host,
                      sample.as_dict())
        answered = [s for s in samples if s.answered]
        slowest = max(answered, key=lambda s: s.total or 0.0, default=None)
        depth = ' '.join('%s=%s' % (topic, d['messages'])
                         for topic, d in summary['queues'].items() if d)
        LOG.info('Inflight round %s: %d services, %d answered, %d timed out, '
                 '%d errors, %d clock-skewed in %.2fs; slowest %s; queue '
                 'depth %s', 'now' if summary['round_no'] is None
                 else summary['round_no'], summary['services'],
                 summary['answered'], summary['timeouts'],
                 summary['errors'], summary['skewed'], summary['duration'],
                 '%s@%s %.1f ms' % (slowest.topic, slowest.host,
                                    slowest.total or 0.0) if slowest else '-',
                 depth or '-')


def _annotate(sample, service, depths):
    """What the round knows of ``service`` besides its probe, onto its
    ``sample``: who it is, its heartbeat, its queue."""
    # A ping's or a timeout's reply does not say.
    sample.host = sample.host or service['host']
    sample.binary = sample.binary or service['binary']
    sample.up = service['status'] == 'up'
    sample.heartbeat_age = service.get('heartbeat_age')
    depth = depths.get(ring.service_key(service))
    if depth is not None:
        sample.queue_messages = depth['messages']
        sample.queue_unacked = depth.get('unacked')
        sample.queue_consumers = depth['consumers']
