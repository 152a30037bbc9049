"""nova_lite's own services: its services table and heartbeats."""

from nova_lite.cloud import base
from nova_lite import servicegroup


class OwnServices(base.ServiceSource):
    """The services of ``[cloud] kind = nova_lite``: ``db.service_get_all()``
    with up/down from ``servicegroup`` and [DEFAULT] service_down_time."""

    description = 'nova_lite services table'

    def __init__(self, conf, db):
        self.conf = conf
        self.db = db

    def list_services(self):
        now = base.utcnow()
        naive_now = now.replace(tzinfo=None)
        services = []
        for row in self.db.service_get_all():
            last = base.aware(row['last_seen_up'])
            services.append(base.service(
                id=row['id'], host=row['host'], binary=row['binary'],
                topic=row['topic'],
                status=servicegroup.status(row, self.conf.service_down_time,
                                           now=naive_now),
                disabled=row['disabled'], updated_at=last,
                version=row['version'], zone=None,
                heartbeat_age=base.age_seconds(last, now),
                metrics=row['metrics_address']))
        return services
