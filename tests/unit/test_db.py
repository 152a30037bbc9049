"""Schema migrations, the DB API and liveness."""

import datetime
import os
import subprocess
import sys

import pytest
from alembic import autogenerate
from alembic import migration as alembic_migration
from sqlalchemy.dialects import mysql
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc

from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite.db import models
from nova_lite import exception
from nova_lite.scheduler import manager as scheduler_manager
from nova_lite import servicegroup


def test_db_sync_is_idempotent_and_at_head(db):
    first = migration.db_version(db)
    migration.db_sync(db)
    assert migration.db_version(db) == first
    assert first is not None


def test_migrations_match_models(db):
    with db.engine.connect() as connection:
        context = alembic_migration.MigrationContext.configure(connection)
        diff = autogenerate.compare_metadata(context, models.Base.metadata)
    assert diff == []


def test_register_is_upsert_and_heartbeat_counts(db):
    row = db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    again = db.service_register('h1', 'nova-lite-compute', 'compute', '1.1')
    assert again['id'] == row['id']
    assert again['version'] == '1.1'
    assert db.service_heartbeat(row['id']) == 1
    assert db.service_heartbeat(row['id']) == 2


def test_unknown_service_is_named_error(db):
    with pytest.raises(exception.ServiceNotFound):
        db.service_set_disabled('nohost', 'nova-lite-compute', True)


def test_instance_create_twice_is_named_error(db):
    db.instance_create('u1', host='h1')
    with pytest.raises(exception.InstanceExists):
        db.instance_create('u1', host='h1')
    assert db.instance_count_by_host() == {'h1': 1}


def test_is_up_follows_service_down_time():
    now = models.utcnow()
    fresh = {'last_seen_up': now - datetime.timedelta(seconds=5)}
    stale = {'last_seen_up': now - datetime.timedelta(seconds=61)}
    assert servicegroup.is_up(fresh, 60, now)
    assert not servicegroup.is_up(stale, 60, now)
    assert not servicegroup.is_up({'last_seen_up': None}, 60, now)


def test_unreachable_db_error_masks_password(conf):
    conf.set_override('connection',
                      'sqlite:////nonexistent-dir/sub/x.sqlite',
                      group='database')
    conf.set_override('connect_retries', 1, group='database')
    conf.set_override('connect_retry_interval', 0, group='database')
    with pytest.raises(exception.DBConnectionError) as err:
        db_api.API(conf).connect()
    assert 'nonexistent-dir' in str(err.value)


def test_missing_db_driver_is_named_error_with_masked_url(conf):
    conf.set_override('connection', 'mysql+nosuchdriver://u:topsecret@h/db',
                      group='database')
    with pytest.raises(exception.DBConnectionError) as err:
        db_api.API(conf).connect()
    assert 'topsecret' not in str(err.value)
    assert 'mysql+nosuchdriver://u:***@h/db' in str(err.value)


def test_scheduler_does_not_count_deleted_instances(db, conf):
    for host in ('h1', 'h2'):
        db.service_register(host, 'nova-lite-compute', 'compute', '1.0')
    for uuid in ('gone1', 'gone2'):
        db.instance_create(uuid, host='h1', vm_state='deleted')
    db.instance_create('live', host='h2', vm_state='active')
    assert db.instance_count_by_host() == {'h2': 1}
    scheduler = scheduler_manager.SchedulerManager(
        conf=conf, host='s1', db=db, binary='nova-lite-scheduler')
    assert scheduler.select_host(context.get_admin_context()) == 'h1'


def _age(db, uuid, seconds):
    """Make the instance's last update ``seconds`` old."""
    db.instance_update(uuid, updated_at=models.utcnow() -
                       datetime.timedelta(seconds=seconds))


