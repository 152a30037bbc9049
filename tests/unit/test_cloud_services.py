"""The service sources of nova_lite.cloud: nova_lite's own, Nova's
databases (SQLite files shaped like Nova's) and Nova's API (a fake
openstacksdk connection)."""

import datetime
import hashlib
import json
import subprocess
import sys
import types

import pytest
import sqlalchemy as sa

from nova_lite import cloud
from nova_lite.cloud import base
from nova_lite.cloud import nova_api
from nova_lite.cloud import nova_db
from nova_lite.cloud import own
from nova_lite.cloud import readonly
from nova_lite.cmd import manage
from nova_lite.cmd.manage import service as service_commands
from nova_lite import exception
from nova_lite.testing import nova_schema

UTC = datetime.timezone.utc


def _by_host_binary(services):
    return {(svc['host'], svc['binary']): svc for svc in services}


def _digest(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# -- nova_lite's own ------------------------------------------------------

def test_own_source_wraps_the_services_table(conf, db):
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    source = cloud.services_source(conf, db=db)
    assert isinstance(source, own.OwnServices)
    [svc] = source.list_services()
    assert tuple(svc) == base.SERVICE_KEYS
    assert (svc['host'], svc['binary'], svc['topic'], svc['status'],
            svc['disabled'], svc['version'], svc['zone']) == (
        'h1', 'nova-lite-compute', 'compute', 'up', False, '1.0', None)
    assert svc['updated_at'].tzinfo is UTC
    assert 0 <= svc['heartbeat_age'] < 60


# -- Nova's databases -----------------------------------------------------

def _tmp_nova(tmp_path):
    return nova_schema.NovaDatabases(tmp_path / 'nova')


@pytest.fixture
def cloud_dbs(tmp_path):
    """Two cells (one mapped through a template URL) and cell0."""
    nova = _tmp_nova(tmp_path)
    cell1 = nova.add_cell('cell1')
    cell2_file = nova.url('cell2.sqlite')[len('sqlite:///'):]
    cell2 = nova.add_cell('cell2',
                          database_connection='{scheme}:///' + cell2_file)
    nova.add_service(cell1, 'ctl', 'nova-conductor', topic='conductor')
    nova.add_service(cell1, 'ctl', 'nova-scheduler', topic=None)
    nova.add_service(cell1, 'node1', 'nova-compute', topic='compute')
    nova.add_service(cell1, 'node2', 'nova-compute', topic='compute',
                     age=3600, disabled=True)
    nova.add_service(cell1, 'gone', 'nova-compute', topic='compute',
                     deleted=7)
    nova.add_service(cell1, 'ctl', 'nova-osapi_compute', topic=None,
                     age=3600)
    nova.add_service(cell2, 'node3', 'nova-compute', topic='compute',
                     forced_down=True)
    nova.add_service(cell2, 'node4', 'nova-compute', topic='compute',
                     last_seen_up=None, created_at=nova_schema.utcnow() -
                     datetime.timedelta(hours=2))
    nova.add_aggregate('rack1', 'az1', ['node1'])
    nova.add_aggregate('rack1b', 'az0', ['node1'])
    return nova


def _nova_source(conf, nova, down_time=60):
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('api_database_connection', nova.api_url, 'cloud')
    conf.set_override('service_down_time', down_time, 'cloud')
    source = cloud.services_source(conf)
    assert isinstance(source, nova_db.NovaDatabaseServices)
    return source


def test_nova_database_lists_every_cell_but_cell0(conf, cloud_dbs):
    source = _nova_source(conf, cloud_dbs)
    services = source.list_services()
    source.close()
    assert all(tuple(svc) == base.SERVICE_KEYS for svc in services)
    found = _by_host_binary(services)
    # By binary and host; 'gone' is deleted; nova-osapi_compute is no RPC
    # service (os-services leaves it out too).
    assert list(found) == [
        ('node1', 'nova-compute'), ('node2', 'nova-compute'),
        ('node3', 'nova-compute'), ('node4', 'nova-compute'),
        ('ctl', 'nova-conductor'), ('ctl', 'nova-scheduler')]
    conductor = found['ctl', 'nova-conductor']
    assert conductor['status'] == 'up' and conductor['zone'] == 'internal'
    assert found['ctl', 'nova-scheduler']['topic'] == 'scheduler'
    node1 = found['node1', 'nova-compute']
    assert (node1['status'], node1['zone'], node1['topic']) == (
        'up', 'az0,az1', 'compute')
    assert node1['updated_at'].tzinfo is UTC
    assert 0 <= node1['heartbeat_age'] < 60
    assert isinstance(node1['id'], str) and len(node1['id']) == 36
    assert node1['version'] == 70 and node1['metrics'] is None
    node2 = found['node2', 'nova-compute']
    assert (node2['status'], node2['disabled'], node2['zone']) == (
        'down', True, 'nova')
    assert node2['heartbeat_age'] >= 3600
    # An operator's forced down wins over a fresh heartbeat.
    assert found['node3', 'nova-compute']['status'] == 'down'
    # No last_seen_up: Nova 34 decides on created_at, not updated_at
    # (which os-services shows).
    node4 = found['node4', 'nova-compute']
    assert node4['status'] == 'down' and node4['heartbeat_age'] >= 7200
    assert (base.utcnow() - node4['updated_at']).total_seconds() < 60


def test_nova_service_down_time_decides_up(conf, tmp_path):
    nova = _tmp_nova(tmp_path)
    cell1 = nova.add_cell('cell1')
    nova.add_service(cell1, 'node1', 'nova-compute', topic='compute',
                     age=90)
    [svc] = _nova_source(conf, nova, down_time=60).list_services()
    assert svc['status'] == 'down'
    [svc] = _nova_source(conf, nova, down_time=120).list_services()
    assert svc['status'] == 'up'


def test_nova_database_is_never_written(conf, cloud_dbs):
    files = [cloud_dbs.api_url, cloud_dbs.url('cell1.sqlite'),
             cloud_dbs.url('cell2.sqlite'), cloud_dbs.url('nova_cell0.sqlite')]
    paths = [url[len('sqlite:///'):] for url in files]
    before = [_digest(path) for path in paths]
    source = _nova_source(conf, cloud_dbs)
    assert len(source.list_services()) == 6
    source.close()
    assert [_digest(path) for path in paths] == before


def test_readonly_engine_refuses_writes(cloud_dbs):
    engine = readonly.engine(cloud_dbs.url('cell1.sqlite'))
    try:
        with engine.connect() as conn:
            with pytest.raises(sa.exc.OperationalError,
                               match='readonly|read-only|query_only'):
                conn.execute(sa.text('DELETE FROM services'))
            # Besides mode=ro, the connection refuses writes itself.
            assert conn.execute(sa.text('PRAGMA query_only')).scalar() == 1
    finally:
        engine.dispose()


def test_missing_sqlite_file_is_an_error_not_a_new_database(conf, tmp_path):
    missing = tmp_path / 'nova_api.sqlite'
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('api_database_connection', 'sqlite:///%s' % missing,
                      'cloud')
    source = cloud.services_source(conf)
    with pytest.raises(exception.CloudUnavailable) as err:
        source.list_services()
    assert not missing.exists()
    assert 'the API database' in str(err.value)


def test_unreachable_nova_database_is_one_line_password_masked(conf):
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('api_database_connection',
                      'postgresql+psycopg://nova:s3cr3t-pw@127.0.0.1:1/'
                      'nova_api',
                      'cloud')
    source = cloud.services_source(conf)
    with pytest.raises(exception.CloudUnavailable) as err:
        source.list_services()
    message = str(err.value)
    assert '\n' not in message
    assert 's3cr3t-pw' not in message
    assert 'nova:***@127.0.0.1:1/nova_api' in message


@pytest.mark.parametrize('url', [
    'mysql+mysqldb://nova:s3cr3t-pw@127.0.0.1/nova_api',   # no driver
    'nosuchdb://nova:s3cr3t-pw@127.0.0.1/nova_api',
    'not a url at all s3cr3t-pw'])
def test_bad_nova_database_url_is_one_line(conf, url):
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('api_database_connection', url, 'cloud')
    with pytest.raises(exception.CloudUnavailable) as err:
        cloud.services_source(conf).list_services()
    assert '\n' not in str(err.value)
    assert 's3cr3t-pw' not in str(err.value) or url.startswith('not a url')


def test_cell_without_services_table_is_named(conf, tmp_path):
    nova = _tmp_nova(tmp_path)
    nova.add_cell('cell1', database_connection=nova.url('empty.sqlite'))
    sa.create_engine(nova.url('empty.sqlite')).connect().close()
    with pytest.raises(exception.CloudUnavailable) as err:
        _nova_source(conf, nova).list_services()
    assert 'cell cell1' in str(err.value)
    assert 'services' in str(err.value)


@pytest.mark.parametrize('template, default, expected', [
    ('sqlite:////var/lib/nova/cell1.sqlite', 'mysql+pymysql://a:b@h/api',
     'sqlite:////var/lib/nova/cell1.sqlite'),
    ('{scheme}://{username}:{password}@{hostname}/nova_cell1?{query}',
     'mysql+pymysql://nova:pw@db.example:3306/nova_api?charset=utf8',
     'mysql+pymysql://nova:pw@db.example/nova_cell1?charset=utf8'),
    ('{scheme}://{username}:{password}@{hostname}:{port}/{path}_cell1',
     'postgresql://nova:pw@db:5433/nova',
     'postgresql://nova:pw@db:5433/nova_cell1'),
    ('mysql://{username1}@{hostname2}/c', 'mysql://u1:p@h1,u2:p@h2/api',
     'mysql://u1@h2/c'),
    # What cannot be filled is left as it is, as Nova does.
    ('{nosuchkey}://x', 'mysql://u:p@h/api', '{nosuchkey}://x'),
])
def test_cell_url_templates(template, default, expected):
    assert readonly.format_cell_url(template, default) == expected


# -- Nova's API -------------------------------------------------------------

class FakeSDKError(Exception):
    pass


def _api_service(**values):
    body = dict(id='9e0a-uuid', host='ctl', binary='nova-conductor',
                availability_zone='internal', status='enabled', state='up',
                updated_at='2026-12-07T11:00:00.000000', disabled_reason=None,
                is_forced_down=False)
    body.update(values)
    return types.SimpleNamespace(**body)


class FakeConnection:
    """What NovaAPIServices uses of an openstacksdk Connection."""

    def __init__(self, services=(), error=None):
        self.compute = self
        self._services = list(services)
        self._error = error
        self.closed = False

    def services(self):
        if self._error:
            raise self._error
        return iter(self._services)

    def close(self):
        self.closed = True


def _api_source(conf, connection, errors=(FakeSDKError,)):
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('services_from', 'api', 'cloud')
    conf.set_override('os_cloud', 'devstack-admin', 'cloud')
    clouds = []

    def connect(cloud_name):
        clouds.append(cloud_name)
        return connection
    source = nova_api.NovaAPIServices(conf, connect=connect, errors=errors)
    return source, clouds


def test_api_source_maps_os_services(conf):
    connection = FakeConnection([
        _api_service(),
        _api_service(id='c0mp-uuid', host='node1', binary='nova-compute',
                     availability_zone='az1', status='disabled',
                     state='down', updated_at=None)])
    source, clouds = _api_source(conf, connection)
    services = source.list_services()
    assert clouds == ['devstack-admin']
    assert all(tuple(svc) == base.SERVICE_KEYS for svc in services)
    compute, conductor = services
    assert conductor == dict(
        id='9e0a-uuid', host='ctl', binary='nova-conductor',
        topic='conductor', status='up', disabled=False,
        updated_at=datetime.datetime(2026, 12, 7, 11, 0, tzinfo=UTC),
        version=None, zone='internal',
        heartbeat_age=conductor['heartbeat_age'], metrics=None)
    assert conductor['heartbeat_age'] > 0
    assert (compute['topic'], compute['status'], compute['disabled'],
            compute['zone'], compute['updated_at'],
            compute['heartbeat_age']) == (
        'compute', 'down', True, 'az1', None, None)
    source.close()
    assert connection.closed


def test_api_errors_are_one_line(conf):
    source, _ = _api_source(conf, FakeConnection(error=FakeSDKError(
        'Unable to establish connection to\nhttp://u:pw@ks:5000/v3')))
    with pytest.raises(exception.CloudUnavailable) as err:
        source.list_services()
    assert str(err.value) == (
        "Cannot list the services of the Nova cloud from Compute API of "
        "cloud 'devstack-admin': Unable to establish connection to "
        "http://u:***@ks:5000/v3")


def test_api_unknown_cloud_with_real_openstacksdk(conf, tmp_path,
                                                  monkeypatch):
    """The real SDK, no network: a clouds.yaml without the entry."""
    clouds_yaml = tmp_path / 'clouds.yaml'
    clouds_yaml.write_text('clouds:\n  other:\n    auth:\n'
                           '      auth_url: http://127.0.0.1:1/v3\n')
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(clouds_yaml))
    conf.set_override('kind', 'nova', 'cloud')
    conf.set_override('services_from', 'api', 'cloud')
    conf.set_override('os_cloud', 'nosuchcloud', 'cloud')
    source = cloud.services_source(conf)
    assert isinstance(source, nova_api.NovaAPIServices)
    with pytest.raises(exception.CloudUnavailable) as err:
        source.list_services()
    assert 'nosuchcloud' in str(err.value)
    assert '\n' not in str(err.value)


