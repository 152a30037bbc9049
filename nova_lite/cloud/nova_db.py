"""A Nova cloud's services from Nova's own databases, read-only.

The way Nova finds them (``nova-manage cell_v2 list_cells``, the
os-services API): the API database's ``cell_mappings`` names every cell's
database; each cell database's ``services`` table holds that cell's
services (``deleted = 0``; the rows of nova-api's WSGI services,
``nova-osapi_compute`` and ``nova-metadata``, are left out as os-services
leaves them out: they have no RPC server and no heartbeat).  cell0
(uuid 00000000-...) is skipped: it holds only instances that failed to
build, never services.

A cell's ``database_connection`` may be a template (``{scheme}://
{username}:{password}@{hostname}/nova_cell1``).  Nova fills it from its own
[database] connection, which nova_lite does not have: it is filled from
``[cloud] api_database_connection`` instead, which is right when the cell
databases share the API database's server and credentials (the usual
single-server deployment) and wrong otherwise.

Up or down is what Nova's default (database) servicegroup driver says: the
last heartbeat (``last_seen_up``, else ``created_at``) within ``[cloud]
service_down_time`` seconds, either way (Nova compares the absolute
difference); a service that an operator forced down is down (os-services
shows it so).  ``heartbeat_age`` is that heartbeat's age; ``updated_at``
is the row's, as os-services shows it (each heartbeat updates the row).

Zones are what os-services shows: a nova-compute's host is in the
availability zone of its host aggregates (the API database's aggregates
with an ``availability_zone`` key; several are joined with ``,``), else in
Nova's default ``nova``; every other service is in ``internal``.  A cloud
that changed Nova's ``default_availability_zone`` or
``internal_service_availability_zone`` shows other names in os-services.
"""

import sqlalchemy as sa
from oslo_log import log as logging
from sqlalchemy import exc as sa_exc

from nova_lite.cloud import base
from nova_lite.cloud import readonly
from nova_lite import concurrency
from nova_lite import exception
from nova_lite import utils

LOG = logging.getLogger(__name__)

CELL0_UUID = '00000000-0000-0000-0000-000000000000'
# Nova's defaults for [DEFAULT] default_availability_zone and
# internal_service_availability_zone.
DEFAULT_AVAILABILITY_ZONE = 'nova'
INTERNAL_AVAILABILITY_ZONE = 'internal'

# Only the columns read, in Nova's names (``binary`` is quoted where the
# dialect needs it: a reserved word in MySQL).
_cell_mappings = sa.table(
    'cell_mappings', sa.column('id'), sa.column('uuid'), sa.column('name'),
    sa.column('database_connection'))
_services = sa.table(
    'services', sa.column('id'), sa.column('uuid'), sa.column('host'),
    sa.column('binary'), sa.column('topic'),
    sa.column('disabled', sa.Boolean), sa.column('forced_down', sa.Boolean),
    sa.column('version'), sa.column('last_seen_up', sa.DateTime),
    sa.column('updated_at', sa.DateTime),
    sa.column('created_at', sa.DateTime), sa.column('deleted'))
_aggregate_hosts = sa.table(
    'aggregate_hosts', sa.column('host'), sa.column('aggregate_id'))
_aggregate_metadata = sa.table(
    'aggregate_metadata', sa.column('aggregate_id'), sa.column('key'),
    sa.column('value'))


class NovaDatabaseServices(base.ServiceSource):
    """The services of ``[cloud] kind = nova``, ``services_from =
    database``: every cell's ``services`` table, found through the API
    database's ``cell_mappings``."""

    def __init__(self, conf):
        self.api_url = conf.cloud.api_database_connection
        self.service_down_time = conf.cloud.service_down_time
        self.description = 'Nova database %s' % utils.mask_url(self.api_url)
        self._engines = {}

    def list_services(self):
        return concurrency.call_blocking_io(self._list_services)

    def close(self):
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            engine.dispose()

    def cells(self):
        """``[(uuid, name, database URL)]`` of the cells that have
        services (every cell but cell0), templates filled."""
        return concurrency.call_blocking_io(self._cells)

    def _list_services(self):
        now = base.utcnow()
        zones = self._compute_zones()
        services = []
        for uuid, name, url in self._cells():
            for row in self._read(url, 'cell %s' % (name or uuid),
                                  self._service_rows):
                services.append(self._service(row, zones, now))
        return base.sorted_services(services)

    def _cells(self):
        rows = self._read(self.api_url, 'the API database', lambda conn: (
            conn.execute(sa.select(_cell_mappings)
                         .order_by(_cell_mappings.c.id)).all()))
        cells = [(row.uuid, row.name,
                  readonly.format_cell_url(row.database_connection,
                                           self.api_url))
                 for row in rows if row.uuid != CELL0_UUID]
        LOG.debug('Nova cells with services: %s', ', '.join(
            '%s %s' % (name or uuid, utils.mask_url(url))
            for uuid, name, url in cells))
        return cells

    def _compute_zones(self):
        """{host: zone} for hosts in an aggregate with a zone."""
        def query(conn):
            return conn.execute(
                sa.select(_aggregate_hosts.c.host, _aggregate_metadata.c.value)
                .join_from(_aggregate_hosts, _aggregate_metadata,
                           _aggregate_hosts.c.aggregate_id ==
                           _aggregate_metadata.c.aggregate_id)
                .where(_aggregate_metadata.c.key == 'availability_zone')
            ).all()
        zones = {}
        for host, zone in self._read(self.api_url, 'the API database', query):
            zones.setdefault(host, set()).add(zone)
        return {host: ','.join(sorted(names)) for host, names in zones.items()}

    @staticmethod
    def _service_rows(conn):
        return conn.execute(
            sa.select(_services)
            .where(_services.c.deleted == 0,
                   _services.c.binary.not_in(base.NO_RPC_BINARIES))).all()

    def _service(self, row, zones, now):
        topic = row.topic or base.topic_from_binary(row.binary)
        # Nova 34's DB servicegroup driver: last_seen_up, else created_at.
        heartbeat = base.aware(row.last_seen_up or row.created_at)
        age = base.age_seconds(heartbeat, now)
        # Nova compares abs(elapsed): a clock ahead is no reason for down.
        up = (age is not None and abs(age) <= self.service_down_time
              and not row.forced_down)
        if topic == 'compute':
            zone = zones.get(row.host, DEFAULT_AVAILABILITY_ZONE)
        else:
            zone = INTERNAL_AVAILABILITY_ZONE
        return base.service(
            id=row.uuid or row.id, host=row.host, binary=row.binary,
            topic=topic, status=base.UP if up else base.DOWN,
            disabled=bool(row.disabled),
            # What os-services shows (a heartbeat updates the row).
            updated_at=base.aware(row.updated_at),
            version=row.version, zone=zone, heartbeat_age=age, metrics=None)

    def _engine(self, url):
        if url not in self._engines:
            self._engines[url] = readonly.engine(url)
        return self._engines[url]

    def _read(self, url, what, query):
        """``query(connection)`` in a transaction that is rolled back;
        any failure is a ``CloudUnavailable`` naming ``what`` and its URL,
        password masked."""
        try:
            with self._engine(url).connect() as conn:
                try:
                    return query(conn)
                finally:
                    conn.rollback()
        except (sa_exc.SQLAlchemyError, ImportError, ValueError, KeyError,
                IndexError) as exc:
            # ImportError: the URL's driver is not installed.
            reason = ' '.join(str(exc).split('\n')[0].split())
            raise exception.CloudUnavailable(
                source='%s (%s)' % (utils.mask_url(url), what),
                reason=utils.mask_url(reason)) from None
