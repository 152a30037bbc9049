"""Service liveness from heartbeats in the services table."""

import datetime

from nova_lite.db import models
from nova_lite import rpc


def is_up(service, service_down_time, now=None):
    """True when ``service`` (a row dict) heartbeated within the window."""
    last = service.get('last_seen_up')
    if last is None:
        return False
    now = now or models.utcnow()
    return now - last <= datetime.timedelta(seconds=service_down_time)


def status(service, service_down_time, now=None):
    return 'up' if is_up(service, service_down_time, now) else 'down'


def min_version(db, topic, service_down_time):
    """Lowest RPC version among the live services of ``topic``, or None."""
    versions = [svc['version'] for svc in db.service_get_all(topic=topic)
                if is_up(svc, service_down_time)]
    if not versions:
        return None
    return min(versions, key=rpc.version_tuple)
