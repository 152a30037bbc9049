"""Nova's databases on PostgreSQL and MariaDB, read through
``[cloud] services_from = database``: the services are listed, and the
connections refuse writes.  The tables are shaped like Nova's
(nova_lite/testing/nova_schema.py), in fresh databases of the servers
that ``sql_servers`` provides (a missing server fails the test)."""

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from nova_lite import cloud
from nova_lite.cloud import readonly
from nova_lite.testing import nova_schema


@pytest.fixture(scope='module', params=['postgresql', 'mysql'])
def nova_on_server(request, sql_servers):
    server = sql_servers(request.param)
    api_url = server.database('nova_api')
    cell1_url = server.database('nova_cell1')
    nova_schema.create_api_database(api_url, server.database('nova_cell0'))
    nova_schema.create_cell_database(cell1_url)
    nova_schema.map_cell(api_url, 'cell1', cell1_url)
    nova_schema.add_service(cell1_url, 'ctl', 'nova-conductor',
                            topic='conductor')
    nova_schema.add_service(cell1_url, 'node1', 'nova-compute',
                            topic='compute')
    nova_schema.add_aggregate(api_url, 'rack1', 'az1', ['node1'])
    return api_url, cell1_url


def test_services_listed_from_server(conf, nova_on_server):
    api_url, _ = nova_on_server
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('api_database_connection', api_url, 'cloud')
    source = cloud.services_source(conf)
    try:
        services = source.list_services()
    finally:
        source.close()
    assert [(svc['host'], svc['binary'], svc['status'], svc['zone'])
            for svc in services] == [
        ('node1', 'nova-compute', 'up', 'az1'),
        ('ctl', 'nova-conductor', 'up', 'internal')]


def test_connections_refuse_writes(nova_on_server):
    for url in nova_on_server:
        engine = readonly.engine(url)
        try:
            with engine.connect() as conn:
                with pytest.raises(sa_exc.DBAPIError,
                                   match='(?i)read.only'):
                    conn.execute(sa.text('DELETE FROM cell_mappings'
                                         if url == nova_on_server[0] else
                                         'DELETE FROM services'))
        finally:
            engine.dispose()
