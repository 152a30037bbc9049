"""Schema migrations, the DB API and liveness."""

import datetime

import pytest
from alembic import autogenerate
from alembic import migration as alembic_migration

from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite.db import models
from nova_lite import exception
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
