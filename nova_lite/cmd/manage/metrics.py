"""nova-lite-manage metrics: Prometheus service discovery.

    nova-lite-manage metrics targets                       # JSON on stdout
    nova-lite-manage metrics targets --output /etc/prometheus/nova-lite.json

The output is a Prometheus ``file_sd`` file (see
``nova_lite.metrics.targets``): one group per metrics address, labelled
``topic``, ``host`` and ``binary``.  Prometheus re-reads the file when it
changes, so running this again (by hand or from cron) is discovery; it is
replaced in one rename, never seen half written.
"""

import sys

from nova_lite.db import api as db_api
from nova_lite.metrics import targets


def add_parser(groups):
    parser = groups.add_parser('metrics', help='Prometheus scrape targets.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    listing = commands.add_parser(
        'targets', help='Prometheus file_sd JSON of every registered '
                        'service with a metrics endpoint (each address '
                        'once).')
    listing.add_argument('--output', metavar='FILE',
                         help='Replace FILE atomically (temporary file and '
                              'rename) instead of printing to stdout.')
    listing.set_defaults(func=targets_command)


def targets_command(conf, args):
    services = db_api.API(conf).service_get_all()
    if args.output:
        groups = targets.write_file_sd(args.output, services)
        print('Wrote %d target(s) to %s' % (len(groups), args.output))
    else:
        sys.stdout.write(targets.to_json(targets.file_sd_groups(services)))
