"""A notification fails over past a dead broker node (real RabbitMQ).

oslo.messaging gives a new pooled connection ``[oslo_messaging_notifications]
retry`` (-1, "forever") as kombu's ``max_retries``, which kombu reads as
"give up at the first failure": a notification whose connection first
tries a dead node of a multi-host URL is dropped instead of failing over.
``nova_lite.rpc`` works around it; this test fails without that.
"""

import time
import urllib.parse
import uuid
from unittest import mock

from amqp import exceptions as amqp_exceptions
import kombu
from oslo_serialization import jsonutils

from nova_lite import context
from nova_lite import rpc
from nova_lite.testing import api
from nova_lite.testing import fixtures as nl_fixtures

NOTIFICATION_QUEUE = 'notifications.info'


def _dead_first_url(url):
    """``url`` with a host nothing listens on before its own."""
    parsed = urllib.parse.urlsplit(url)
    creds = parsed.netloc.rpartition('@')[0]
    return '%s://%s@127.0.0.1:%d,%s%s' % (parsed.scheme, creds,
                                          api.free_port(), parsed.netloc,
                                          parsed.path)


def _wait_vhost_ready(url, timeout=60.0):
    """Until a queue can be declared in ``url``'s vhost.

    A vhost created a moment ago may still be starting its message
    stores: a first publish then fails with 541 INTERNAL_ERROR ("failed
    to perform operation on queue ... due to timeout"), which would be
    read here as a dropped notification.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with kombu.Connection(url.replace('rabbit://', 'amqp://', 1),
                                  connect_timeout=5) as conn:
                queue = kombu.Queue('nova-lite-ready-%s' % uuid.uuid4().hex,
                                    auto_delete=True, channel=conn.channel())
                queue.declare()
                queue.delete()
                return
        except Exception:  # noqa: BLE001 - not yet; the deadline decides
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _find_notification(url, marker, timeout=10.0):
    """The payload of the notification carrying ``marker`` on the
    notifications.info queue, or None once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    with kombu.Connection(url.replace('rabbit://', 'amqp://', 1)) as conn:
        channel = conn.channel()
        while time.monotonic() < deadline:
            try:
                message = channel.basic_get(NOTIFICATION_QUEUE, no_ack=True)
            except amqp_exceptions.NotFound:
                # Nothing declared it: nothing was published.
                channel = conn.channel()
                message = None
            if message is None:
                time.sleep(0.1)
                continue
            body = jsonutils.loads(message.body)
            payload = jsonutils.loads(body['oslo.message'])['payload']
            if payload.get('marker') == marker:
                return payload
    return None


def test_notification_fails_over_past_a_dead_first_host(rabbit):
    marker = str(uuid.uuid4())
    _wait_vhost_ready(rabbit.url)
    url = _dead_first_url(rabbit.url)
    with nl_fixtures.ConfFixture(transport_url=url) as fixture:
        # oslo.messaging shuffles a multi-host URL per connection: keep the
        # dead host first, so the connection has to fail over.
        with mock.patch('random.shuffle'):
            rpc.init(fixture.conf)
            try:
                notifier = rpc.get_notifier('test.failover')
                notifier.info(context.get_admin_context(), 'failover.test',
                              {'marker': marker})
            finally:
                rpc.cleanup()
    payload = _find_notification(rabbit.url, marker)
    assert payload is not None, (
        'the notification never reached the live node: dropped after the '
        'dead first host refused the connection')
