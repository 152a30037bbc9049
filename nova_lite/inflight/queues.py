"""Broker queue depth per topic, by a passive queue declare over kombu.

A passive declare reads a queue's message and consumer counts without
creating it; a topic without a queue reads as None.
"""

import threading

import kombu
from amqp import exceptions as amqp_exc
from oslo_log import log as logging
import oslo_messaging as messaging

from nova_lite import utils

LOG = logging.getLogger(__name__)


def kombu_connection(conf, url=None):
    """A kombu Connection to the (first) broker of ``transport_url``."""
    parsed = messaging.TransportURL.parse(conf, url or conf.transport_url)
    host = parsed.hosts[0] if parsed.hosts else None
    return kombu.Connection(
        hostname=host.hostname if host else 'localhost',
        port=(host.port if host and host.port else 5672),
        userid=host.username if host else 'guest',
        password=host.password if host else 'guest',
        virtual_host=parsed.virtual_host or '/',
        transport='pyamqp', connect_timeout=5)


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
        return self._connection.channel()

    def depths(self, queues):
        """``{queue: {'messages': n, 'consumers': n} or None}``."""
        with self._lock:
            return self._depths(queues)

    def _depths(self, queues):
        result = {}
        channel = None
        for queue in queues:
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
                LOG.warning('Cannot read depth of queue %s on %s: %s',
                            queue, utils.mask_url(self.conf.transport_url),
                            utils.mask_url(str(exc)))
                result[queue] = None
                self.close()
                channel = None
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
