"""Broker queue depth per topic, by a passive queue declare over kombu.

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

import threading
import urllib.parse

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


class QueueInspector:
    """Reads queue depths; a broker error is logged and reads as None."""

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
                    result[queue] = {'messages': messages,
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