def test_deleted_instances_are_purged_after_the_retention(db):
    for uuid, vm_state, age in (('old-deleted', 'deleted', 7200),
                                ('new-deleted', 'deleted', 60),
                                ('old-active', 'active', 7200),
                                ('old-error', 'error', 7200)):
        db.instance_create(uuid, host='h1', vm_state=vm_state)
        _age(db, uuid, age)
    assert db.instance_purge_deleted(3600) == 1
    assert sorted(i['uuid'] for i in db.instance_get_all()) == [
        'new-deleted', 'old-active', 'old-error']
    assert db.instance_purge_deleted(3600) == 0


def test_no_schema_is_a_named_error(conf):
    api = db_api.API(conf)       # no db sync
    with pytest.raises(exception.DBSchemaMissing) as err:
        api.service_get_all()
    assert 'nova-lite-manage db sync' in str(err.value)
    with pytest.raises(exception.DBSchemaMissing):
        api.check_schema()


def test_older_schema_is_a_named_error(conf):
    api = db_api.API(conf)
    migration.db_sync(api, '003')      # before inflight workers/backend
    with pytest.raises(exception.DBSchemaMismatch) as err:
        api.check_schema()
    assert 'revision 003' in str(err.value)
    with pytest.raises(exception.DBSchemaMismatch):
        api.inflight_samples_add([{'topic': 'compute', 'workers': 1}])
    migration.db_sync(api)
    assert api.check_schema() == migration.db_head()


def test_daemon_refuses_to_start_before_db_sync(conf_fixture):
    path = conf_fixture.write_config_file()
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.scheduler', '--config-file',
         path], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, NOVA_LITE_CONCURRENCY_BACKEND=os.environ.get(
            'NOVA_LITE_CONCURRENCY_BACKEND', 'eventlet')))
    assert result.returncode == 1
    assert 'Traceback' not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        'nova-lite-scheduler: error: The database %s has no schema; run '
        '`nova-lite-manage db sync`' % conf_fixture.conf.database.connection]


class _DriverError(Exception):
    """A DBAPI error with PostgreSQL's SQLSTATE, as psycopg raises."""

    def __init__(self, sqlstate):
        super().__init__('simulated %s' % sqlstate)
        self.sqlstate = sqlstate


