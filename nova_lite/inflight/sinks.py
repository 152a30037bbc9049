"""Where probe rounds go: statsd, Prometheus, the database (samples and
each host's clock offset), the log.

Every sink has ``emit(samples, queues, services)``: the round's samples,
each queue's depth (or None: a topic's shared queue and each service's
``topic.host``) and the services probed (``nova_lite.inflight.services``
rows).
"""

import statsd
from oslo_log import log as logging

from nova_lite.inflight import probe
from nova_lite.inflight import verdicts
from nova_lite.metrics import registry

LOG = logging.getLogger(__name__)


def metric_host(host):
    """statsd separates names with dots: ``a.example.org`` -> ``a_example_org``."""
    return (host or 'unknown').replace('.', '_')


def metric_queue(queue):
    """A service's queue ``compute.a.example.org`` ->
    ``compute.a_example_org`` (a topic has no dots)."""
    topic, sep, host = queue.partition('.')
    return topic + sep + metric_host(host) if sep else topic


class StatsdSink:
    """Timers, counters and gauges, with the names in DESIGN.md:

    PREFIX.inflight.TOPIC.HOST.{to_service,...,total}   timers (ms)
    PREFIX.inflight.TOPIC.HOST.timeout                  counter
    PREFIX.inflight.TOPIC.HOST.clock_skew               counter
    PREFIX.inflight.TOPIC.HOST.greenthreads             gauge
    PREFIX.inflight.TOPIC.HOST.workers                  gauge
    PREFIX.inflight.TOPIC.HOST.up                       gauge (heartbeat)
    PREFIX.inflight.TOPIC.HOST.heartbeat_age            gauge (s)
    PREFIX.inflight.TOPIC.HOST.{unreachable,no_consumers,slow}  counters
                                  (one per round flagged so)
    PREFIX.queue.TOPIC.depth / .consumers               gauges
    PREFIX.queue.TOPIC.HOST.depth / .consumers          gauges (a service's)
    PREFIX.queue.QUEUE.unacked                          gauge, when known

    and, from ``emit_ring``, each inflight daemon's own (by its host):

    PREFIX.inflight_prober.HOST.{members,owned_services,
        coordination_fallback}                           gauges
    PREFIX.inflight_prober.HOST.{rebalances,round_overruns}  counters
    PREFIX.inflight_prober.HOST.round                    timer (ms)
    """

    def __init__(self, conf):
        self.client = statsd.StatsClient(conf.statsd.host, conf.statsd.port,
                                         prefix=conf.statsd.prefix)

    def emit(self, samples, queues, services=()):
        # A pipeline packs the round into as few UDP datagrams as it can.
        with self.client.pipeline() as pipe:
            for sample in samples:
                base = 'inflight.%s.%s' % (sample.topic,
                                           metric_host(sample.host))
                self._emit_service(pipe, base, sample)
                if sample.timed_out:
                    pipe.incr(base + '.timeout')
                    continue
                if sample.skew:
                    pipe.incr(base + '.clock_skew')
                for phase in probe.PHASES:
                    value = getattr(sample, phase)
                    if value is not None:
                        pipe.timing('%s.%s' % (base, phase), value)
                for gauge in ('greenthreads', 'workers'):
                    value = getattr(sample, gauge)
                    if value is not None:
                        pipe.gauge('%s.%s' % (base, gauge), value)
            for queue, depth in queues.items():
                if depth is not None:
                    name = metric_queue(queue)
                    pipe.gauge('queue.%s.depth' % name, depth['messages'])
                    pipe.gauge('queue.%s.consumers' % name,
                               depth['consumers'])
                    if depth.get('unacked') is not None:
                        pipe.gauge('queue.%s.unacked' % name,
                                   depth['unacked'])

    @staticmethod
    def _emit_service(pipe, base, sample):
        if sample.up is not None:
            pipe.gauge(base + '.up', 1 if sample.up else 0)
        if sample.heartbeat_age is not None:
            pipe.gauge(base + '.heartbeat_age', sample.heartbeat_age)
        for flag in sample.flags:
            pipe.incr('%s.%s' % (base, flag))

    def emit_ring(self, host, members, owned, fallback, rebalances, overrun,
                  seconds):
        """One ring round of the daemon on ``host``: the group's size as
        it sees it, its share (None: the round failed), whether it is in
        the coordination fallback, the joins and leaves seen since the
        last call, whether the round overran, and its duration."""
        base = 'inflight_prober.%s.' % metric_host(host)
        with self.client.pipeline() as pipe:
            pipe.gauge(base + 'members', members)
            if owned is not None:
                pipe.gauge(base + 'owned_services', owned)
            pipe.gauge(base + 'coordination_fallback', 1 if fallback else 0)
            if rebalances:
                pipe.incr(base + 'rebalances', rebalances)
            if overrun:
                pipe.incr(base + 'round_overruns')
            pipe.timing(base + 'round', seconds * 1000.0)