def test_own_daemons_do_not_import_openstacksdk():
    code = ('import sys, nova_lite.monkey_patch, nova_lite.cloud, '
            'nova_lite.cmd.inflight, nova_lite.cmd.manage; '
            'print("openstack" in sys.modules)')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == 'False', result.stderr


# -- nova-lite-manage service list ----------------------------------------

def _run(conf_fixture, capsys, extra, *args):
    path = conf_fixture.write_config_file(extra=extra)
    code = manage.main(['--config-file', path] + list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_manage_service_list_on_nova_database(conf_fixture, cloud_dbs,
                                              capsys):
    extra = {'cloud': {'kind': 'nova',
                       'api_database_connection': cloud_dbs.api_url}}
    code, out, _ = _run(conf_fixture, capsys, extra, 'service', 'list',
                        '--json')
    rows = json.loads(out)
    assert code == 0
    assert {tuple(row) for row in rows} == {
        service_commands.NOVA_LIST_COLUMNS}
    found = _by_host_binary(rows)
    assert found['node1', 'nova-compute']['zone'] == 'az0,az1'
    assert found['ctl', 'nova-conductor']['status'] == 'up'
    # Shown as nova_lite's own timestamps: naive UTC ISO 8601.
    assert datetime.datetime.fromisoformat(
        found['ctl', 'nova-conductor']['updated_at']).tzinfo is None
    code, out, _ = _run(conf_fixture, capsys, extra, 'service', 'list')
    header = out.splitlines()[0].split()
    assert header == list(service_commands.NOVA_LIST_COLUMNS)
    assert len(out.splitlines()) == 1 + 6


def test_manage_service_disable_refuses_on_nova(conf_fixture, cloud_dbs,
                                                capsys):
    extra = {'cloud': {'kind': 'nova',
                       'api_database_connection': cloud_dbs.api_url}}
    with pytest.raises(SystemExit) as exit_info:
        _run(conf_fixture, capsys, extra, 'service', 'disable', 'node1',
             'nova-compute')
    assert exit_info.value.code == 1
    assert 'openstack compute service set' in capsys.readouterr().err


def test_manage_unreachable_nova_is_one_line_exit_1(conf_fixture):
    path = conf_fixture.write_config_file('manage.conf', extra={'cloud': {
        'kind': 'nova', 'api_database_connection':
            'mysql+pymysql://nova:s3cr3t-pw@127.0.0.1:1/nova_api'}})
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file', path,
         'service', 'list', '--json'],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ''
    [line] = result.stderr.splitlines()
    assert line.startswith(
        'nova-lite-manage: error: Cannot list the services of the Nova '
        'cloud from mysql+pymysql://nova:***@127.0.0.1:1/nova_api '
        '(the API database): ')
    assert 's3cr3t-pw' not in result.stderr


def test_cell0_is_never_opened(conf, tmp_path):
    """cell0 holds no services; its database is not even read (here it
    does not exist)."""
    nova = _tmp_nova(tmp_path)
    engine = sa.create_engine(nova.api_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE cell_mappings SET database_connection = :url WHERE "
            "uuid = :uuid"), {'url': nova.url('missing/cell0.sqlite'),
                              'uuid': nova_schema.CELL0_UUID})
    engine.dispose()
    cell1 = nova.add_cell('cell1')
    nova.add_service(cell1, 'ctl', 'nova-conductor', topic='conductor')
    assert [svc['host'] for svc in
            _nova_source(conf, nova).list_services()] == ['ctl']
