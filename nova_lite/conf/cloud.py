"""[cloud] options: which cloud nova_lite's tools and its inflight daemon
work on.

``kind = nova_lite`` (the default) is nova_lite's own daemons, as always.
``kind = nova`` is a real OpenStack Nova: its services are listed from
Nova's own databases or from its Compute API, read-only, and
``control_exchange`` defaults to ``nova``.  ``apply(conf)`` runs at
config-load time (``nova_lite.config.parse_args``): it sets that default
and rejects bad combinations with one line.
"""

from oslo_config import cfg

from nova_lite import exception

NOVA_LITE = 'nova_lite'
NOVA = 'nova'
FROM_DATABASE = 'database'
FROM_API = 'api'

# The exchange Nova's services listen on: oslo.messaging's control_exchange
# as Nova sets it (nova/rpc.py, ``set_transport_defaults('nova')``).
NOVA_CONTROL_EXCHANGE = 'nova'

cloud_group = cfg.OptGroup(
    'cloud', title='The cloud to measure',
    help='nova_lite (its own daemons) or a real OpenStack Nova, whose '
         'services nova_lite lists read-only and pings over its broker.')

_opts = [
    cfg.StrOpt('kind', default=NOVA_LITE,
               choices=((NOVA_LITE, 'nova_lite\'s own daemons'),
                        (NOVA, 'a real OpenStack Nova')),
               help='nova_lite: nova_lite\'s own daemons, their services '
                    'table in [database] connection. nova: a real '
                    'OpenStack Nova on the broker of transport_url; '
                    'control_exchange then defaults to nova, and the '
                    'services come from services_from.'),
    cfg.StrOpt('services_from', default=FROM_DATABASE,
               choices=((FROM_DATABASE, 'Nova\'s databases, read-only'),
                        (FROM_API, 'the Compute API\'s os-services')),
               help='With kind = nova, where the list of Nova\'s services '
                    'comes from. database: Nova\'s API database '
                    '(api_database_connection), its cell_mappings, and each '
                    'cell database\'s services table, read-only. api: the '
                    'Compute API\'s os-services, through the clouds.yaml '
                    'entry os_cloud (no database credentials needed).'),
    cfg.StrOpt('api_database_connection', secret=True,
               help='With services_from = database: the SQLAlchemy URL of '
                    'Nova\'s API database (Nova\'s [api_database] '
                    'connection). It is only ever read: SQLite is opened '
                    'with mode=ro, PostgreSQL and MySQL sessions are made '
                    'read-only. The cell databases come from its '
                    'cell_mappings table (cell0 is skipped: it has no '
                    'services).'),
    cfg.StrOpt('os_cloud',
               help='With services_from = api: the name of a clouds.yaml '
                    'entry (as OS_CLOUD for the openstack CLI), read by '
                    'openstacksdk from its usual places. Its user needs '
                    'the admin role to list compute services.'),
    cfg.IntOpt('service_down_time', default=60, min=1,
               help='With services_from = database: a Nova service whose '
                    'last heartbeat is older than this many seconds is '
                    'down, as Nova\'s own database servicegroup driver '
                    'decides with Nova\'s [DEFAULT] service_down_time. '
                    'Keep it equal to the cloud\'s.'),
]


def register_opts(conf):
    conf.register_group(cloud_group)
    conf.register_opts(_opts, group=cloud_group)


def list_opts():
    return [(cloud_group.name, _opts)]


def is_nova(conf):
    """True when ``conf`` points nova_lite at a real Nova."""
    return conf.cloud.kind == NOVA


def apply(conf):
    """Config-load step: default ``control_exchange`` to Nova's with
    ``kind = nova`` (a value set in a config file still wins), then check
    the [cloud] options.  Raises ``exception.CloudConfigError``."""
    if is_nova(conf):
        conf.set_default('control_exchange', NOVA_CONTROL_EXCHANGE)
    check(conf)


def check(conf):
    """Reject [cloud] combinations that cannot list a cloud's services."""
    cloud = conf.cloud
    if cloud.kind != NOVA:
        return
    if (cloud.services_from == FROM_DATABASE
            and not cloud.api_database_connection):
        raise exception.CloudConfigError(
            reason='kind = nova with services_from = database needs '
                   'api_database_connection (Nova\'s [api_database] '
                   'connection)')
    if cloud.services_from == FROM_API and not cloud.os_cloud:
        raise exception.CloudConfigError(
            reason='kind = nova with services_from = api needs os_cloud '
                   '(a clouds.yaml entry)')