class DatabaseSink:
    """Keeps samples in ``inflight_samples`` for ``sample_retention`` s.

    A stored sample's ``clock_offset`` is the service's clock minus the
    *reference* clock (the database server's), with its bound in
    ``clock_offset_bound``, both from ``clocks`` (a ``ClockBook``); None
    while the prober's own offset is unknown.  So samples of different
    probers compose in ``inflight report``.  Each row also keeps its
    ``prober`` and ``round_no`` (set on the samples by the manager).
    """

    def __init__(self, conf, db, clocks):
        self.db = db
        self.clocks = clocks
        self.retention = conf.inflight.sample_retention

    def _row(self, sample):
        row = sample.as_dict()
        row['flags'] = ','.join(sample.flags) or None
        offset = self.clocks.against_reference(sample)
        row['clock_offset'] = None if offset is None else offset.offset_ms
        row['clock_offset_bound'] = (None if offset is None
                                     else offset.bound_ms)
        return row

    def emit(self, samples, queues, services=()):
        self.db.inflight_samples_add([self._row(s) for s in samples])
        purged = self.db.inflight_samples_purge(self.retention)
        if purged:
            LOG.debug('Purged %d inflight samples older than %ss', purged,
                      self.retention)


class ClockSink:
    """Each probed host's clock offset to the reference, and the prober's
    own, into ``host_clocks``, where every service reads its own with its
    heartbeat (``clocks`` is the prober's ``ClockBook``)."""

    def __init__(self, db, clocks):
        self.db = db
        self.clocks = clocks

    def emit(self, samples, queues, services=()):
        self.clocks.add_samples(samples)
        self.db.host_clocks_set(self.clocks.host_clocks())


class PrometheusSink:
    """The inflight daemon's series on its /metrics (README, *Observability*):

    nova_lite_inflight_seconds{topic,phase}          histogram, per topic
    nova_lite_inflight_last_seconds{topic,host,phase} gauge, per service
                                  ([metrics] per_service_series)
    nova_lite_inflight_timeouts_total{topic,host}
    nova_lite_service_reachable{topic,host}          1: last probe answered
    nova_lite_service_up{topic,host}                 1: heartbeat recent
    nova_lite_service_heartbeat_age_seconds{topic,host}
    nova_lite_service_flag{topic,host,flag}          1: flagged last round
    nova_lite_queue_messages{queue}, nova_lite_queue_consumers{queue}
    nova_lite_queue_unacked{queue}       when known (management API)

    A service that leaves the list leaves these series too, and so does
    its queue.
    """

    def __init__(self, conf):
        self.per_service = conf.metrics.per_service_series
        self._known = set()
        self._queues = set()

    def emit(self, samples, queues, services=()):
        seen = set()
        for sample in samples:
            key = (sample.topic, sample.host or '*')
            seen.add(key)
            registry.SERVICE_REACHABLE.labels(*key).set(
                1 if sample.answered else 0)
            for flag in verdicts.FLAGS:
                registry.SERVICE_FLAG.labels(*key, flag).set(
                    1 if flag in sample.flags else 0)
            if sample.timed_out:
                registry.INFLIGHT_TIMEOUTS.labels(*key).inc()
            if not sample.answered:
                continue
            for phase in probe.PHASES:
                value = getattr(sample, phase)
                if value is None:
                    continue
                registry.INFLIGHT_SECONDS.labels(sample.topic, phase).observe(
                    value / 1000.0)
                if self.per_service:
                    registry.INFLIGHT_LAST.labels(*key, phase).set(
                        value / 1000.0)
        for service in services:
            key = (service['topic'], service['host'])
            seen.add(key)
            registry.SERVICE_UP.labels(*key).set(
                1 if service['status'] == 'up' else 0)
            age = service.get('heartbeat_age')
            if age is None:
                _remove(registry.SERVICE_HEARTBEAT_AGE, *key)
            else:
                registry.SERVICE_HEARTBEAT_AGE.labels(*key).set(age)
        queues_seen = set()
        for queue, depth in queues.items():
            if depth is not None:
                queues_seen.add(queue)
                registry.QUEUE_MESSAGES.labels(queue).set(depth['messages'])
                registry.QUEUE_CONSUMERS.labels(queue).set(
                    depth['consumers'])
                if depth.get('unacked') is None:
                    _remove(registry.QUEUE_UNACKED, queue)
                else:
                    registry.QUEUE_UNACKED.labels(queue).set(
                        depth['unacked'])
        self._forget(self._known - seen)
        self._known = seen
        for queue in self._queues - queues_seen:
            _remove(registry.QUEUE_MESSAGES, queue)
            _remove(registry.QUEUE_CONSUMERS, queue)
            _remove(registry.QUEUE_UNACKED, queue)
        self._queues = queues_seen

    def _forget(self, gone):
        for key in gone:
            for metric in (registry.SERVICE_REACHABLE, registry.SERVICE_UP,
                           registry.SERVICE_HEARTBEAT_AGE,
                           registry.INFLIGHT_TIMEOUTS):
                _remove(metric, *key)
            for phase in probe.PHASES:
                _remove(registry.INFLIGHT_LAST, *key, phase)
            for flag in verdicts.FLAGS:
                _remove(registry.SERVICE_FLAG, *key, flag)


def _remove(metric, *labels):
    try:
        metric.remove(*labels)
    except KeyError:
        pass
