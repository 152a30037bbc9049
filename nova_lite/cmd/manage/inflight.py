"""nova-lite-manage inflight: reports on stored probe samples."""

from nova_lite.cmd import common
from nova_lite.cmd import output
from nova_lite.db import api as db_api
from nova_lite.inflight import probe

REPORT_PERCENTILES = (50, 95)
_LEADING_COLUMNS = ('topic', 'host', 'binary', 'backend', 'samples',
                    'timeouts', 'workers_max')
# What the latest sample saw: how it was probed, the heartbeat, the
# service's topic.host queue (ready/unacknowledged messages/consumers),
# the flags.
_STATE_COLUMNS = ('method', 'up', 'heartbeat_age', 'queue', 'flags')


def add_parser(groups):
    parser = groups.add_parser('inflight', help='Inflight probe results.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    report = commands.add_parser(
        'report', help='Per service: samples, p50/p95/max of each phase ("-": '
                       'not measured; a pinged service, such as a real '
                       'Nova\'s, has a round trip only), timeouts, the '
                       'inflight daemons that probed it (probers), its '
                       'host\'s clock offset to the database server\'s '
                       'clock, and as last seen: the probe method, its '
                       'heartbeat (up, age), its queue (ready/unacked '
                       'messages/consumers) and flags (unreachable, '
                       'no_consumers, slow).')
    report.add_argument('--since', type=common.positive(float), default=60,
                        metavar='MINUTES',
                        help='Only samples of the last MINUTES (default 60).')
    report.add_argument('--json', action='store_true',
                        help='Print a JSON array, one object per service.')
    report.set_defaults(func=report_command)


def report_rows(db, since_minutes):
    """One row per (topic, host, binary), sorted; phases in ms.

    The database aggregates: the samples themselves never leave it.
    """
    return db.inflight_report(since_minutes * 60, probe.PHASES,
                              REPORT_PERCENTILES)


def _flatten(row):
    flat = {key: row[key] for key in _LEADING_COLUMNS}
    for phase in probe.PHASES:
        summary = row[phase]
        flat[phase] = ('%.1f/%.1f/%.1f' % (summary['p50'], summary['p95'],
                                           summary['max'])
                       if summary else '-')
    flat['clock_offset'] = ('-' if row['clock_offset_ms'] is None else
                            '%+.1f±%.1f' % (row['clock_offset_ms'],
                                            row['clock_offset_bound_ms']))
    flat['probers'] = format_probers(row['probers'])
    flat['method'] = row['method'] or '-'
    flat['up'] = ('-' if row['up'] is None else
                  'up' if row['up'] else 'down')
    flat['heartbeat_age'] = ('-' if row['heartbeat_age'] is None else
                             '%.1fs' % row['heartbeat_age'])
    flat['queue'] = ('-' if row['queue_messages'] is None else
                     '%d/%s/%d' % (row['queue_messages'],
                                   '-' if row['queue_unacked'] is None
                                   else row['queue_unacked'],
                                   row['queue_consumers']))
    flat['flags'] = ','.join(row['flags']) or '-'
    return flat


def format_probers(probers):
    """``{'i1-4242': 3, 'i2-99': 1}`` -> ``i1-4242:3,i2-99:1``."""
    return ','.join('%s:%d' % (name, count)
                    for name, count in sorted(probers.items())) or '-'


def print_report(db, since_minutes):
    """The human ``inflight report`` table for the last ``since_minutes``."""
    rows = report_rows(db, since_minutes)
    if not rows:
        print('No inflight samples in the last %.1f minutes.' % since_minutes)
        return
    print('Inflight over the last %.1f minutes; phases are p50/p95/max in '
          'ms; clock_offset is the host\'s clock minus the database '
          'server\'s, ± its bound, in ms; probers are the inflight '
          'daemons that took the samples, with how many; "-" is not '
          'measured (a ping measures the total only). As last seen: '
          'method, up and heartbeat_age by heartbeat, queue is the '
          'topic.host queue\'s ready/unacked messages/consumers, flags' %
          since_minutes)
    output.print_table(_LEADING_COLUMNS + probe.PHASES +
                       ('clock_offset', 'probers') + _STATE_COLUMNS,
                       [_flatten(r) for r in rows])


def report_command(conf, args):
    db = db_api.API(conf)
    if args.json:
        output.print_json(report_rows(db, args.since))
    else:
        print_report(db, args.since)
