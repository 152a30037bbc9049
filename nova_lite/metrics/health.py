"""The cached health of a process, as Nova's healthcheck spec asks.

A request to ``/health`` never touches the broker or the database: it reads
what the process last saw.  Three checks, each a list with one entry per
service of the process (nova-lite-all runs several):

- ``rpc:self``: a round trip to the service itself through the broker
  (``baseapi.ping`` on ``topic.host``), every ``[metrics] health_interval``
  and timed out after one interval.  ``fail`` once none has succeeded for
  two intervals, counted from the last success (or from the start).
- ``database:heartbeat``: the age of the last successful heartbeat.
  ``warn`` while the last attempt failed, ``fail`` once heartbeats have
  failed for longer than ``service_down_time``.
- ``hub:lag``: the watchdog's worst lag over the last interval; ``warn``
  above ``[metrics] lag_warn_ms``, never ``fail``.

The body follows the IETF health-check draft (``application/health+json``):
``status`` (``pass``, ``warn``, ``fail``), ``serviceId``, ``version`` and
``checks``.  Recovery needs nothing: the next success turns a check back.
"""

import datetime
import time

from oslo_log import log as logging

from nova_lite import baserpc
from nova_lite import concurrency
from nova_lite import context as nova_context

LOG = logging.getLogger(__name__)

PASS, WARN, FAIL = 'pass', 'warn', 'fail'
_ORDER = {PASS: 0, WARN: 1, FAIL: 2}


def _iso(wall):
    if wall is None:
        return None
    return datetime.datetime.fromtimestamp(
        wall, datetime.timezone.utc).isoformat(timespec='milliseconds')


def _worst(statuses):
    return max(statuses, key=_ORDER.__getitem__, default=PASS)


class SelfPing:
    """A service's round trips to itself, in a thread of their own."""

    def __init__(self, conf, service):
        self.conf = conf
        self.service = service
        self.started_at = time.time()
        self.last_ok_at = None
        self.last_rtt = None
        self.last_error = None
        self._stopping = concurrency.Event()
        self._client = None
        self._thread = None

    @property
    def component(self):
        return '%s.%s' % (self.service.topic, self.service.host)

    def start(self):
        self._client = baserpc.BaseRPCAPI(self.conf, self.service.topic)
        self._thread = concurrency.spawn(self._run)

    def stop(self):
        self._stopping.set()

    def _run(self):
        interval = self.conf.metrics.health_interval
        while True:
            self.ping_once(interval)
            if self._stopping.wait(interval):
                return

    def ping_once(self, timeout):
        start = time.monotonic()
        try:
            # retry=0: with the broker gone, fail now and try again next
            # interval rather than reconnect for ever inside one check.
            self._client.ping(nova_context.get_admin_context(), 'health',
                              host=self.service.host, timeout=timeout,
                              retry=0)
        except Exception as exc:  # noqa: BLE001 - a failed check, reported
            if self.last_error is None:
                LOG.warning('Health: round trip to %s through the broker '
                            'failed: %s', self.component,
                            type(exc).__name__)
            self.last_error = type(exc).__name__
            return False
        self.last_rtt = time.monotonic() - start
        self.last_ok_at = time.time()
        if self.last_error is not None:
            LOG.info('Health: round trip to %s through the broker works '
                     'again', self.component)
        self.last_error = None
        return True

    def check(self, now):
        interval = self.conf.metrics.health_interval
        since = self.last_ok_at or self.started_at
        if now - since > 2 * interval:
            status = FAIL
        elif self.last_ok_at is None or self.last_error is not None:
            status = WARN
        else:
            status = PASS
        return {'componentId': self.component, 'status': status,
                'observedValue': (None if self.last_rtt is None
                                  else round(self.last_rtt * 1000.0, 3)),
                'observedUnit': 'ms', 'time': _iso(self.last_ok_at)}


def heartbeat_check(conf, service, now):
    """``database:heartbeat`` of ``service`` (its ``heartbeat_ok_at`` and
    ``heartbeat_failed_at``, wall clock)."""
    ok_at = service.heartbeat_ok_at
    age = None if ok_at is None else max(0.0, now - ok_at)
    if age is None or age > conf.service_down_time:
        status = FAIL
    elif service.heartbeat_failed_at is not None:
        status = WARN
    else:
        status = PASS
    return {'componentId': '%s.%s' % (service.topic, service.host),
            'status': status,
            'observedValue': None if age is None else round(age, 3),
            'observedUnit': 's', 'time': _iso(ok_at)}


class HealthState:
    """What ``/health``, ``/livez`` and ``/readyz`` answer, from what the
    process last saw."""

    def __init__(self, conf, watchdog, version):
        self.conf = conf
        self.watchdog = watchdog
        self.version = version
        self.pings = []

    def add_service(self, service):
        """Watch ``service`` (started): its self round trips begin now."""
        ping = SelfPing(self.conf, service)
        self.pings.append(ping)
        ping.start()

    def stop(self):
        for ping in self.pings:
            ping.stop()

    def _lag_check(self, now):
        interval = self.conf.metrics.health_interval
        lag_ms = self.watchdog.worst(interval) * 1000.0
        status = WARN if lag_ms > self.conf.metrics.lag_warn_ms else PASS
        return {'status': status, 'observedValue': round(lag_ms, 3),
                'observedUnit': 'ms', 'time': _iso(now)}

    def report(self):
        """The health body (a dict) and its HTTP status code."""
        now = time.time()
        checks = {
            'rpc:self': [ping.check(now) for ping in self.pings],
            'database:heartbeat': [heartbeat_check(self.conf, ping.service,
                                                   now)
                                   for ping in self.pings],
            'hub:lag': [self._lag_check(now)],
        }
        status = _worst(entry['status'] for entries in checks.values()
                        for entry in entries)
        if not self.pings:
            status = FAIL   # nothing started yet
        body = {'status': status,
                'serviceId': ','.join(ping.component for ping in self.pings)
                or None,
                'version': self.version,
                'description': 'nova_lite service health',
                'checks': checks}
        return body, 503 if status == FAIL else 200

    def live(self):
        """The process's loop still wakes up (a wedged hub does not)."""
        return self.watchdog.stalled_for() < 10.0

    def ready(self):
        """Consuming RPC (a self round trip succeeded within two
        intervals) and the last heartbeat succeeded, for every service."""
        if not self.pings:
            return False
        now = time.time()
        interval = self.conf.metrics.health_interval
        return all(
            ping.last_ok_at is not None and
            now - ping.last_ok_at <= 2 * interval and
            ping.service.heartbeat_failed_at is None
            for ping in self.pings)
