"""nova-lite-ping: ping(8) for nova_lite services, phase by phase, and
for a real Nova's, round trip only.

    nova-lite-ping compute@compute1 -c 3
    nova-lite-ping scheduler -c 1 -t 5 --sleep 0      # a liveness probe
    nova-lite-ping conductor@ctl1 --method ping       # force the method

Without ``@HOST`` a probe goes through the topic's shared queue and the
reply says which host answered.  The first probe is a
``baseapi.ping``; a nova_lite service's reply names its binary, and it
is then probed with ``baseapi.inflight`` (the four-way split); a Nova
service is only pinged: a round trip only, the phases it does not
measure print as ``-`` (``null`` in JSON)
(``nova_lite.inflight.methods``).  ``--method`` forces one.  Exit
status: 0 when every probe was answered, 1 when some were lost, 2 for
bad usage.
"""

from nova_lite import monkey_patch  # noqa: F401  (must be first)

import argparse
import re
import signal
import sys
import time

from nova_lite import baserpc
from nova_lite.cmd import common
from nova_lite.cmd import output
from nova_lite import config
from nova_lite.conf import inflight as inflight_conf
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite import exception
from nova_lite.inflight import clocks
from nova_lite.inflight import methods
from nova_lite.inflight import probe
from nova_lite.inflight import services
from nova_lite.inflight import stats
from nova_lite import rpc
from nova_lite import service
from nova_lite import concurrency

PROG = 'nova-lite-ping'
EXIT_OK, EXIT_LOST = 0, 1

_TOPIC_RE = re.compile(r'^[A-Za-z0-9_-]+$')
_HOST_RE = re.compile(r'^[A-Za-z0-9_.:-]+$')


class UsageError(exception.InvalidInput):
    msg_fmt = '%(reason)s'


def parse_target(text):
    """``TOPIC[@HOST]`` -> (topic, host or None); UsageError if malformed."""
    topic, sep, host = text.partition('@')
    if not _TOPIC_RE.match(topic):
        raise UsageError(reason='bad target %r: TOPIC must be letters, '
                                'digits, "_" or "-"' % text)
    if sep and not _HOST_RE.match(host):
        raise UsageError(reason='bad target %r: expected TOPIC@HOST with a '
                                'non-empty HOST' % text)
    return topic, (host or None)


def _sleep_seconds(value):
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % value)
    if not 0 <= number <= inflight_conf.MAX_SLEEP_SECONDS:
        raise argparse.ArgumentTypeError(
            'must be between 0 and %s, got %s' % (
                inflight_conf.MAX_SLEEP_SECONDS, value))
    return number


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description='Probe a nova_lite service and split each '
        'round trip into to_service (queue and wire), in_service, '
        'greenthread_overhead (how late the service\'s sleep in a new '
        'greenthread, or native thread under the threading backend, wakes '
        'up) and '
        'from_service, in ms. Exit 0 if every probe was answered, 1 if '
        'some were lost, 2 for bad usage.')
    parser.add_argument('target', metavar='TOPIC[@HOST]',
                        help='e.g. compute@compute1, or scheduler for any '
                             'scheduler')
    parser.add_argument('-c', '--count', type=common.positive(int), default=None,
                        help='Stop after COUNT probes (default: until '
                             'Ctrl-C).')
    parser.add_argument('-i', '--interval', type=common.positive(float),
                        default=1.0,
                        help='Seconds between probes (default 1).')
    parser.add_argument('-t', '--timeout', type=common.positive(float),
                        help='Seconds to wait for each reply (default '
                             '[inflight] ping_timeout).')
    parser.add_argument('--sleep', type=_sleep_seconds,
                        help='Seconds the service sleeps in a new thread '
                             '(default [inflight] sleep_seconds).')
    parser.add_argument('--method', choices=methods.METHODS,
                        help='Probe with this baseapi method only: '
                             'inflight (the four-way split) or ping (a '
                             'round trip only). Default: inflight for '
                             'nova_lite\'s services, ping for a Nova '
                             'service, found out by a first ping. For '
                             'debugging.')
    parser.add_argument('--json', action='store_true',
                        help='One JSON object per reply, then a summary '
                             'object; a phase not measured is null.')
    common.add_config_file_arg(parser)
    return parser


def _known_topics(conf):
    topics = set(service.SERVICE_MANAGERS)
    try:
        source = services.source(conf, db_api.API(conf))
        try:
            topics.update(svc['topic'] for svc in source.list_services())
        finally:
            source.close()
    except Exception:  # noqa: BLE001 - no DB here: built-in topics only
        pass
    return topics


def _ms(value):
    return '-' if value is None else '%.2f ms' % value


