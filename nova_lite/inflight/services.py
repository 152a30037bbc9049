"""The services the inflight daemon sweeps: ONE place they come from.

``source(conf, db)`` returns an object whose ``list_services()`` returns
one dict per service of the cloud, with the keys

    id, host, binary, topic, status ('up'/'down'), disabled,
    updated_at (aware UTC datetime, or None), version, zone,
    heartbeat_age (s, or None)

the same as ``nova_lite.cloud.services_source(conf, db).list_services()``
(``[cloud] kind``; a real Nova's services come from there).  Here, the
default: nova_lite's own services table, up or down by heartbeat
(``servicegroup``).  ``InflightManager`` takes its list from
``source(...)`` unless given a callable (tests give a fake list).
"""

import datetime

from nova_lite.db import models
from nova_lite import servicegroup

KEYS = ('id', 'host', 'binary', 'topic', 'status', 'disabled', 'updated_at',
        'version', 'zone', 'heartbeat_age')


def source(conf, db):
    """The service source of this deployment (see the module's doc)."""
    return LocalServices(conf, db)


class LocalServices:
    """nova_lite's own services, from its services table."""

    def __init__(self, conf, db):
        self.conf = conf
        self.db = db

    def list_services(self):
        now = models.utcnow()
        return [as_source_row(row, self.conf.service_down_time, now)
                for row in self.db.service_get_all()]


def as_source_row(row, service_down_time, now=None):
    """A services-table row (``db.service_get_all``) as a source's dict."""
    now = now or models.utcnow()
    last = row.get('last_seen_up')
    return {
        'id': row['id'], 'host': row['host'], 'binary': row['binary'],
        'topic': row['topic'],
        'status': servicegroup.status(row, service_down_time, now),
        'disabled': bool(row['disabled']),
        # Stored naive, in UTC.
        'updated_at': (None if last is None
                       else last.replace(tzinfo=datetime.timezone.utc)),
        'version': row['version'], 'zone': None,
        'heartbeat_age': (None if last is None
                          else max(0.0, (now - last).total_seconds())),
    }
