"""nova-lite-manage db: schema commands."""

from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite import utils


def add_parser(groups):
    parser = groups.add_parser('db', help='Database schema commands.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    sync = commands.add_parser(
        'sync', help='Create or upgrade the schema (safe to repeat).')
    sync.set_defaults(func=sync_command)
    version = commands.add_parser('version',
                                  help='Print the schema revision.')
    version.set_defaults(func=version_command)


def sync_command(conf, args):
    db = db_api.API(conf)
    db.connect()
    migration.db_sync(db)
    print('Database %s is at revision %s' % (utils.mask_url(db.url),
                                             migration.db_version(db)))


def version_command(conf, args):
    db = db_api.API(conf)
    db.connect()
    print(migration.db_version(db) or 'none (run "db sync")')
