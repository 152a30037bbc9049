"""The service source interface and the helpers every source shares.

A source's ``list_services()`` returns one dict per service with exactly
``SERVICE_KEYS``:

- ``id``: nova_lite's integer id; a Nova service's uuid (ids repeat across
  Nova's cells; the uuid is what os-services shows since microversion 2.53);
- ``host``, ``binary``, ``topic`` (the RPC topic: ``compute``,
  ``conductor``, ``scheduler``...);
- ``status``: ``'up'`` or ``'down'`` by heartbeat;
- ``disabled``: bool;
- ``updated_at``: the last heartbeat, an aware UTC datetime, or None;
- ``version``: nova_lite's RPC version, Nova's service version (an int),
  or None where the source does not tell (os-services);
- ``zone``: None for nova_lite; a Nova service's availability zone;
- ``heartbeat_age``: seconds (>= 0) since the heartbeat the up/down
  verdict was taken from, or None when there is none;
- ``metrics``: host:port of a nova_lite service's /metrics; None for Nova.
"""

import datetime

SERVICE_KEYS = ('id', 'host', 'binary', 'topic', 'status', 'disabled',
                'updated_at', 'version', 'zone', 'heartbeat_age', 'metrics')

# Nova's API services: rows in its services table (for the minimum
# service version), with no RPC server and no heartbeat.  os-services
# leaves them out; so do the sources, and a sweep never probes them.
NO_RPC_BINARIES = frozenset(['nova-osapi_compute', 'nova-metadata'])

UP = 'up'
DOWN = 'down'


class ServiceSource:
    """Where the services of a cloud are listed from (read-only)."""

    #: A short description for errors and logs, password masked.
    description = 'services'

    def list_services(self):
        """Every service of the cloud: a list of dicts with SERVICE_KEYS,
        in a stable order (nova_lite's by id, Nova's by binary and host).

        Raises ``exception.CloudUnavailable`` (one line, password masked)
        when a Nova source cannot be read."""
        raise NotImplementedError

    def close(self):
        """Release connections; ``list_services`` may still be called."""


def utcnow():
    """Aware UTC now."""
    return datetime.datetime.now(datetime.timezone.utc)


def aware(value):
    """``value`` (a naive UTC datetime, an aware one, an ISO 8601 string or
    None) as an aware UTC datetime or None."""
    if value is None or value == '':
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def age_seconds(when, now):
    """Seconds from ``when`` (aware) to ``now``, or None."""
    if when is None:
        return None
    return (now - when).total_seconds()


def topic_from_binary(binary):
    """Nova's topic for a binary: nova-compute -> compute (what
    nova.service.Service does when it is given no topic)."""
    if not binary:
        return binary
    return binary.rpartition('nova-')[2]


def service(**values):
    """A service dict with exactly SERVICE_KEYS (missing ones None)."""
    unknown = set(values) - set(SERVICE_KEYS)
    if unknown:
        raise KeyError('not service keys: %s' % ', '.join(sorted(unknown)))
    service = {key: values.get(key) for key in SERVICE_KEYS}
    if service['heartbeat_age'] is not None:
        # A heartbeat written by a clock a little ahead of ours is fresh.
        service['heartbeat_age'] = max(0.0, service['heartbeat_age'])
    return service


def sorted_services(services):
    return sorted(services, key=lambda svc: (svc['binary'] or '',
                                             svc['host'] or '',
                                             str(svc['id'])))
