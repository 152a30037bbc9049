"""Several probers: N inflight daemons share S simulated services through
one tooz group (``inflight_bench.py --probers N``).

Measured from the samples' ``round_no`` and ``prober`` (exactly once per
round, duplicates, misses, round time = when a prober stored its round
minus the round's start), from /proc (each prober's CPU and RSS), from
RabbitMQ (frames and bytes on every connection of the benchmark's own
vhost on a broker node of its own, per probe) and from a counting proxy in front of etcd
(``etcd_counter``: the probers' etcd operations per round).

``--kill-one`` kills one prober with -9 mid-run: how long its services
went unprobed (the longest gap between two consecutive samples of one of
them) against interval + lease, and whether any round probed a service
twice.
"""

import os
import secrets
import shlex
import signal
import statistics
import subprocess
import time

import etcd_counter
import procstat

# Descriptors the benchmark's broker node may open (the hard limit here).
MAX_OPEN_FILES = 20000
SIM_REPORT_INTERVAL = 30
TARGET_RSS_MB = 200.0
TARGET_CPU_PCT = 10.0


def coordination_url(args, state):
    """--coordination-url, else NOVA_LITE_TEST_ETCD_URL, else file://."""
    return (args.coordination_url or
            os.environ.get('NOVA_LITE_TEST_ETCD_URL') or
            'file://' + os.path.join(state, 'ring'))


def private_broker(max_open_files=MAX_OPEN_FILES):
    """A RabbitMQ node of the benchmark's own (``RabbitNode``) that may
    open ``max_open_files`` descriptors.

    Every simulated service has a connection of its own, and 2,000 of them
    exhaust the 1,024 descriptors the Debian scripts give a node (``su``
    resets the limit): on the machine's shared node that took RabbitMQ's
    memory monitor down (emfile) and every test's queue declarations with
    it.  So the benchmark never runs on the shared node.
    """
    from nova_lite.testing import fixtures as nl_fixtures
    from nova_lite.testing import rabbit_node

    class Node(rabbit_node.RabbitNode):
        def _start(self):
            command = 'ulimit -n %d; exec rabbitmq-server -detached' % (
                max_open_files)
            if os.getuid() == 0:
                # As the Debian wrapper does, with the limit raised after
                # su (whose PAM session sets it back to 1,024).
                argv = ['su', 'rabbitmq', '-s', '/bin/sh', '-c',
                        'ulimit -n %d; exec /usr/lib/rabbitmq/bin/'
                        'rabbitmq-server -detached' % max_open_files]
            else:
                argv = ['/bin/sh', '-c', command]
            result = subprocess.run(argv, capture_output=True, text=True,
                                    timeout=60, env=self.env())
            if result.returncode != 0:
                raise nl_fixtures.BrokerUnavailable(
                    reason='%s failed: %s' % (
                        ' '.join(shlex.quote(a) for a in argv),
                        (result.stderr or result.stdout).strip()))

    return Node(prefix='nl-bench')


def broker_counters(node):
    """Frames and bytes the broker ``node`` (a ``RabbitNode``) received and
    sent on the connections of its vhost: {'frames': n, 'bytes': n,
    'connections': n}."""
    vhost = node.vhost
    out = node.ctl('list_connections', 'vhost', 'recv_cnt', 'send_cnt',
                   'recv_oct', 'send_oct', '--no-table-headers')
    frames = octets = connections = 0
    for line in out.splitlines():
        fields = line.split('\t')
        if len(fields) != 5 or fields[0] != vhost:
            continue
        connections += 1
        frames += int(fields[1]) + int(fields[2])
        octets += int(fields[3]) + int(fields[4])
    return {'frames': frames, 'bytes': octets, 'connections': connections}


def _until(when):
    """Sleep until epoch second ``when`` (a round boundary)."""
    left = when - time.time()
    if left > 0:
        time.sleep(left)


class _Snapshot:
    def __init__(self, probers, node, counter):
        self.at = time.time()
        self.cpu = {p.prober: procstat.cpu_seconds(p.pid) for p in probers
                    if p.popen.poll() is None}
        self.broker = broker_counters(node)
        self.etcd = counter.counts() if counter else None


