"""The ``baseapi`` namespace every nova_lite service serves.

It answers whatever the service's role: operators and the inflight manager
use it to reach any registered service by topic or topic.host.
"""

import math
import time

import oslo_messaging as messaging

from nova_lite.conf import inflight as inflight_conf
from nova_lite import exception
from nova_lite import rpc
from nova_lite import concurrency

NAMESPACE = 'baseapi'


class BaseAPI:
    """Server side of the base RPC API (an endpoint of every service)."""

    target = messaging.Target(namespace=NAMESPACE, version='1.2')

    def __init__(self, host, binary, version, topic=None):
        self.host = host
        self.binary = binary
        self.version = version
        self.topic = topic

    def ping(self, context, arg):
        """Echo ``arg`` back with who answered.

        Nova's ``baseapi.ping`` (1.0, in Nova's namespace 1.1) answers
        ``{'service': topic, 'arg': arg}``; this reply has those keys too,
        so a client of either reads the other's.
        """
        return {'service': self.topic, 'host': self.host,
                'binary': self.binary, 'version': self.version, 'arg': arg}

    @messaging.expected_exceptions(exception.InvalidInput)
    def inflight(self, context, sent_at=None, sleep=None):
        """Stamp arrival, sleep ``sleep`` s in a new thread, stamp reply.

        The thread is a greenthread under eventlet and a native thread under
        threading; how late it wakes up is this service's greenthread
        overhead (a busy or blocked hub; GIL contention or CPU starvation).
        ``sent_at`` is the caller's wall clock, echoed so a reply can be
        matched to its probe.  The reply counts live greenthreads (or
        threads) and the RPC executor's busy workers (this call is one).
        """
        received_at = time.time()
        _check_number('sent_at', sent_at, minimum=0.0)
        _check_number('sleep', sleep, minimum=0.0,
                      maximum=inflight_conf.MAX_SLEEP_SECONDS)
        sleep_actual = concurrency.spawn(_timed_sleep, sleep).wait()
        return {'sent_at': sent_at, 'received_at': received_at,
                'sleep_requested': sleep, 'sleep_actual': sleep_actual,
                'greenthreads': concurrency.live_threads(),
                'workers': rpc.busy_workers(),
                'backend': concurrency.BACKEND,
                'host': self.host, 'binary': self.binary,
                'version': self.version, 'replied_at': time.time()}


def _timed_sleep(seconds):
    start = time.monotonic()
    concurrency.sleep(seconds)
    return time.monotonic() - start


def _check_number(name, value, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise exception.InvalidInput(
            reason='%s must be a number, got %r' % (name, value))
    if not math.isfinite(value):
        raise exception.InvalidInput(reason='%s must be finite' % name)
    if minimum is not None and value < minimum:
        raise exception.InvalidInput(
            reason='%s must be >= %s, got %s' % (name, minimum, value))
    if maximum is not None and value > maximum:
        raise exception.InvalidInput(
            reason='%s must be <= %s, got %s' % (name, maximum, value))


class BaseRPCAPI(rpc.RPCAPIBase):
    """Client side of the base RPC API, for any topic.

    1.0 - Initial version: ping(arg).
    1.1 - Add inflight(sent_at, sleep).
    1.2 - inflight replies also carry workers and backend (same call: a
          1.1 caller gets them too and may ignore them).
    """

    NAMESPACE = NAMESPACE

    def __init__(self, conf, topic, timeout=None):
        super().__init__(conf, timeout=timeout, topic=topic)

    def _version_cap(self):
        # [upgrade_levels] caps the role APIs; baseapi is versioned apart.
        return None

    def ping(self, ctxt, arg, host=None, timeout=None, retry=None):
        """Call ``ping`` on ``host`` (or any service of the topic);
        ``retry`` bounds the reconnections while sending (None: for
        ever, oslo.messaging's default).  Sent as 1.0, which a real
        Nova's ``baseapi`` (1.1) serves too: ``{'service': topic,
        'arg': arg}`` back."""
        cctxt = self.client.prepare(server=host, timeout=timeout,
                                    retry=retry)
        return cctxt.call(ctxt, 'ping', arg=arg)

    def inflight(self, ctxt, sent_at, sleep, host=None, timeout=None):
        """Call ``inflight``; the reply carries the service's stamps."""
        cctxt = self._require('inflight', '1.1', server=host,
                              timeout=timeout)
        return cctxt.call(ctxt, 'inflight', sent_at=sent_at, sleep=sleep)
