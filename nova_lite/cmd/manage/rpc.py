"""nova-lite-manage rpc: where RPC time goes, without Prometheus.

    nova-lite-manage rpc stats [--interval S] [--json] [--watch]

Scrapes the ``/metrics`` of every registered service's endpoint twice,
``S`` seconds apart (each address once: nova-lite-all's services share
one), and prints one row per topic and method over that window: the rate
(handled per second), p50/p99 of queue, executor_wait and handling in ms
(estimated from the histogram buckets as PromQL's ``histogram_quantile``
does) and the errors (handled with an outcome other than ``ok``).  The
math is ``nova_lite.metrics.scrape``'s.

An endpoint that does not answer is one line on stderr and the others
are still shown; the exit status is then 1.  ``--watch`` refreshes every
``S`` seconds, like top, until Ctrl-C (exit 0).
"""

import argparse
import datetime
import os
import sys
import time
import urllib.request

from nova_lite.cmd import output
from nova_lite import concurrency
from nova_lite import config
from nova_lite.db import api as db_api
from nova_lite import exception
from nova_lite.metrics import scrape
from nova_lite.metrics import targets

PROG = 'nova-lite-manage rpc stats'
COLUMNS = ('topic', 'method', 'rate', 'errors') + tuple(scrape.PHASES)
SCRAPE_TIMEOUT = 5.0
MAX_PARALLEL_SCRAPES = 32
_CLEAR = '\033[H\033[2J'
# No proxy: a management address is scraped directly, whatever
# http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _interval(value):
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % value)
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(
            'must be more than 0 and at most 3600 seconds, got %s' % value)
    return number


def _one_line_error(message):
    print('%s: error: %s' % (PROG, message), file=sys.stderr)
    sys.exit(config.EXIT_USAGE)


def add_parser(groups):
    parser = groups.add_parser('rpc', help='RPC timings of the daemons.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    stats = commands.add_parser(
        'stats', help='Scrape every metrics endpoint twice, S seconds '
                      'apart; per topic and method: rate, p50/p99 of '
                      'queue, executor_wait and handling, errors.')
    stats.add_argument('--interval', type=_interval, default=5.0,
                       metavar='S', help='Seconds between the two scrapes '
                                         '(default 5).')
    stats.add_argument('--json', action='store_true',
                       help='Print a JSON array of rows (ms); with --watch '
                            'one array per line.')
    stats.add_argument('--watch', action='store_true',
                       help='Refresh every S seconds until Ctrl-C.')
    # A bad argument is one line (and exit 2), not the usage text: its own
    # (argparse calls this parser's error()) and, through main(), one
    # this parser does not know.
    stats.error = _one_line_error
    stats.set_defaults(func=stats_command, usage_error=_one_line_error)


class Scrape:
    """One endpoint's ``/metrics`` at one moment, or why not."""

    def __init__(self, address, services):
        self.address = address
        self.services = services
        self.series = None
        self.at = None
        self.error = None

    def fetch(self):
        try:
            with _OPENER.open('http://%s/metrics' % self.address,
                              timeout=SCRAPE_TIMEOUT) as answer:
                text = answer.read().decode('utf-8')
            self.at = time.monotonic()
            self.series = scrape.parse(text)
        except (OSError, ValueError) as exc:
            self.error = _reason(exc)
        return self

    def describe(self):
        return ', '.join(sorted('%s on %s' % (svc['binary'], svc['host'])
                                for svc in self.services))


def _reason(exc):
    """One line for a failed scrape (urllib wraps the socket's error)."""
    reason = getattr(exc, 'reason', None)
    if isinstance(reason, BaseException):
        exc = reason
    if isinstance(exc, TimeoutError):
        return 'no answer within %ss' % SCRAPE_TIMEOUT
    if isinstance(exc, OSError) and exc.errno:
        # The same words on both backends (eventlet says ECONNREFUSED).
        return os.strerror(exc.errno)
    if isinstance(exc, ValueError):
        return 'not Prometheus metrics: %s' % exc
    return str(exc) or type(exc).__name__


def scrape_all(found):
    """``found`` (``targets.endpoints``) scraped concurrently:
    ``{address: Scrape}``."""
    scrapes = [Scrape(address, services)
               for address, services in found.items()]
    concurrency.map_concurrently(Scrape.fetch, scrapes,
                                 MAX_PARALLEL_SCRAPES)
    return {s.address: s for s in scrapes}


def window(before, after):
    """Rows over the window between two ``scrape_all`` results, and the
    scrapes that failed at either end (one per address)."""
    pairs, failed = [], {}
    for address, second in after.items():
        first = before.get(address)
        if second.error is not None:
            failed[address] = second
        elif first is None:
            continue            # registered in the window: next time
        elif first.error is not None:
            failed[address] = first
        else:
            pairs.append((first.series, second.series,
                          second.at - first.at))
    return scrape.window_rows(pairs), list(failed.values())


def _cell(summary):
    if summary['p50'] is None:
        return '-'
    return '%.2f/%.2f' % (summary['p50'], summary['p99'])


def format_rows(rows):
    return output.format_table(COLUMNS, [
        dict(row, **{phase: _cell(row[phase]) for phase in scrape.PHASES})
        for row in rows])


def _report(args, rows, failed, answered):
    if args.watch and not args.json and sys.stdout.isatty():
        sys.stdout.write(_CLEAR)
        sys.stdout.flush()
    for bad in failed:
        print('%s: %s (%s) unreachable: %s' % (
            PROG, bad.address, bad.describe(), bad.error), file=sys.stderr,
            flush=True)
    if args.json:
        output.print_json(rows)
        return
    print('RPC over %.1f s, %d of %d endpoint(s) answered, %s; queue, '
          'executor_wait and handling are p50/p99 in ms%s' % (
              args.interval, answered, answered + len(failed),
              datetime.datetime.now().strftime('%H:%M:%S'),
              ' (Ctrl-C stops)' if args.watch else ''))
    if rows:
        print(format_rows(rows))
    else:
        print('No RPC handled in the window.')
    sys.stdout.flush()


def _endpoints(db):
    found = targets.endpoints(db.service_get_all())
    if not found:
        raise exception.NoMetricsEndpoints()
    return found


def stats_command(conf, args):
    db = db_api.API(conf)
    before = scrape_all(_endpoints(db))
    status = 0
    try:
        while True:
            concurrency.sleep(args.interval)
            # Re-read each round: a service started meanwhile is scraped
            # from now on, and shows in the next window.
            after = scrape_all(_endpoints(db))
            rows, failed = window(before, after)
            answered = len(after) - len(failed)
            _report(args, rows, failed, answered)
            status = 1 if failed else 0
            if not args.watch:
                return status
            before = after
    except KeyboardInterrupt:
        if args.watch:
            return 0
        print('%s: interrupted' % PROG, file=sys.stderr)
        return 130