@db_api._off_the_hub
class _Flaky:
    """Fails with the given driver errors first, then answers."""

    def __init__(self, *sqlstates):
        self.errors = [sa_exc.OperationalError('UPDATE x', {}, _DriverError(s))
                       for s in sqlstates]
        self.calls = 0

    def work(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return 'done'

    def _named_error(self, exc):
        return None


def test_deadlock_victim_transaction_is_retried():
    flaky = _Flaky('40P01', '40P01')
    assert flaky.work() == 'done'
    assert flaky.calls == 3


def test_other_db_errors_are_not_retried():
    flaky = _Flaky('23505')          # unique_violation
    with pytest.raises(sa_exc.OperationalError):
        flaky.work()
    assert flaky.calls == 1


def test_no_update_or_delete_uses_returning(db):
    """MySQL has no UPDATE/DELETE ... RETURNING (MariaDB none for UPDATE):
    a statement with it fails there however SQLAlchemy compiles it."""
    statements = []
    sa_event.listen(db.engine, 'before_cursor_execute',
                    lambda conn, cursor, statement, *args:
                    statements.append(' '.join(statement.split())))
    row = db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    assert db.service_heartbeat(row['id']) == 1
    assert db.service_heartbeat(row['id']) == 2
    with pytest.raises(exception.ServiceNotFound):
        db.service_heartbeat(row['id'] + 1)
    db.service_set_disabled('h1', 'nova-lite-compute', True)
    db.instance_create('u1', host='h1', vm_state='active')
    work = db.work_create('u1', 'reboot', 'casting', 'c1',
                          guard=('reboot_pending', ['active']))
    claimed = db.work_claim(work, 'c2')
    db.work_update(claimed, step='done', finished=True,
                   instance={'task_state': None})
    db.instance_update('u1', vm_state='deleted')
    db.instance_purge_deleted(0)
    db.work_purge_finished(0)
    changes = [s for s in statements if s.startswith(('UPDATE', 'DELETE'))]
    assert len(changes) >= 8
    assert [s for s in changes if 'RETURNING' in s.upper()] == []


def test_timestamp_and_phase_types_are_precise_on_mysql():
    """MySQL's plain DATETIME drops microseconds and its FLOAT is single
    precision (the PostgreSQL and MariaDB runs check the real thing)."""
    dialect = mysql.dialect()
    sample = models.InflightSample.__table__
    for column in (sample.c.created_at, models.Service.__table__.c.
                   last_seen_up):
        assert column.type.compile(dialect=dialect) == 'DATETIME(6)'
    assert sample.c.total.type.compile(dialect=dialect) == 'DOUBLE'


def test_migration_011_records_prober_and_round(conf):
    """011 adds inflight_samples.prober and round_no (NULL on older rows),
    indexed for the report and for per-round counts; it downgrades."""
    import sqlalchemy as sa
    from alembic import command

    api = db_api.API(conf)
    migration.db_sync(api, '010')
    with api.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO inflight_samples (created_at, topic, host, skew, "
            "timed_out) VALUES (CURRENT_TIMESTAMP, 'compute', 'old', 0, 0)"))
    migration.db_sync(api)
    inspector = sa.inspect(api.engine)
    columns = {c['name']: c for c in inspector.get_columns('inflight_samples')}
    assert columns['prober']['nullable'] and columns['round_no']['nullable']
    assert isinstance(columns['round_no']['type'], sa.BigInteger)
    indexes = {i['name']: i['column_names']
               for i in inspector.get_indexes('inflight_samples')}
    assert indexes['ix_inflight_samples_prober_created_at'] == [
        'prober', 'created_at']
    assert indexes['ix_inflight_samples_round_no'] == ['round_no']
    api.inflight_samples_add([{'topic': 'compute', 'host': 'new',
                               'prober': 'i1-4242', 'round_no': 2 ** 40}])
    assert [(s['host'], s['prober'], s['round_no'])
            for s in api.inflight_samples_since(60)] == [
        ('old', None, None), ('new', 'i1-4242', 2 ** 40)]
    with api.engine.begin() as connection:
        command.downgrade(migration._alembic_config(connection), '010')
    columns = {c['name'] for c in
               sa.inspect(api.engine).get_columns('inflight_samples')}
    assert 'prober' not in columns and 'round_no' not in columns
    api.dispose()


def test_migration_012_records_the_sweep(conf):
    """012 adds what the sweep saw of each service (NULL on older rows,
    whose phases stay as they were); it downgrades."""
    import sqlalchemy as sa
    from alembic import command

    api = db_api.API(conf)
    migration.db_sync(api, '011')
    with api.engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO inflight_samples (created_at, topic, host, skew, "
            "timed_out, total, in_service) VALUES (CURRENT_TIMESTAMP, "
            "'compute', 'old', 0, 0, 12.5, 10.0)"))
    migration.db_sync(api)
    columns = {c['name']: c for c in
               sa.inspect(api.engine).get_columns('inflight_samples')}
    new = ('method', 'up', 'heartbeat_age', 'queue_messages',
           'queue_unacked', 'queue_consumers', 'flags')
    assert all(columns[name]['nullable'] for name in new)
    api.inflight_samples_add([{
        'topic': 'conductor', 'host': 'new', 'total': 2.5, 'method': 'ping',
        'up': True, 'heartbeat_age': 1.25, 'queue_messages': 3,
        'queue_unacked': 4, 'queue_consumers': 0,
        'flags': 'unreachable,no_consumers'}])
    old, new_row = api.inflight_samples_since(60)
    assert [old[name] for name in new] == [None] * len(new)
    assert (old['total'], old['in_service']) == (12.5, 10.0)
    assert [new_row[name] for name in new] == [
        'ping', True, 1.25, 3, 4, 0, 'unreachable,no_consumers']
    assert new_row['in_service'] is None
    with api.engine.begin() as connection:
        command.downgrade(migration._alembic_config(connection), '011')
    columns = {c['name'] for c in
               sa.inspect(api.engine).get_columns('inflight_samples')}
    assert not columns & set(new)
    api.dispose()
