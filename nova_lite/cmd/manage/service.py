"""nova-lite-manage service: list, disable and enable services."""

from nova_lite.cmd import output
from nova_lite.db import api as db_api
from nova_lite import servicegroup

LIST_COLUMNS = ('id', 'host', 'binary', 'topic', 'status', 'disabled',
                'updated_at', 'version', 'metrics')


def add_parser(groups):
    parser = groups.add_parser('service', help='Registered services.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    listing = commands.add_parser(
        'list', help='One row per service, with up/down from heartbeats.')
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


def service_rows(conf, db):
    """The rows of ``service list``: exactly LIST_COLUMNS per service."""
    rows = []
    for svc in db.service_get_all():
        rows.append({
            'id': svc['id'], 'host': svc['host'], 'binary': svc['binary'],
            'topic': svc['topic'],
            'status': servicegroup.status(svc, conf.service_down_time),
            'disabled': svc['disabled'],
            'updated_at': svc['last_seen_up'], 'version': svc['version'],
            # host:port of the process's /metrics (None: not listening).
            'metrics': svc['metrics_address'],
        })
    return rows


def list_command(conf, args):
    rows = service_rows(conf, db_api.API(conf))
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(LIST_COLUMNS, rows)


def set_disabled_command(conf, args):
    db = db_api.API(conf)
    svc = db.service_set_disabled(args.host, args.binary, args.disabled,
                                  getattr(args, 'reason', None))
    print('%s on %s is %s' % (svc['binary'], svc['host'],
                              'disabled' if svc['disabled'] else 'enabled'))
