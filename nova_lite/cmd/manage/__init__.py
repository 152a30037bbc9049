"""nova-lite-manage: operator commands, one module per command group.

    nova-lite-manage [--config-file PATH] db sync
    nova-lite-manage [--config-file PATH] service list [--json]
    nova-lite-manage [--config-file PATH] service disable|enable HOST BINARY
    nova-lite-manage [--config-file PATH] inflight report [--since MIN] [--json]
    nova-lite-manage [--config-file PATH] flavor list [--json]
    nova-lite-manage [--config-file PATH] flavor create NAME --vcpus N --ram MB
                                          [--disk GB] [--id ID]
    nova-lite-manage [--config-file PATH] metrics targets [--output FILE]
    nova-lite-manage [--config-file PATH] rpc stats [--interval S] [--json]
                                          [--watch]
"""

from nova_lite import monkey_patch  # noqa: F401  (must be first)

import argparse
import sys

from nova_lite.cmd import common
from nova_lite.cmd.manage import db as db_commands
from nova_lite.cmd.manage import flavor as flavor_commands
from nova_lite.cmd.manage import inflight as inflight_commands
from nova_lite.cmd.manage import metrics as metrics_commands
from nova_lite.cmd.manage import rpc as rpc_commands
from nova_lite.cmd.manage import service as service_commands
from nova_lite import config

PROG = 'nova-lite-manage'

# Each module adds its command group's sub-parser.
COMMAND_GROUPS = (db_commands, service_commands, inflight_commands,
                  flavor_commands, metrics_commands, rpc_commands)


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description='nova_lite operator commands.')
    common.add_config_file_arg(parser)
    groups = parser.add_subparsers(dest='group', metavar='GROUP',
                                   required=True)
    for module in COMMAND_GROUPS:
        module.add_parser(groups)
    return parser


def main(argv=None):
    parser = build_parser()
    args, unknown = parser.parse_known_args(
        sys.argv[1:] if argv is None else argv)
    if unknown:
        # A command may report bad usage its own way (one line).
        getattr(args, 'usage_error', parser.error)(
            'unrecognized arguments: %s' % ' '.join(unknown))
    conf = config.parse_args_or_exit(common.config_argv(args), PROG)
    with common.exit_on_error(PROG, log=False):
        return args.func(conf, args) or 0

