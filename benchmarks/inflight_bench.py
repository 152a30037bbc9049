"""Inflight probe benchmark: accuracy against a known truth, cost, scale.

    bin/nova-lite-dev bench inflight      # or: python benchmarks/inflight_bench.py

Cases 1-3, 5 and 6 run once per concurrency backend (``--backends``): the
probed daemons run that backend, the prober (this process) runs eventlet.
``--cases`` picks some of them.

1. Hub block: a compute daemon running nova_lite.testing.managers.BusyManager
   (through compute_manager) blocks its hub (eventlet) or holds the GIL
   (threading) for 300 ms.  A probe sent during the block must show the rest
   of the block in to_service; a probe whose sleep overlaps the block must
   show it in greenthread_overhead.  Target: within +-10% of the truth the
   manager recorded.
2. Backlog: N casts of a known 20 ms each, queued ahead of a probe.  Target:
   to_service within +-10% of the wait until the last of them finished.
3. Probe cost: CPU a probe costs the probed service, as a share of one core
   at the default probe interval.  Target: below 1%.
4. Scale: one inflight daemon probes S simulated services (S/100 processes of
   100 services, each its own host) every 10 s.  Target: the round finishes
   inside the interval, under 200 MB RSS.  Once, on the first backend.
5. DB locked: another process holds SQLite's write lock 3 s at a time while
   probes (0.2 s sleep) run every 0.5 s against a daemon heartbeating every
   second.  Target: no probe late by more than 50 ms beyond its sleep, and
   the service stays up.
6. SIGSTOP: the compute of cases 1-3 is stopped 3 s while 10 probes (1 s
   sleep) queue for it, then continued.  Its own /metrics (the
   ``metrics_address`` of its row) must count every probe in
   nova_lite_rpc_server_queue_seconds above 2.5 s, and hold the sleep in
   nova_lite_rpc_server_handling_seconds within +-10%
   (``inflight_sigstop``).

``--probers N`` runs, instead of the cases, N inflight daemons sharing
``--services`` simulated services through one tooz group
(``inflight_probers``; ``--kill-one`` kills one of them mid-run).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import backends  # noqa: E402  (benchmarks/, next to this file)
import inflight_probers  # noqa: E402
import inflight_sigstop  # noqa: E402
import procstat  # noqa: E402

TARGET_ERROR = 0.10
TARGET_LATE_MS = 50.0


class Bench:
    def __init__(self, args):
        from nova_lite import config
        from nova_lite.db import api as db_api
        from nova_lite.db import migration

        self.args = args
        self.state = tempfile.mkdtemp(prefix='nova_lite_inflight_bench_')
        self.values = {
            'DEFAULT': {'state_path': self.state, 'report_interval': 10,
                        'service_down_time': 60, 'periodic_fuzzy_delay': 0,
                        'transport_url': args.url,
                        'compute_manager':
                            'nova_lite.testing.managers:BusyManager'},
            'database': {'connection': 'sqlite:///%s/bench.sqlite' %
                                       self.state},
        }
        self.conf_path = config.write_config_file(
            os.path.join(self.state, 'bench.conf'), self.values)
        self.conf = config.parse_args(['--config-file', self.conf_path],
                                      default_config_files=[])
        self.db = db_api.API(self.conf)
        migration.db_sync(self.db)
        self.daemons = []

    def start_daemon(self, binary, host, extra=None, backend=None):
        """``binary`` as a daemon; on ``backend`` if given (else this
        process's environment decides)."""
        from nova_lite import process

        daemon = process.start_in(
            self.state, binary, host, [self.conf_path], extra,
            env=backends.child_env(backend) if backend else None)
        self.daemons.append(daemon)
        return daemon

    def wait_up(self, host, binary, timeout=120):
        from nova_lite.testing import waiters
        return waiters.wait_for_service(self.db, host, binary,
                                        timeout=timeout)

    def stop(self):
        from nova_lite import process
        process.stop_all(self.daemons)


def _error(measured, expected):
    return abs(measured - expected) / expected


def hub_block(ctxt, base, busy, host, rounds):
    """Rows (scenario, expected ms, measured ms, error) per repetition."""
    from nova_lite.inflight import probe
    from nova_lite import concurrency

    rows = []
    for i in range(rounds):
        # (a) A probe sent while the hub is blocked waits in to_service.
        offset = 0.03 + 0.02 * (i % 5)
        blocker = concurrency.spawn(busy.block_hub, ctxt, host, 300)
        concurrency.sleep(offset)
        sample = probe.probe(base, ctxt, 'compute', host=host, sleep=0,
                             timeout=5)
        block = blocker.wait()
        expected = (block['end'] - sample.sent_at) * 1000.0
        measured = (sample.to_service or 0) + sample.greenthread_overhead
        rows.append(('to_service', expected, sample.to_service, measured))
        # (b) A block during the probe's sleep shows in the overhead.
        prober = concurrency.spawn(probe.probe, base, ctxt, 'compute',
                             host=host, sleep=0.2, timeout=5)
        concurrency.sleep(0.1)
        block = busy.block_hub(ctxt, host, 300)
        sample = prober.wait()
        wake_due = sample.sent_at + (sample.to_service or 0) / 1000.0 + 0.2
        expected = (block['end'] - wake_due) * 1000.0
        rows.append(('greenthread_overhead', expected,
                     sample.greenthread_overhead,
                     sample.greenthread_overhead))
        concurrency.sleep(0.1)
    return rows


def backlog(ctxt, base, busy, host, rounds, casts, cast_ms):
    from nova_lite.inflight import probe

    rows = []
    for _ in range(rounds):
        busy.reset_busy_log(ctxt, host)
        for _ in range(casts):
            busy.busy_cast(ctxt, host, cast_ms)
        sample = probe.probe(base, ctxt, 'compute', host=host, sleep=0,
                             timeout=30)
        log = busy.get_busy_log(ctxt, host)
        assert len(log) == casts, 'casts lost: %d of %d' % (len(log), casts)
        expected = (max(b['end'] for b in log) - sample.sent_at) * 1000.0
        rows.append(('to_service', expected, sample.to_service,
                     sample.to_service))
    return rows


def probe_cost(ctxt, base, daemon, probes, interval):
    """CPU seconds one probe costs the probed service."""
    from nova_lite.inflight import probe
    from nova_lite import concurrency

    idle_start, idle_cpu = time.monotonic(), procstat.cpu_seconds(daemon.pid)
    concurrency.sleep(5)
    idle_rate = (procstat.cpu_seconds(daemon.pid) - idle_cpu) / (
        time.monotonic() - idle_start)
    start, cpu = time.monotonic(), procstat.cpu_seconds(daemon.pid)
    samples = concurrency.map_concurrently(
        lambda _: probe.probe(base, ctxt, 'compute', host=daemon.host,
                              sleep=1.0, timeout=10),
        range(probes), 50)
    elapsed = time.monotonic() - start
    used = procstat.cpu_seconds(daemon.pid) - cpu - idle_rate * elapsed
    lost = sum(1 for s in samples if not s.answered)
    per_probe = max(0.0, used) / probes
    return {'idle_pct': idle_rate * 100.0, 'per_probe_ms': per_probe * 1000,
            'pct_at_interval': per_probe / interval * 100.0, 'lost': lost}


def scale(bench, services, interval, per_process=100):
    from nova_lite import context
    from nova_lite.inflight import rpcapi as inflight_rpcapi
    from nova_lite.testing import simulated
    from nova_lite.testing import waiters
    from nova_lite import servicegroup

    sim = simulated.SimulatedServices([bench.conf_path], services,
                                      bench.state, per_process=per_process)
    try:
        waiters.wait_for(
            lambda: sum(1 for s in bench.db.service_get_all(
                binary=simulated.BINARY)
                        if servicegroup.is_up(s, 60)) >= services,
            timeout=300, interval=1, what='%d simulated services' % services)
        prober = bench.start_daemon('nova-lite-inflight', 'prober', {
            'inflight': {'probe_interval': interval}})
        bench.wait_up('prober', 'nova-lite-inflight')
        api = inflight_rpcapi.InflightRPCAPI(bench.conf)
        ctxt = context.get_admin_context()
        rounds = []
        for _ in range(3):
            rounds.append(api.probe_now(ctxt, timeout=120))
        rss = procstat.rss_mb(prober.pid)
        return {'services': rounds[-1]['services'],
                'answered': min(r['answered'] for r in rounds),
                'duration': statistics.median(r['duration'] for r in rounds),
                'max_duration': max(r['duration'] for r in rounds),
                'rss_mb': rss, 'interval': interval}
    finally:
        sim.stop()


def db_locked(bench, ctxt, base, backend, rounds=3, hold=3.0):
    """Probes while another process holds the DB's write lock ``hold`` s at
    a time: how late each comes back beyond its sleep, and whether the
    service stayed up."""
    from nova_lite.inflight import probe
    from nova_lite.testing import sqlite_locker
    from nova_lite import concurrency
    from nova_lite import servicegroup

    host = 'dblock-' + backend
    bench.start_daemon('nova-lite-compute', host, backend=backend, extra={
        'DEFAULT': {'report_interval': 1, 'service_down_time': 10}})
    before = bench.wait_up(host, 'nova-lite-compute')
    path = bench.conf.database.connection[len('sqlite:///'):]
    locker = subprocess.Popen(sqlite_locker.command(path, rounds, hold),
                              stdout=subprocess.PIPE, text=True)
    late, sleep = [], 0.2
    try:
        locker.stdout.readline()            # locked
        while locker.poll() is None:
            sample = probe.probe(base, ctxt, 'compute', host=host,
                                 sleep=sleep, timeout=10)
            late.append(sample.total - sleep * 1000.0 if sample.answered
                        else float('inf'))
            concurrency.sleep(0.5)
    finally:
        if locker.poll() is None:
            locker.kill()
    after = bench.db.service_get(host, 'nova-lite-compute')
    return {'probes': len(late), 'late_p50': statistics.median(late),
            'late_max': max(late), 'locked_s': rounds * hold,
            'heartbeats': after['report_count'] - before['report_count'],
            'up': servicegroup.is_up(after, 10)}


def run_backend(bench, args, backend):
    """Cases 1, 2, 3, 5 and 6 (those in ``args.cases``) against daemons on
    ``backend``; the checks."""
    from nova_lite import baserpc
    from nova_lite import context
    from nova_lite.testing import managers

    host = 'busy-' + backend
    daemon = bench.start_daemon('nova-lite-compute', host, backend=backend)
    bench.wait_up(host, 'nova-lite-compute')
    ctxt = context.get_admin_context()
    base = baserpc.BaseRPCAPI(bench.conf, 'compute')
    busy = managers.BusyRPCAPI(bench.conf, 'compute')
    base.ping(ctxt, 'warm-up', host=host)
    print('--- probed daemons on the %s backend ---' % backend)
    checks = []
    if 1 in args.cases:
        ok_block = print_accuracy(
            '1. %s blocked 300 ms by CPU work (%d probes each)' % (
                'hub' if backend == backends.EVENTLET else 'GIL',
                args.rounds),
            hub_block(ctxt, base, busy, host, args.rounds))
        checks.append(('%s: hub block within +-10%%' % backend, ok_block))
    if 2 in args.cases:
        ok_backlog = print_accuracy(
            '2. backlog of %d casts x %.0f ms ahead of the probe' % (
                args.casts, args.cast_ms),
            backlog(ctxt, base, busy, host, args.rounds, args.casts,
                    args.cast_ms))
        checks.append(('%s: backlog within +-10%%' % backend, ok_backlog))
    if 3 in args.cases:
        cost = probe_cost(ctxt, base, daemon, args.probes, args.interval)
        print('3. probe cost on the probed service (%d probes, 1 s sleep)' %
              args.probes)
        print('  idle service CPU %.3f%%; one probe %.3f ms CPU; at one '
              'probe per %.0f s: %.4f%% of a core; lost %d' % (
                  cost['idle_pct'], cost['per_probe_ms'], args.interval,
                  cost['pct_at_interval'], cost['lost']))
        checks.append((
            '%s: probe cost < 1%% at the default interval' % backend,
            cost['pct_at_interval'] < 1.0))
    if 5 in args.cases:
        locked = db_locked(bench, ctxt, base, backend)
        print('5. DB write-locked by another process, 3 x 3 s, probes with '
              '0.2 s sleep every 0.5 s')
        print('  probes %d; late beyond the sleep: p50 %.1f ms, max %.1f ms; '
              'heartbeats meanwhile %d; service %s' % (
                  locked['probes'], locked['late_p50'], locked['late_max'],
                  locked['heartbeats'], 'up' if locked['up'] else 'DOWN'))
        checks.append(('%s: DB locked, no probe late > %.0f ms, service '
                       'up' % (backend, TARGET_LATE_MS),
                       locked['late_max'] < TARGET_LATE_MS and locked['up']))
    if 6 in args.cases:
        stopped = inflight_sigstop.run(
            bench, ctxt, base, daemon, pings=args.stop_pings,
            stop=args.stop_seconds, sleep=args.stop_sleep)
        checks += inflight_sigstop.report(backend, stopped)
    print()
    return checks


def _summary_rows(rows):
    by_scenario = {}
    for scenario, expected, _, measured in rows:
        by_scenario.setdefault(scenario, []).append(
            (expected, measured, _error(measured, expected)))
    return by_scenario


def print_accuracy(title, rows):
    print(title)
    print('  %-22s %10s %12s %12s %12s %10s' % (
        'shows in', 'probes', 'truth ms', 'measured ms', 'median err',
        'max err'))
    for scenario, entries in _summary_rows(rows).items():
        errors = [e for _, _, e in entries]
        print('  %-22s %10d %12.1f %12.1f %11.1f%% %9.1f%%' % (
            scenario, len(entries),
            statistics.median(e for e, _, _ in entries),
            statistics.median(m for _, m, _ in entries),
            statistics.median(errors) * 100, max(errors) * 100))
    return all(statistics.median(e for _, _, e in entries) <= TARGET_ERROR
               for entries in _summary_rows(rows).values())


def _cases(text):
    """argparse type: comma-separated case numbers."""
    try:
        cases = sorted({int(c) for c in text.split(',') if c.strip()})
    except ValueError:
        cases = []
    if not cases or not set(cases) <= {1, 2, 3, 4, 5, 6}:
        raise argparse.ArgumentTypeError('expected case numbers 1-6, '
                                         'comma-separated')
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', default='rabbit://guest:guest@localhost:5672/')
    parser.add_argument('--backends', type=backends.backend_list,
                        default=list(backends.BACKENDS),
                        help='Backends of the probed daemons, comma-'
                             'separated (default: eventlet,threading).')
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--casts', type=int, default=20)
    parser.add_argument('--cast-ms', type=float, default=20.0)
    parser.add_argument('--probes', type=int, default=200)
    parser.add_argument('--services', type=int, default=500,
                        help='Simulated services for the scale case; 0 '
                             'skips it.')
    parser.add_argument('--interval', type=float, default=10.0)
    parser.add_argument('--cases', type=_cases, default=[1, 2, 3, 4, 5, 6],
                        help='Cases to run, comma-separated (default: '
                             '1,2,3,4,5,6).')
    parser.add_argument('--stop-seconds', type=float, default=3.0,
                        help='Case 6: how long the compute stays stopped '
                             '(default 3).')
    parser.add_argument('--stop-pings', type=int, default=10,
                        help='Case 6: probes queued meanwhile (default 10).')
    parser.add_argument('--stop-sleep', type=float, default=1.0,
                        help='Case 6: the probes\' sleep (default 1).')
    parser.add_argument('--probers', type=int, default=0,
                        help='Instead of the cases: N inflight daemons '
                             'share --services simulated services through '
                             'one tooz group (probe interval --interval).')
    parser.add_argument('--kill-one', action='store_true',
                        help='With --probers: kill -9 one prober mid-run.')
    parser.add_argument('--coordination-url',
                        help='With --probers: the tooz URL (default '
                             'NOVA_LITE_TEST_ETCD_URL, else file:// in the '
                             'state directory).')
    parser.add_argument('--membership-timeout', type=int, default=10,
                        help='With --probers: [inflight] '
                             'membership_timeout, the lease (default 10).')
    parser.add_argument('--observe', type=int, default=6,
                        help='With --probers: rounds measured once every '
                             'prober has a share (default 6).')
    args = parser.parse_args()

    from nova_lite import monkey_patch  # noqa: F401
    from nova_lite import rpc

    if args.probers:
        return run_probers(args)

    bench = Bench(args)
    checks = []
    try:
        rpc.init(bench.conf)
        print('Inflight probe benchmark (2-core machine, one RabbitMQ; '
              'prober on eventlet)\n')
        for backend in args.backends:
            checks += run_backend(bench, args, backend)
        if args.services and 4 in args.cases:
            with backends.children_on(args.backends[0]):
                result = scale(bench, args.services, args.interval)
            print('4. scale (%s): one inflight daemon, %d services, %.0f s '
                  'interval, max_concurrent_pings %d, 1 s sleep' % (
                      args.backends[0], result['services'],
                      result['interval'],
                      bench.conf.inflight.max_concurrent_pings))
            print('  round %.2f s median, %.2f s max; answered %d; inflight '
                  'RSS %.0f MB' % (result['duration'],
                                   result['max_duration'],
                                   result['answered'], result['rss_mb']))
            checks += [
                ('round inside the interval',
                 result['max_duration'] < result['interval']),
                ('inflight RSS < 200 MB', result['rss_mb'] < 200),
            ]
        print()
        for title, ok in checks:
            print('  [%s] %s' % ('met' if ok else 'MISSED', title))
    finally:
        rpc.cleanup()
        bench.stop()
    return 0


def run_probers(args):
    """``--probers N``: on a RabbitMQ node of its own (see
    ``inflight_probers.private_broker``); its counters are the
    benchmark's alone."""
    with inflight_probers.private_broker() as node:
        args.url = node.url
        bench = Bench(args)
        try:
            with backends.children_on(args.backends[0]):
                result = inflight_probers.run(bench, args, node)
        finally:
            bench.stop()
    print('Inflight probe benchmark, several probers (2-core machine, one '
          'RabbitMQ; daemons on %s)\n' % args.backends[0])
    checks = inflight_probers.report(result)
    print()
    for title, ok in checks:
        print('  [%s] %s' % ('met' if ok else 'MISSED', title))
    print('\nJSON %s' % json.dumps({k: v for k, v in result.items()
                                    if k != 'per_round'}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