def run(bench, args, node):
    """The case; returns its result dict (``report`` prints it)."""
    from nova_lite.testing import rounds
    from nova_lite.testing import simulated
    from nova_lite.testing import waiters
    from nova_lite import servicegroup

    interval = args.interval
    url = coordination_url(args, bench.state)
    counter = (etcd_counter.EtcdCounter(url) if url.startswith('etcd3+')
               else None)
    group = 'nova-lite-inflight-bench-%s' % secrets.token_hex(4)
    options = {'coordination': {'backend_url': counter.url if counter
                                else url},
               'inflight': {'probe_interval': interval, 'group': group,
                            'membership_timeout': args.membership_timeout}}
    load = [os.getloadavg()[0]]
    # Heartbeats every 30 s, not 10: 2,000 services' writes at 200/s lock
    # SQLite out of their own registrations.
    from nova_lite import config
    sim_conf = config.write_config_file(
        os.path.join(bench.state, 'sim.conf'),
        {'DEFAULT': {'report_interval': SIM_REPORT_INTERVAL}})

    def _registered(batch):
        hosts = {host for _, host in batch}
        waiters.wait_for(
            lambda: hosts <= {s['host'] for s in bench.db.service_get_all(
                binary=simulated.BINARY)},
            timeout=300, interval=1,
            what='simulated services %s...' % batch[0][1])

    sim = None
    try:
        sim = simulated.SimulatedServices(
            [bench.conf_path, sim_conf], args.services, bench.state,
            started=_registered)
        waiters.wait_for(
            lambda: sum(1 for s in bench.db.service_get_all(
                binary=simulated.BINARY) if servicegroup.is_up(s, 60))
            >= args.services,
            timeout=300, interval=2,
            what='%d simulated services' % args.services)
        probers = []
        for n in range(1, args.probers + 1):
            daemon = bench.start_daemon('nova-lite-inflight', 'p%d' % n,
                                        options)
            daemon.prober = '%s-%d' % (daemon.host, daemon.pid)
            probers.append(daemon)
        for daemon in probers:
            bench.wait_up(daemon.host, daemon.binary)
        names = [p.prober for p in probers]

        def _stable():
            seen = {}
            for sample in rounds.round_samples(bench.db):
                seen.setdefault(sample['round_no'], set()).add(
                    sample['prober'])
            return min((r for r, who in seen.items() if set(names) <= who),
                       default=None)
        stable = waiters.wait_for(_stable, timeout=20 * interval + 120,
                                  interval=1, what='a round of every prober')
        first = stable + 1
        last = first + args.observe - 1
        kill_round = first + args.observe // 3 if args.kill_one else None
        _until(first * interval)
        # Cost: what the probers used between two snapshots, against the
        # samples they stored meanwhile (rounds that overrun cross round
        # boundaries, so by time, not by round number).
        before = _Snapshot(probers, node, counter)
        victim = owned = killed_at = None
        if args.kill_one:
            _until((kill_round + 0.5) * interval)
            victim = probers[1]
            samples = rounds.round_samples(bench.db)
            victim_round = rounds.last_round(samples, victim.prober)
            owned = {rounds.key(s) for s in samples
                     if s['prober'] == victim.prober and
                     s['round_no'] == victim_round}
            after = _Snapshot(probers, node, counter)
            victim.signal(signal.SIGKILL)
            killed_at = time.time()
            victim.wait(timeout=30)
        live = [p.prober for p in probers if p is not victim]
        try:
            waiters.wait_for(
                lambda: all((rounds.last_round(rounds.round_samples(
                    bench.db, last), p) or -1) > last for p in live),
                timeout=(last + 3) * interval - time.time() + 180,
                interval=1, what='rounds after %d' % last)
        except waiters.WaitTimeout as exc:
            # Rounds that overrun for minutes: count what was stored.
            print('WARNING: %s; the last rounds may be incomplete' % exc)
        if not args.kill_one:
            after = _Snapshot(probers, node, counter)
        rss = {p.prober: procstat.rss_mb(p.pid) for p in probers
               if p.popen.poll() is None}
        load.append(os.getloadavg()[0])
        ended = time.time()
        every = rounds.round_samples(bench.db)
        samples = [s for s in every if first <= s['round_no'] <= last]
        created = rounds.services_created(bench.db)
    finally:
        if sim is not None:
            sim.stop()
        if counter:
            counter.close()
    return _analyse(locals())


