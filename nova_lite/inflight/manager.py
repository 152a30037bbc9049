"""Inflight manager: probes every registered service (see nova_lite.inflight)."""

import oslo_messaging as messaging

from nova_lite import manager


class InflightManager(manager.Manager):
    """Server side of the inflight RPC API."""

    target = messaging.Target(version='1.0')
