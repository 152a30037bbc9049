"""Where probe rounds go: statsd, the database, the log."""

import statsd
from oslo_log import log as logging

from nova_lite.inflight import probe

LOG = logging.getLogger(__name__)


def metric_host(host):
    """statsd separates names with dots: ``a.example.org`` -> ``a_example_org``."""
    return (host or 'unknown').replace('.', '_')


class StatsdSink:
    """Timers, counters and gauges, with the names in DESIGN.md:

    PREFIX.inflight.TOPIC.HOST.{to_service,...,total}   timers (ms)
    PREFIX.inflight.TOPIC.HOST.timeout                  counter
    PREFIX.inflight.TOPIC.HOST.clock_skew               counter
    PREFIX.inflight.TOPIC.HOST.greenthreads             gauge
    PREFIX.inflight.TOPIC.HOST.workers                  gauge
    PREFIX.queue.TOPIC.depth / .consumers               gauges
    """

    def __init__(self, conf):
        self.client = statsd.StatsClient(conf.statsd.host, conf.statsd.port,
                                         prefix=conf.statsd.prefix)

    def emit(self, samples, queues):
        # A pipeline packs the round into as few UDP datagrams as it can.
        with self.client.pipeline() as pipe:
            for sample in samples:
                base = 'inflight.%s.%s' % (sample.topic,
                                           metric_host(sample.host))
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
            for topic, depth in queues.items():
                if depth is not None:
                    pipe.gauge('queue.%s.depth' % topic, depth['messages'])
                    pipe.gauge('queue.%s.consumers' % topic,
                               depth['consumers'])


class DatabaseSink:
    """Keeps samples in ``inflight_samples`` for ``sample_retention`` s."""

    def __init__(self, conf, db):
        self.db = db
        self.retention = conf.inflight.sample_retention

    def emit(self, samples, queues):
        self.db.inflight_samples_add([s.as_dict() for s in samples])
        purged = self.db.inflight_samples_purge(self.retention)
        if purged:
            LOG.debug('Purged %d inflight samples older than %ss', purged,
                      self.retention)
