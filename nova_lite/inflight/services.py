"""The services the inflight daemon sweeps: ONE place they come from.

``source(conf, db)`` is the deployment's service source
(``nova_lite.cloud.services_source``, by ``[cloud] kind`` and
``services_from``): nova_lite's own services table, or a real Nova's
databases or Compute API.  Its ``list_services()`` returns one dict per
service of the cloud, with the keys ``KEYS``:

    id, host, binary, topic, status ('up'/'down'), disabled,
    updated_at (aware UTC datetime, or None), version, zone,
    heartbeat_age (s, or None), metrics

``InflightManager`` and ``nova-lite-ping`` take their list from here;
``InflightManager.use_services(callable)`` replaces it (tests give a
fake list).
"""

from nova_lite import cloud

KEYS = cloud.SERVICE_KEYS


def source(conf, db):
    """The service source of this deployment: a ``ServiceSource``
    (``list_services()``, ``close()``)."""
    return cloud.services_source(conf, db=db)
