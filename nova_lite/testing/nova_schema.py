"""SQLite databases shaped like a Nova cloud's, for tests of the Nova
service sources (``nova_lite.cloud.nova_db``) without installing Nova.

    cloud = nova_schema.NovaDatabases(tmp_path)
    cell1 = cloud.add_cell('cell1')
    cloud.add_service(cell1, 'node1', 'nova-compute')
    conf.set_override('api_database_connection', cloud.api_url, 'cloud')

The module functions do the same on any database URL (PostgreSQL,
MariaDB): ``create_api_database``, ``create_cell_database``, ``map_cell``,
``add_service``, ``add_aggregate``.

The tables hold only the columns nova_lite reads, with Nova's names and
types: ``cell_mappings``, ``aggregates``, ``aggregate_hosts`` and
``aggregate_metadata`` in the API database; ``services`` in each cell
database.  ``cell0`` is mapped from the start, with an empty services
table, as ``nova-manage cell_v2 map_cell0`` leaves it.
"""

import datetime
import os
import uuid as uuidlib

import sqlalchemy as sa

CELL0_UUID = '00000000-0000-0000-0000-000000000000'

_api = sa.MetaData()
sa.Table('cell_mappings', _api,
         sa.Column('id', sa.Integer, primary_key=True),
         sa.Column('uuid', sa.String(36), nullable=False, unique=True),
         sa.Column('name', sa.String(255)),
         sa.Column('transport_url', sa.Text),
         sa.Column('database_connection', sa.Text),
         sa.Column('disabled', sa.Boolean, default=False))
sa.Table('aggregates', _api,
         sa.Column('id', sa.Integer, primary_key=True),
         sa.Column('uuid', sa.String(36)),
         sa.Column('name', sa.String(255), unique=True))
sa.Table('aggregate_hosts', _api,
         sa.Column('id', sa.Integer, primary_key=True),
         sa.Column('host', sa.String(255)),
         sa.Column('aggregate_id', sa.Integer, nullable=False))
sa.Table('aggregate_metadata', _api,
         sa.Column('id', sa.Integer, primary_key=True),
         sa.Column('aggregate_id', sa.Integer, nullable=False),
         sa.Column('key', sa.String(255), nullable=False),
         sa.Column('value', sa.String(255), nullable=False))

_cell = sa.MetaData()
sa.Table('services', _cell,
         sa.Column('created_at', sa.DateTime),
         sa.Column('updated_at', sa.DateTime),
         sa.Column('id', sa.Integer, primary_key=True),
         sa.Column('uuid', sa.String(36)),
         sa.Column('host', sa.String(255)),
         sa.Column('binary', sa.String(255)),
         sa.Column('topic', sa.String(255)),
         sa.Column('report_count', sa.Integer, nullable=False, default=0),
         sa.Column('disabled', sa.Boolean, default=False),
         sa.Column('disabled_reason', sa.String(255)),
         sa.Column('last_seen_up', sa.DateTime),
         sa.Column('forced_down', sa.Boolean, default=False),
         sa.Column('version', sa.Integer, default=0),
         sa.Column('deleted', sa.Integer, default=0))


def utcnow():
    """Naive UTC now: how Nova stores its timestamps."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def create_api_database(api_url, cell0_url):
    """Nova's API tables in ``api_url`` (an empty database), with cell0
    mapped to ``cell0_url`` (whose services table is created, empty)."""
    create_cell_database(cell0_url)
    _write(api_url, _api, 'cell_mappings', uuid=CELL0_UUID, name='cell0',
           transport_url='none:///', database_connection=cell0_url)


def create_cell_database(url):
    """Nova's ``services`` table in ``url``."""
    engine = sa.create_engine(url)
    try:
        _cell.create_all(engine)
    finally:
        engine.dispose()
    return url


def map_cell(api_url, name, database_connection):
    """A cell_mappings row (``database_connection`` may be a template)."""
    _write(api_url, _api, 'cell_mappings', uuid=str(uuidlib.uuid4()),
           name=name, transport_url='rabbit://nova:secret@localhost/',
           database_connection=database_connection)


def add_service(cell_url, host, binary, topic=None, age=0.0, **values):
    """A services row heartbeating ``age`` seconds ago; ``values`` sets
    any other column (disabled, forced_down, deleted, last_seen_up...)."""
    heartbeat = utcnow() - datetime.timedelta(seconds=age)
    row = dict(uuid=str(uuidlib.uuid4()), host=host, binary=binary,
               topic=topic, created_at=heartbeat, updated_at=heartbeat,
               last_seen_up=heartbeat, report_count=1, version=70)
    row.update(values)
    _write(cell_url, _cell, 'services', **row)
    return row


def add_aggregate(api_url, name, zone, hosts):
    """A host aggregate with availability_zone metadata ``zone``."""
    engine = sa.create_engine(api_url)
    tables = _api.tables
    try:
        with engine.begin() as conn:
            agg_id = conn.execute(tables['aggregates'].insert().values(
                uuid=str(uuidlib.uuid4()), name=name)).inserted_primary_key[0]
            conn.execute(tables['aggregate_metadata'].insert().values(
                aggregate_id=agg_id, key='availability_zone', value=zone))
            for host in hosts:
                conn.execute(tables['aggregate_hosts'].insert().values(
                    aggregate_id=agg_id, host=host))
    finally:
        engine.dispose()


def _write(url, metadata, table, **values):
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(metadata.tables[table].insert().values(**values))
    finally:
        engine.dispose()


class NovaDatabases:
    """An API database and its cell databases, SQLite files under
    ``directory`` (created if missing)."""

    def __init__(self, directory):
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.api_url = self.url('nova_api.sqlite')
        create_api_database(self.api_url, self.url('nova_cell0.sqlite'))

    def url(self, name):
        return 'sqlite:///%s' % os.path.join(self.directory, name)

    def add_cell(self, name, database_connection=None):
        """Map a cell whose services table is in ``<name>.sqlite``;
        ``database_connection`` (e.g. a template) is what the mapping
        stores, default the file's URL.  Returns the cell's URL."""
        url = create_cell_database(self.url('%s.sqlite' % name))
        map_cell(self.api_url, name, database_connection or url)
        return url

    def add_service(self, cell_url, host, binary, topic=None, age=0.0,
                    **values):
        return add_service(cell_url, host, binary, topic, age, **values)

    def add_aggregate(self, name, zone, hosts):
        add_aggregate(self.api_url, name, zone, hosts)
