"""nova-lite-manage inflight: reports on stored probe samples."""

from nova_lite.cmd import common
from nova_lite.cmd import output
from nova_lite.db import api as db_api
from nova_lite.inflight import probe
from nova_lite.inflight import stats

REPORT_PERCENTILES = (50, 95)
_LEADING_COLUMNS = ('topic', 'host', 'binary', 'backend', 'samples',
                    'timeouts', 'workers_max')


def add_parser(groups):
    parser = groups.add_parser('inflight', help='Inflight probe results.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     required=True)
    report = commands.add_parser(
        'report', help='Per service: samples, p50/p95/max of each phase, '
                       'timeouts.')
    report.add_argument('--since', type=common.positive(float), default=60,
                        metavar='MINUTES',
                        help='Only samples of the last MINUTES (default 60).')
    report.add_argument('--json', action='store_true',
                        help='Print a JSON array, one object per service.')
    report.set_defaults(func=report_command)


def report_rows(samples):
    """One row per (topic, host, binary), sorted; phases in ms."""
    groups = {}
    for sample in samples:
        key = (sample['topic'], sample['host'] or '*', sample['binary'] or '-')
        groups.setdefault(key, []).append(sample)
    rows = []
    for (topic, host, binary), group in sorted(groups.items()):
        answered = [s for s in group if not s['timed_out'] and not s['error']]
        row = {'topic': topic, 'host': host, 'binary': binary,
               'samples': len(answered),
               'timeouts': sum(1 for s in group if s['timed_out']),
               'errors': sum(1 for s in group if s['error']),
               'skewed': sum(1 for s in answered if s['skew']),
               # The most busy executor workers seen, and the latest backend.
               'workers_max': max((s['workers'] for s in answered
                                   if s['workers'] is not None),
                                  default=None),
               'backend': next((s['backend'] for s in reversed(answered)
                                if s['backend']), None)}
        for phase in probe.PHASES:
            summary = stats.summarize([s[phase] for s in answered],
                                      REPORT_PERCENTILES)
            row[phase] = ({key: summary[key] for key in ('p50', 'p95', 'max')}
                          if summary else None)
        rows.append(row)
    return rows


def _flatten(row):
    flat = {key: row[key] for key in _LEADING_COLUMNS}
    for phase in probe.PHASES:
        summary = row[phase]
        flat[phase] = ('%.1f/%.1f/%.1f' % (summary['p50'], summary['p95'],
                                           summary['max'])
                       if summary else '-')
    return flat


def print_report(db, since_minutes):
    """The human ``inflight report`` table for the last ``since_minutes``."""
    rows = report_rows(db.inflight_samples_since(since_minutes * 60))
    if not rows:
        print('No inflight samples in the last %.1f minutes.' % since_minutes)
        return
    print('Inflight over the last %.1f minutes; phases are p50/p95/max in ms'
          % since_minutes)
    output.print_table(_LEADING_COLUMNS + probe.PHASES,
                       [_flatten(r) for r in rows])


def report_command(conf, args):
    db = db_api.API(conf)
    if args.json:
        output.print_json(report_rows(
            db.inflight_samples_since(args.since * 60)))
    else:
        print_report(db, args.since)
