"""Schema migrations with Alembic: ``nova-lite-manage db sync``."""

import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script
from oslo_log import log as logging

from nova_lite import exception
from nova_lite import utils

LOG = logging.getLogger(__name__)

_MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), 'migrations')


def _alembic_config(connection):
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', _MIGRATIONS_DIR)
    # env.py runs on this connection rather than building its own engine.
    cfg.attributes['connection'] = connection
    return cfg


def _ensure_sqlite_dir(url):
    if url.drivername.startswith('sqlite') and url.database not in (
            None, '', ':memory:'):
        os.makedirs(os.path.dirname(os.path.abspath(url.database)),
                    exist_ok=True)


def db_sync(db_api, revision='head'):
    """Create or upgrade the schema to ``revision``; idempotent."""
    _ensure_sqlite_dir(db_api.engine.url)
    with db_api.engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)
    LOG.info('Database %s is at revision %s',
             utils.mask_url(db_api.url), db_version(db_api))


def db_version(db_api):
    """The current schema revision, or None before the first sync."""
    with db_api.engine.connect() as connection:
        return alembic_migration.MigrationContext.configure(
            connection).get_current_revision()


def _scripts():
    return alembic_script.ScriptDirectory.from_config(_alembic_config(None))


def db_head():
    """The newest revision this code knows."""
    return _scripts().get_current_head()


def check_schema(db_api):
    """The schema revision, when it is this code's newest one.

    Raises ``DBSchemaMissing`` before the first sync and
    ``DBSchemaMismatch`` when the schema is older than this code's.  A
    revision this code does not know (a newer schema) is let through: the
    services of an older release keep running while their database is
    upgraded, as in Nova.
    """
    current, head = db_version(db_api), db_head()
    if current is None:
        raise exception.DBSchemaMissing(url=utils.mask_url(db_api.url))
    known = {script.revision for script in _scripts().walk_revisions()}
    if current != head and current in known:
        raise exception.DBSchemaMismatch(url=utils.mask_url(db_api.url),
                                         revision=current, head=head)
    return current