def skipped_rounds(checked, samples):
    """{round: probers that skipped it}: a prober that wrote samples of a
    later round (in ``samples``) was alive, so a round of ``checked`` it
    has no sample of was skipped (its previous round overran: rounds never
    overlap)."""
    last_seen = {}
    for sample in samples:
        last_seen[sample['prober']] = max(last_seen.get(sample['prober'], 0),
                                          sample['round_no'])
    return {r['round']: {p for p, seen in last_seen.items()
                         if seen > r['round'] and p not in r['probers']}
            for r in checked}


def _victim_gaps(samples, owned, killed_at, ended):
    """{key: longest time without a sample} of the victim's services, over
    every stored sample; a service not probed since the kill counts until
    ``ended``."""
    from nova_lite.testing import rounds

    gaps = rounds.max_gaps(samples, owned)
    last = {}
    for sample in samples:
        name = rounds.key(sample)
        if name in owned:
            last[name] = max(last.get(name, 0.0), sample['created'])
    for name in owned:
        if last.get(name, 0.0) < killed_at:
            gaps[name] = max(gaps.get(name, 0.0),
                             ended - last.get(name, killed_at))
    return gaps


def _analyse(run_locals):
    from nova_lite.testing import rounds

    v = dict(run_locals)
    interval, first, last = v['interval'], v['first'], v['last']
    samples, created = v['samples'], v['created']
    checked = rounds.coverage(samples, created, range(first, last + 1),
                              interval)
    skipped = skipped_rounds(checked, v['every'])
    stored = {}
    for sample in samples:
        name = (sample['prober'], sample['round_no'])
        stored[name] = max(stored.get(name, 0.0), sample['created'])
    round_times = [at - r * interval for (_, r), at in stored.items()]
    before, after = v['before'], v['after']
    seconds = after.at - before.at
    window = seconds / interval
    cost_samples = [s for s in v['every']
                    if before.at <= s['created'] < after.at]
    probers = []
    for p in v['probers']:
        cpu = (after.cpu[p.prober] - before.cpu[p.prober]
               if p.prober in after.cpu and p.prober in before.cpu else None)
        taken = sum(1 for s in cost_samples if s['prober'] == p.prober)
        probers.append({
            'prober': p.prober, 'probes_per_round': taken / window,
            'cpu_pct': None if cpu is None else cpu / seconds * 100,
            'cpu_ms_per_probe': (cpu / taken * 1000) if cpu and taken
            else None,
            'rss_mb': v['rss'].get(p.prober), 'killed': p is v['victim']})
    probes = len(cost_samples)
    broker = {k: after.broker[k] - before.broker[k]
              for k in ('frames', 'bytes')}
    etcd = (etcd_counter.delta(before.etcd, after.etcd)
            if before.etcd is not None else None)
    result = {
        'services': v['args'].services, 'probers': v['args'].probers,
        'interval': interval, 'lease': v['args'].membership_timeout,
        'coordination': v['url'].split(':', 1)[0],
        'rounds': len(checked), 'first': first, 'last': last,
        'expected': sum(c['expected'] for c in checked),
        'once': sum(c['once'] for c in checked),
        'duplicates': sum(len(c['duplicates']) for c in checked),
        'misses': sum(len(c['misses']) for c in checked),
        'per_round': checked,
        'skipped': sum(len(p) for p in skipped.values()),
        'complete_rounds': sum(1 for r in checked if not skipped[r['round']]),
        'complete_misses': sum(len(r['misses']) for r in checked
                               if not skipped[r['round']]),
        'round_p50': statistics.median(round_times),
        'round_max': max(round_times),
        'per_prober': probers, 'window_rounds': window,
        'probes': probes,
        'frames_per_probe': broker['frames'] / probes if probes else None,
        'bytes_per_probe': broker['bytes'] / probes if probes else None,
        'etcd_per_round': (sum(etcd.values()) / window
                           if etcd is not None else None),
        'etcd_paths': etcd, 'load': v['load'],
    }
    if v['victim'] is not None:
        gaps = _victim_gaps(v['every'], v['owned'], v['killed_at'],
                            v['ended'])
        if not gaps:
            gaps = {None: float('nan')}     # the victim never stored a round
        result.update({
            'victim': v['victim'].prober, 'owned': len(v['owned']),
            'kill_round': v['kill_round'],
            'max_gap': max(gaps.values()) if gaps else None,
            'max_gap_all': max(rounds.max_gaps(samples).values()),
            'target_gap': interval + v['args'].membership_timeout,
            'after_kill_duplicates': sum(
                len(c['duplicates']) for c in checked
                if c['round'] >= v['kill_round'])})
    return result


