"""Broker queue depth per queue (a topic's, or a service's topic.host),
by a passive queue declare over kombu, or from RabbitMQ's management API.

``inspector(conf)`` picks one: ``ManagementInspector`` when ``[inflight]
rabbit_management_url`` is set, else ``QueueInspector``.  Both read
``{'messages': ready, 'unacked': n or None, 'consumers': n}`` per queue.
A consumer with no prefetch limit (oslo.messaging's default) takes every
message it is sent: when it freezes (SIGSTOP, a stuck thread) they stay
unacknowledged, not ready, and only the management API counts them.

A passive declare reads a queue's message and consumer counts without
creating it (and without its arguments, so a quorum queue reads as a
classic one does); a topic without a queue reads as None.  On a
multi-host ``transport_url`` (a cluster) it connects to the first node
that answers, in the URL's order.

One difference on a quorum queue: after a node dies, the consumer count
still includes the consumers whose connections were on it (RabbitMQ 3.10
keeps them as "suspected down" until the node is back, and its
queue.declare-ok counts them; ``rabbitmqctl list_queues consumers`` does
not), so it may read high until then.  Their services have reconnected
through another node and are counted again there.
"""

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import kombu
from amqp import exceptions as amqp_exc
from oslo_log import log as logging
import oslo_messaging as messaging

from nova_lite import utils

LOG = logging.getLogger(__name__)


def kombu_connection(conf, url=None):
    """A kombu Connection to the brokers of ``transport_url``: the first
    host, and the others as failover alternates (kombu tries them in
    turn when one refuses)."""
    parsed = messaging.TransportURL.parse(conf, url or conf.transport_url)
    hosts = parsed.hosts or [None]
    vhost = urllib.parse.quote(parsed.virtual_host or '/', safe='')
    urls = ['amqp://%s:%s@%s:%d/%s' % (
        urllib.parse.quote(host.username if host and host.username
                           else 'guest', safe=''),
        urllib.parse.quote(host.password if host and host.password
                           else 'guest', safe=''),
        host.hostname if host and host.hostname else 'localhost',
        host.port if host and host.port else 5672, vhost)
        for host in hosts]
    return kombu.Connection(urls, transport='pyamqp', connect_timeout=5,
                            failover_strategy='round-robin')


def inspector(conf):
    """The queue inspector ``conf`` asks for (see the module's doc)."""
    if conf.inflight.rabbit_management_url:
        return ManagementInspector(conf)
    return QueueInspector(conf)


class QueueInspector:
    """Reads queue depths by passive declares (ready messages and
    consumers; ``unacked`` is None); a broker error is logged and reads as
    None."""

    def __init__(self, conf):
        self.conf = conf
        self._connection = None
        # A py-amqp connection is not greenthread-safe.
        self._lock = threading.Lock()

    def _channel(self):
        if self._connection is None:
            self._connection = kombu_connection(self.conf)
            # Each host once, no pause: a dead node of a cluster costs
            # one refused connection, and no host answering is an error
            # at once (the caller logs it and reads None).
            self._connection.ensure_connection(
                max_retries=len(self._connection.alt or [None]),
                interval_start=0, interval_step=0, interval_max=0,
                timeout=15)
        return self._connection.channel()

    def depths(self, queues):
        """``{queue: {'messages': n, 'consumers': n} or None}``."""
        with self._lock:
            return self._depths(queues)

    def _depths(self, queues):
        result = {}
        channel = None
        for queue in queues:
            # A second try on a new connection: the node this one went to
            # may have died since (a cluster's others still answer).
            for retry in (False, True):
                try:
                    channel = channel or self._channel()
                    _, messages, consumers = channel.queue_declare(
                        queue=queue, passive=True)
                    result[queue] = {'messages': messages, 'unacked': None,
                                     'consumers': consumers}
                except amqp_exc.NotFound:
                    result[queue] = None
                    channel = None  # the broker closed this channel
                except Exception as exc:  # noqa: BLE001 - never fatal
                    self.close()
                    channel = None
                    if not retry:
                        continue
                    LOG.warning('Cannot read depth of queue %s on %s: %s',
                                queue,
                                utils.mask_url(self.conf.transport_url),
                                utils.mask_url(str(exc)))
                    result[queue] = None
                break
        if channel is not None:
            channel.close()
        return result

    def close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._connection = None


class ManagementInspector:
    """Reads queue depths from RabbitMQ's management API, in the vhost of
    ``transport_url``: ready and unacknowledged messages, and consumers.
    One ``GET /api/queues/VHOST`` (only the columns read) per round, for
    every queue asked: the round costs one request however many services
    it probes.  A queue that does not exist, or whose counts the broker
    has not collected yet, reads as None; so does every queue when the
    request fails (logged once, password masked).  The counts are the
    broker's statistics: up to its collect_statistics_interval (5 s by
    default) old."""

    COLUMNS = 'name,messages_ready,messages_unacknowledged,consumers'

    def __init__(self, conf, timeout=5.0):
        self.conf = conf
        self.timeout = timeout
        url = urllib.parse.urlsplit(conf.inflight.rabbit_management_url)
        self._base = urllib.parse.urlunsplit(
            (url.scheme, url.hostname + (':%d' % url.port if url.port
                                         else ''), url.path.rstrip('/'),
             '', ''))
        self._auth = None
        if url.username is not None:
            credentials = '%s:%s' % (urllib.parse.unquote(url.username),
                                     urllib.parse.unquote(url.password or ''))
            self._auth = 'Basic ' + base64.b64encode(
                credentials.encode()).decode()
        parsed = messaging.TransportURL.parse(conf, conf.transport_url)
        self._vhost = parsed.virtual_host or '/'

    def depths(self, queues):
        """``{queue: {'messages', 'unacked', 'consumers'} or None}``."""
        listed = self._list() if queues else {}
        return {queue: _management_depth(listed.get(queue))
                for queue in queues}

    def _list(self):
        """{name: the queue's JSON} of the vhost's queues; {} on error."""
        path = '%s/api/queues/%s?%s' % (
            self._base, urllib.parse.quote(self._vhost, safe=''),
            urllib.parse.urlencode({'columns': self.COLUMNS}))
        request = urllib.request.Request(path)
        if self._auth:
            request.add_header('Authorization', self._auth)
        try:
            with urllib.request.urlopen(request,
                                        timeout=self.timeout) as response:
                return {body['name']: body for body in json.load(response)}
        except urllib.error.HTTPError as exc:
            self._warn('HTTP %s %s' % (exc.code, exc.reason))
        except Exception as exc:  # noqa: BLE001 - never fatal
            self._warn(str(exc))
        return {}

    def _warn(self, reason):
        LOG.warning('Cannot read queue depths from %s: %s',
                    utils.mask_url(self.conf.inflight.rabbit_management_url),
                    utils.mask_url(reason))

    def close(self):
        pass


def _management_depth(body):
    """One queue's depth from its management API JSON, or None."""
    if body is None or 'messages_ready' not in body:
        # Gone, or the broker has not sent its statistics (yet).
        return None
    return {'messages': body['messages_ready'],
            'unacked': body.get('messages_unacknowledged'),
            'consumers': body.get('consumers', 0)}
