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

# Services with no RPC server (Nova's API services): a probe of
# ``osapi_compute.HOST`` would time out every round.  The sources leave
# them out already; a list given to ``use_services`` may not.
NO_RPC_BINARIES = cloud.NO_RPC_BINARIES


def source(conf, db):
    """The service source of this deployment: a ``ServiceSource``
    (``list_services()``, ``close()``)."""
    return cloud.services_source(conf, db=db)


def to_probe(services):
    """The services of a list that a sweep probes: the enabled ones that
    serve RPC."""
    return [svc for svc in services
            if not svc['disabled'] and svc['binary'] not in NO_RPC_BINARIES]
