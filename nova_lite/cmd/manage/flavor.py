"""nova-lite-manage flavor: list and create flavors.

    nova-lite-manage flavor create m1.nano --vcpus 1 --ram 128 --disk 1
    nova-lite-manage flavor list [--json]

``db sync`` seeds Nova's historical m1.tiny ... m1.xlarge (ids 1-5).
"""

import argparse
import re

from oslo_utils import uuidutils

from nova_lite.cmd import common
from nova_lite.cmd import output
from nova_lite.db import api as db_api

LIST_COLUMNS = ('id', 'name', 'vcpus', 'ram', 'disk')
_ID_RE = re.compile(r'^[A-Za-z0-9_.-]{1,255}$')


def _name(value):
    if not value.strip() or len(value) > 255:
        raise argparse.ArgumentTypeError(
            'must be 1 to 255 characters and not blank, got %r' % value)
    return value


def _flavor_id(value):
    if not _ID_RE.match(value):
        raise argparse.ArgumentTypeError(
            'must be 1 to 255 letters, digits, ".", "_" or "-", got %r'
            % value)
    return value


def add_parser(groups):
    parser = groups.add_parser('flavor', help='Flavors (instance sizes).')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    listing = commands.add_parser('list', help='One row per flavor.')
    listing.add_argument('--json', action='store_true',
                         help='Print a JSON array of objects.')
    listing.set_defaults(func=list_command)
    create = commands.add_parser('create', help='Add a flavor.')
    create.add_argument('name', type=_name)
    create.add_argument('--vcpus', type=common.positive(int), required=True,
                        help='Virtual CPUs.')
    create.add_argument('--ram', type=common.positive(int), required=True,
                        metavar='MB', help='Memory in MB.')
    create.add_argument('--disk', type=common.non_negative(int), default=0,
                        metavar='GB', help='Root disk in GB (default 0).')
    create.add_argument('--id', type=_flavor_id, dest='flavor_id',
                        help='The id the API shows (default: a new UUID, '
                             'as Nova\'s "auto").')
    create.add_argument('--json', action='store_true',
                        help='Print the new flavor as a JSON object.')
    create.set_defaults(func=create_command)


def _row(flavor):
    return {'id': flavor['flavorid'], 'name': flavor['name'],
            'vcpus': flavor['vcpus'], 'ram': flavor['memory_mb'],
            'disk': flavor['root_gb']}


def list_command(conf, args):
    rows = [_row(flavor) for flavor in db_api.API(conf).flavor_get_all()]
    if args.json:
        output.print_json(rows)
    else:
        output.print_table(LIST_COLUMNS, rows)


def create_command(conf, args):
    flavor = db_api.API(conf).flavor_create(
        args.name, args.vcpus, args.ram, args.disk,
        args.flavor_id or uuidutils.generate_uuid())
    if args.json:
        output.print_json(_row(flavor))
    else:
        output.print_table(LIST_COLUMNS, [_row(flavor)])
