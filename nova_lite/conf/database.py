"""[database] options."""

from oslo_config import cfg

database_group = cfg.OptGroup('database', title='Database options')

_opts = [
    cfg.StrOpt('connection',
               secret=True,
               default='sqlite:///$state_path/nova_lite.sqlite',
               help='SQLAlchemy URL of the database, e.g. '
                    'postgresql+psycopg2://user:pass@db/nova_lite. The '
                    'default is a SQLite file in state_path.'),
    cfg.IntOpt('connect_retries',
               default=10, min=0,
               help='How many times to retry connecting at start-up.'),
    cfg.FloatOpt('connect_retry_interval',
                 default=2.0, min=0,
                 help='Seconds between start-up connection retries.'),
]


def register_opts(conf):
    conf.register_group(database_group)
    conf.register_opts(_opts, group=database_group)


def list_opts():
    return [(database_group.name, _opts)]
