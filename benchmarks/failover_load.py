"""What benchmarks/broker_failover.py runs against the daemons, and counts.

- ``Creates``: ``POST /v2.1/servers`` at a steady rate, each request in
  a thread of its own (a request held up by the failover does not slow
  the others down); every answer kept: status, server id, seconds, or
  the exception a client saw.
- ``Pinger``: ``baseapi.ping`` to one service (topic and host) every
  ``interval``, from this process, each ping recorded; ``recovery(t)``
  is when the service answered again for good after ``t``.
- ``cast_tally``: casts sent and handled per topic, from the daemons'
  ``/metrics`` (``nova_lite_rpc_client_seconds`` and
  ``nova_lite_rpc_server_handling_seconds``, kind ``cast``).
"""

import collections
import socket
import threading
import time

from nova_lite import baserpc
from nova_lite import context
from nova_lite.testing import scrape

# Give up on an API request after this long (a client's patience).
HTTP_TIMEOUT = 60.0


class Creates(threading.Thread):
    """``rate`` server creates per second until ``stop()``.

    ``results``: one dict per request, in the order sent: ``sent``
    (monotonic), ``status`` (None when no answer), ``server_id``,
    ``seconds``, ``error`` (the exception's class name, or None).
    """

    def __init__(self, client, rate, max_in_flight=200):
        super().__init__(name='creates', daemon=True)
        self.client = client
        self.rate = rate
        self.results = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._threads = []

    def stop(self):
        self._stopped.set()

    def join_all(self, timeout=HTTP_TIMEOUT + 10):
        """Wait for the sender and every request it started."""
        self.join(timeout)
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def run(self):
        start = time.monotonic()
        seq = 0
        while not self._stopped.is_set():
            if not self._slots.acquire(timeout=1.0):
                continue       # every slot waits on a stuck request
            thread = threading.Thread(target=self._one, args=(seq,),
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
            seq += 1
            self._stopped.wait(max(0.0, start + seq / self.rate -
                                   time.monotonic()))

    def _one(self, seq):
        body = {'server': {'name': 'failover-%d' % seq, 'imageRef': 'cirros',
                           'flavorRef': '1'}}
        sent = time.monotonic()
        record = {'seq': seq, 'sent': sent, 'status': None,
                  'server_id': None, 'seconds': None, 'error': None}
        try:
            resp = self.client.post('/v2.1/servers', body)
            record['status'] = resp.status
            if resp.status == 202:
                record['server_id'] = resp.json['server']['id']
        except (OSError, socket.timeout, ValueError) as exc:
            record['error'] = type(exc).__name__
        finally:
            record['seconds'] = time.monotonic() - sent
            with self._lock:
                self.results.append(record)
            self._slots.release()

    def accepted(self):
        """The ids of the servers whose create was answered 202."""
        return [r['server_id'] for r in self.results if r['status'] == 202]

    def errors(self):
        """``Counter`` of what went wrong: ``HTTP 5xx`` codes, other
        non-202 codes, and exception names (a timeout, a reset)."""
        counts = collections.Counter()
        for record in self.results:
            if record['error']:
                counts[record['error']] += 1
            elif record['status'] != 202:
                counts['HTTP %s' % record['status']] += 1
        return counts


class Pinger(threading.Thread):
    """``baseapi.ping`` to ``topic`` on ``host`` every ``interval`` s.

    ``results``: ``(sent, ended, ok, error)`` per ping (monotonic
    clock).  A ping that cannot even be sent gives up after ``retry``
    reconnections; one that is sent waits ``timeout`` for its reply.
    """

    def __init__(self, conf, topic, host, interval=0.5, timeout=10.0,
                 retry=2):
        super().__init__(name='ping-%s.%s' % (topic, host), daemon=True)
        self.topic = topic
        self.host = host
        self.interval = interval
        self.timeout = timeout
        self.retry = retry
        self.results = []
        self._client = baserpc.BaseRPCAPI(conf, topic)
        self._stopped = threading.Event()

    def stop(self):
        self._stopped.set()

    def run(self):
        ctxt = context.get_admin_context()
        while not self._stopped.is_set():
            sent = time.monotonic()
            error = None
            try:
                self._client.ping(ctxt, 'failover', host=self.host,
                                  timeout=self.timeout, retry=self.retry)
            except Exception as exc:  # noqa: BLE001 - recorded, counted
                error = type(exc).__name__
            self.results.append((sent, time.monotonic(), error is None,
                                 error))
            self._stopped.wait(max(0.0, sent + self.interval -
                                   time.monotonic()))

    def failures_since(self, since):
        """``Counter`` of the errors of pings sent after ``since``."""
        return collections.Counter(error for sent, _, ok, error in
                                   self.results if sent >= since and not ok)

    def first_answer(self, since):
        """Seconds from ``since`` to the first reply to a ping sent after
        it (None if none was answered)."""
        answered = [ended for sent, ended, ok, _ in self.results
                    if ok and sent >= since]
        return min(answered) - since if answered else None

    def recovery(self, since):
        """Seconds from ``since`` until this service answered for good:
        the reply to the first ping sent after the last one that failed
        (0.0 if none failed; None if none answered after it)."""
        failed = [sent for sent, _, ok, _ in self.results
                  if not ok and sent >= since - self.timeout]
        if not failed:
            return 0.0
        last = max(failed)
        for sent, ended, ok, _ in self.results:
            if ok and sent > last:
                return ended - since
        return None


def cast_tally(addresses):
    """``{topic: Counter(sent=..., send_failed=..., handled=...)}``
    summed over the daemons whose metrics listeners are ``addresses``;
    an address that does not answer is skipped (its counters are gone
    with it)."""
    tally = collections.defaultdict(collections.Counter)
    for address in addresses:
        try:
            metrics = scrape.metrics(address, timeout=5.0)
        except (OSError, AssertionError):
            continue
        for sample in metrics.samples:
            labels = sample.labels
            if labels.get('kind') != 'cast':
                continue
            if sample.name == 'nova_lite_rpc_client_seconds_count':
                key = ('sent' if labels.get('outcome') == 'ok'
                       else 'send_failed')
            elif sample.name == 'nova_lite_rpc_server_handling_seconds_count':
                key = 'handled'
            else:
                continue
            tally[labels['topic']][key] += int(sample.value)
    return tally


def counter_total(addresses, name):
    """The sum of metric ``name`` over ``addresses`` (those answering)."""
    total = 0.0
    for address in addresses:
        try:
            total += scrape.metrics(address, timeout=5.0).value(name)
        except (OSError, AssertionError):
            continue
    return total