def report(result):
    """Print the case's table; returns the checks [(title, ok)]."""
    r = result
    print('Several probers: %d simulated services, %d inflight daemons in '
          'one tooz group (%s), %.0f s interval, %d s lease; load %.1f -> '
          '%.1f' % (r['services'], r['probers'], r['coordination'],
                    r['interval'], r['lease'], r['load'][0], r['load'][1]))
    print('  %-7s %-13s %-11s %-7s %-20s %-13s %s' % (
        'rounds', 'exactly once', 'duplicates', 'misses', 'round p50/max s',
        'probes/round', 'skipped (overrun)'))
    print('  %-7d %-13s %-11d %-7d %-20s %-13.0f %d' % (
        r['rounds'], '%.1f%%' % (100.0 * r['once'] / r['expected']),
        r['duplicates'], r['misses'],
        '%.2f / %.2f' % (r['round_p50'], r['round_max']),
        r['probes'] / r['window_rounds'], r['skipped']))
    print('  misses in the %d rounds that no prober skipped: %d' % (
        r['complete_rounds'], r['complete_misses']))
    print('  %-10s %12s %8s %13s %8s' % ('prober', 'probes/round', 'CPU %',
                                         'CPU ms/probe', 'RSS MB'))
    for p in r['per_prober']:
        print('  %-10s %12.0f %8s %13s %8s%s' % (
            p['prober'].split('-')[0], p['probes_per_round'],
            '-' if p['cpu_pct'] is None else '%.1f' % p['cpu_pct'],
            '-' if p['cpu_ms_per_probe'] is None
            else '%.2f' % p['cpu_ms_per_probe'],
            '-' if p['rss_mb'] is None else '%.0f' % p['rss_mb'],
            '  (killed)' if p['killed'] else ''))
    print('  broker, every connection of the vhost: %.1f frames, %.0f bytes '
          'per probe (a probe is 2 messages: the call and its reply)' % (
              r['frames_per_probe'] or 0, r['bytes_per_probe'] or 0))
    if r['etcd_per_round'] is not None:
        print('  etcd: %.1f operations per round for the group (%s)' % (
            r['etcd_per_round'], ', '.join(
                '%s %d' % (path.rsplit('/', 1)[-1], n) for path, n in
                sorted(r['etcd_paths'].items()))))
    live = [p for p in r['per_prober'] if p['rss_mb'] is not None]
    checks = [
        ('every service probed exactly once per round',
         r['once'] == r['expected'] and not r['duplicates']),
        ('each prober < %.0f MB RSS' % TARGET_RSS_MB,
         all(p['rss_mb'] < TARGET_RSS_MB for p in live)),
        ('each prober < %.0f%% of a core' % TARGET_CPU_PCT,
         all(p['cpu_pct'] is not None and p['cpu_pct'] < TARGET_CPU_PCT
             for p in live)),
        ('round time well inside the interval (max < 80%)',
         r['round_max'] < 0.8 * r['interval']),
    ]
    if 'victim' in r:
        print('  kill -9 %s in round %d: its %d services unprobed at most '
              '%.1f s (target interval + lease = %.0f s; any service: '
              '%.1f s); duplicates from that round on: %d' % (
                  r['victim'], r['kill_round'], r['owned'], r['max_gap'],
                  r['target_gap'], r['max_gap_all'],
                  r['after_kill_duplicates']))
        checks[0] = ('no service probed twice in a round',
                     not r['duplicates'])
        checks.append(('killed prober\'s services unprobed <= interval + '
                       'lease', r['max_gap'] <= r['target_gap']))
    return checks