def format_reply(seq, sample):
    if sample.timed_out:
        return 'timeout: seq=%d no reply from %s@%s' % (
            seq, sample.topic, sample.host or '*')
    if sample.error:
        return 'error: seq=%d %s@%s: %s' % (seq, sample.topic,
                                             sample.host or '*', sample.error)
    if sample.method == probe.PING:
        # A Nova service's reply does not say what it runs.
        who = (' (%s %s)' % (sample.binary, sample.version or '-')
               if sample.binary else '')
        return ('reply from %s%s: seq=%d round trip only: '
                'to_service=- in_service=- greenthread_overhead=- '
                'from_service=- total=%s' % (
                    sample.host or '*', who, seq, _ms(sample.total)))
    if sample.skew:
        # Two hosts' clocks disagree: the split is unknown, the sum is not.
        to_service = from_service = 'skewed'
        skew = (' (clock offset %.2f ms ± %.2f ms, this sample alone; '
                'transit both ways %.2f ms)' % (
                    sample.clock_offset, sample.transit / 2.0,
                    sample.transit))
    else:
        to_service = '%.2f ms' % sample.to_service
        from_service = '%.2f ms' % sample.from_service
        skew = ''
    return ('reply from %s (%s %s): seq=%d to_service=%s in_service=%.2f ms '
            'greenthread_overhead=%.2f ms from_service=%s total=%.2f ms '
            'greenthreads=%d workers=%s backend=%s%s' % (
                sample.host, sample.binary, sample.version, seq, to_service,
                sample.in_service, sample.greenthread_overhead, from_service,
                sample.total, sample.greenthreads,
                '-' if sample.workers is None else sample.workers,
                sample.backend or '-', skew))


def summarize(samples):
    answered = [s for s in samples if s.answered]
    result = {'type': 'summary', 'sent': len(samples),
              'answered': len(answered),
              'lost': len(samples) - len(answered),
              'hosts': sorted({s.host for s in answered if s.host}),
              'methods': sorted({s.method for s in answered if s.method})}
    for phase in probe.PHASES:
        result[phase] = stats.summarize([getattr(s, phase)
                                         for s in answered])
    result['clock_offsets'] = clock_offsets(answered)
    return result


def clock_offsets(samples):
    """Per answering host, its clock minus this host's, NTP-style: the
    sample with the lowest round trip (transit) of the run, and its bound
    (half that transit); ``{host: {'offset_ms', 'bound_ms'}}``."""
    by_host = {}
    for sample in samples:
        by_host.setdefault(sample.host, []).append(
            clocks.from_sample(sample))
    result = {}
    for host, offsets in sorted(by_host.items()):
        best = clocks.lowest_bound(offsets)
        if best is not None:
            result[host] = {'offset_ms': best.offset_ms,
                            'bound_ms': best.bound_ms}
    return result


def format_summary(target, summary):
    lost_pct = (100.0 * summary['lost'] / summary['sent']
                if summary['sent'] else 0.0)
    lines = ['--- %s inflight statistics ---' % target,
             '%d probes sent, %d answered, %.0f%% lost' % (
                 summary['sent'], summary['answered'], lost_pct)]
    if summary.get('methods') == [probe.PING]:
        lines.append('round trip only (ping): the service does not serve '
                     'inflight; the other phases are not measured')
    for phase in probe.PHASES:
        phase_stats = summary[phase]
        if phase_stats:
            lines.append('%-21s min/avg/max/p99 = %.2f/%.2f/%.2f/%.2f ms' % (
                phase, phase_stats['min'], phase_stats['avg'],
                phase_stats['max'], phase_stats['p99']))
        elif summary['answered']:
            lines.append('%-21s -' % phase)
    for host, clock in summary['clock_offsets'].items():
        lines.append('clock offset of %s: %+.2f ms ± %.2f ms (its clock '
                     'minus this host\'s, from the lowest round trip)' % (
                         host, clock['offset_ms'], clock['bound_ms']))
    return '\n'.join(lines)


def run(conf, args, topic, host):
    timeout = args.timeout or conf.inflight.ping_timeout
    sleep = conf.inflight.sleep_seconds if args.sleep is None else args.sleep
    client = baserpc.BaseRPCAPI(conf, topic)
    book = methods.MethodBook()
    ctxt = context.get_admin_context()
    target = '%s@%s' % (topic, host) if host else topic
    samples = []
    if not args.json:
        print('PROBE %s: sleep %.2fs, timeout %.1fs' % (target, sleep,
                                                       timeout), flush=True)
    try:
        seq = 0
        while args.count is None or seq < args.count:
            seq += 1
            started = time.monotonic()
            sample = book.probe(client, ctxt, topic, host=host,
                                sleep=sleep, timeout=timeout,
                                method=args.method)
            samples.append(sample)
            if args.json:
                output.print_json(dict(sample.as_dict(), type='reply',
                                       seq=seq))
            else:
                print(format_reply(seq, sample), flush=True)
            if args.count is None or seq < args.count:
                concurrency.sleep(max(0.0, args.interval -
                                (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    summary = summarize(samples)
    if args.json:
        output.print_json(summary)
    else:
        print(format_summary(target, summary))
    return EXIT_OK if samples and not summary['lost'] else EXIT_LOST


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM (a liveness probe's deadline) ends like Ctrl-C: summary, exit.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    conf = config.parse_args_or_exit(common.config_argv(args), PROG)
    try:
        topic, host = parse_target(args.target)
        known = _known_topics(conf)
        if topic not in known:
            raise UsageError(reason='unknown topic %r; known: %s' % (
                topic, ', '.join(sorted(known))))
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print('%s: error: %s' % (PROG, exc), file=sys.stderr)
        return config.EXIT_USAGE
    with common.exit_on_error(PROG, log=False):
        rpc.init(conf)
        try:
            return run(conf, args, topic, host)
        finally:
            rpc.cleanup()


if __name__ == '__main__':
    sys.exit(main())
