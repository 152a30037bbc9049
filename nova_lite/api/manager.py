"""The api topic's manager: nothing but what every service serves.

nova-lite-api registers, heartbeats and answers ``baseapi`` (ping,
inflight) like every other service, so the inflight probe covers it; it
has no RPC API of its own.
"""

import oslo_messaging as messaging

from nova_lite import manager


class APIManager(manager.Manager):
    """No RPC methods: only ``baseapi`` is served on the api topic."""

    target = messaging.Target(version='1.0')
