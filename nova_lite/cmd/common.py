"""Start-up steps shared by the daemons, in the order they run."""

import argparse
import contextlib
import sys

from oslo_log import log as logging

from nova_lite import concurrency
from nova_lite import config
from nova_lite import exception
from nova_lite import monkey_patch
from nova_lite import rpc
from nova_lite import service

LOG = logging.getLogger(__name__)


def _number(kind, accept, requirement):
    def convert(value):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError('not a number: %r' % value)
        if not accept(number):
            raise argparse.ArgumentTypeError('must be %s, got %s' % (
                requirement, value))
        return number
    return convert


def positive(kind=float):
    """An argparse type: a number of ``kind`` greater than zero."""
    return _number(kind, lambda number: number > 0, 'positive')


def non_negative(kind=float):
    """An argparse type: a number of ``kind``, zero or more."""
    return _number(kind, lambda number: number >= 0, '>= 0')


def add_config_file_arg(parser):
    parser.add_argument(
        '--config-file', action='append', default=[], metavar='PATH',
        help='Configuration file; may repeat, later files override earlier '
             'ones.')


def config_argv(args):
    argv = []
    for path in args.config_file:
        argv += ['--config-file', path]
    return argv


def setup(prog, argv=None):
    """Parse config (exit 2 on a bad one), set up logging and RPC."""
    argv = sys.argv[1:] if argv is None else argv
    conf = config.parse_args_or_exit(argv, prog)
    config.setup_logging(conf)
    LOG.info('Concurrency backend %s (from %s)', monkey_patch.BACKEND,
             monkey_patch.SOURCE)
    with exit_on_error(prog):
        rpc.init(conf)
    return conf


@contextlib.contextmanager
def exit_on_error(prog, log=True):
    """Turn a nova_lite error into one line on stderr and an exit code.

    A configuration error exits 2 (bad usage), anything else 1.  ``log``
    also logs it: a daemon's log should say why it stopped; a tool without
    a log file of its own (oslo.log's start-up handler writes to stderr)
    would print the line twice.
    """
    try:
        yield
    except exception.NovaLiteException as exc:
        if log:
            LOG.error('%s', exc)
        print('%s: error: %s' % (prog, exc), file=sys.stderr)
        sys.exit(config.EXIT_USAGE
                 if isinstance(exc, exception.ConfigError) else 1)


def serve(services):
    """Check the DB answers and has this code's schema, then run
    ``services`` until SIGTERM/SIGINT.

    Exit status 0 after a graceful stop, 1 when a handler or a periodic
    task was still running at the end of ``graceful_shutdown_timeout``.
    """
    try:
        services[0].db.connect()
        services[0].db.check_schema()
        clean = service.serve(services)
    finally:
        _cleanup_rpc()
    return 0 if clean else 1


# Seconds the transports get to close on the way out.
_RPC_CLEANUP_WAIT = 0.5


def _cleanup_rpc():
    """Close the transports, waiting at most ``_RPC_CLEANUP_WAIT``.

    Under threading, oslo.messaging's reply poller (every process that made
    a call has one; the health checks' self round trips make it every
    daemon) only sees the stop at its next poll timeout, up to 5 s later.
    The process is exiting: its connections close with it, so waiting
    longer buys nothing and would eat the graceful shutdown budget.
    """
    closer = concurrency.spawn(rpc.cleanup)
    if not closer.join(_RPC_CLEANUP_WAIT):
        LOG.debug('Transports still closing after %ss; exiting anyway',
                  _RPC_CLEANUP_WAIT)
