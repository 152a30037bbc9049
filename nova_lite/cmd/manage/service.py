"""nova-lite-manage service: list, disable and enable services."""

import datetime

from nova_lite import cloud
from nova_lite.cmd import output
from nova_lite.conf import cloud as cloud_conf
from nova_lite.db import api as db_api
from nova_lite import exception

LIST_COLUMNS = ('id', 'host', 'binary', 'topic', 'status', 'disabled',
                'updated_at', 'version', 'metrics')
# [cloud] kind = nova: the same columns, plus the availability zone.
NOVA_LIST_COLUMNS = LIST_COLUMNS + ('zone',)


def add_parser(groups):
    parser = groups.add_parser('service', help='Registered services.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    listing = commands.add_parser(
        'list', help='One row per service, with up/down from heartbeats '
                     '(with [cloud] kind = nova: the Nova cloud\'s services, '
                     'read-only, plus their zone).')
    listing.add_argument('--json', action='store_true',
                         help='Print a JSON array of objects.')
    listing.set_defaults(func=list_command)
    for name, disabled in (('disable', True), ('enable', False)):
        cmd = commands.add_parser(name, help='%s a service.' %
                                  name.capitalize())
        cmd.add_argument('host')
        cmd.add_argument('binary', help='e.g. nova-lite-compute')
        if disabled:
            cmd.add_argument('--reason', help='Why it is disabled.')
        cmd.set_defaults(func=set_disabled_command, disabled=disabled)


def list_columns(conf):
    return NOVA_LIST_COLUMNS if cloud_conf.is_nova(conf) else LIST_COLUMNS


def _naive_utc(value):
    # Shown as nova_lite always showed its timestamps: naive UTC.
    if value is None:
        return None
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def service_rows(conf, db=None):
    """The rows of ``service list``: exactly ``list_columns(conf)`` per
    service, from the cloud's service source."""
    source = cloud.services_source(conf, db=db)
    try:
        services = source.list_services()
    finally:
        source.close()
    columns = list_columns(conf)
    rows = []
    for svc in services:
        row = {column: svc[column] for column in columns}
        row['updated_at'] = _naive_utc(row['updated_at'])
        rows.append(row)
    return rows


def list_command(conf, args):
    db = None if cloud_conf.is_nova(conf) else db_api.API(conf)
    rows = service_rows(conf, db)
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(list_columns(conf), rows)


def set_disabled_command(conf, args):
    if cloud_conf.is_nova(conf):
        # Nothing is ever written to a Nova cloud.
        raise exception.InvalidInput(
            reason='service %s changes nova_lite\'s own services; with '
                   '[cloud] kind = nova use `openstack compute service set`'
                   % args.command)
    db = db_api.API(conf)
    svc = db.service_set_disabled(args.host, args.binary, args.disabled,
                                  getattr(args, 'reason', None))
    print('%s on %s is %s' % (svc['binary'], svc['host'],
                              'disabled' if svc['disabled'] else 'enabled'))
