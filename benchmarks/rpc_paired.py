"""nova_lite against nova_lite +metrics in alternating blocks (rpc_bench).

A round of ``rpc_bench.py`` runs one stack after the other, so each meets
the machine as it is during its own minute; on a shared machine that moves
CPU per call by 10% or more from one stack to the next.  Here both stacks
run at once, each a worker process (its client) with its own server, and
take turns in short blocks::

    parent ──"seq 500"──▶ nova_lite worker            ──▶ its server
           ──"seq 500"──▶ nova_lite +metrics worker   ──▶ its server
           ... the order swapped every other block ...

so that both meet the same conditions, block by block.  Each block
reports the server's and the client's CPU per call and the p50 of
sequential calls, the same of ``--concurrency`` concurrent callers, and
the rate of casts.  The ratio of the two stacks' sums over all blocks is
what the targets are checked against; the block ratios show the spread.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import backends  # benchmarks/, next to this file
import procstat

MODES = ('nova_lite', 'nova_lite_metrics')

# key: (title, the ratio's bound, 'max' or 'min'), as in rpc_report.
TARGETS = (
    ('cpu', 'srv us/call', 1.03, 'max'),
    ('ccpu', 'cli us/call', 1.03, 'max'),
    ('p50', 'call p50 ms', 1.03, 'max'),
    ('cpu_conc', 'srv us/c@%d', 1.03, 'max'),
    ('ccpu_conc', 'cli us/c@%d', 1.03, 'max'),
    ('conc', 'calls/s @%d', 0.97, 'min'),
    ('casts', 'casts/s', 0.97, 'min'),
)


# --------------------------------------------------------------------------
# The worker: a client process with its server, driven over stdin/stdout.

def serve_worker(args):
    """``rpc_bench.py --paired-worker MODE``: start MODE's server (and a
    scraper of its /metrics), warm up, print READY; then answer one JSON
    line per command: ``seq N``, ``conc N``, ``casts N``, ``quit``."""
    from nova_lite import monkey_patch  # noqa: F401
    from nova_lite import concurrency

    import rpc_bench

    rpc_bench._set_run_id(args.run_id)
    mode, backend = args.paired_worker, args.backend
    server, address = rpc_bench.start_server(
        mode, backend, args.url, args.state_dir, args.run_id)
    scraper = (rpc_bench.start_scraper(address, args.scrape_interval)
               if address else None)
    client_cls = (rpc_bench.NovaLiteMetricsClient
                  if mode == 'nova_lite_metrics'
                  else rpc_bench.NovaLiteClient)
    client = client_cls(args.url)
    sent = 0
    for _ in range(args.warmup):
        client.call()
        sent += 1
    print('READY', flush=True)
    try:
        for line in sys.stdin:
            command, _, count = line.partition(' ')
            count = int(count or 0)
            cpu, ccpu = procstat.cpu_seconds(server.pid), time.process_time()
            start = time.perf_counter()
            if command == 'seq':
                latencies = []
                for _ in range(count):
                    began = time.perf_counter()
                    client.call()
                    latencies.append(time.perf_counter() - began)
                sent += count
                result = {'p50': statistics.median(latencies) * 1000.0}
            elif command == 'conc':
                concurrency.map_concurrently(
                    lambda _: client.concurrent_call(), range(count),
                    args.concurrency)
                sent += count
                result = {'conc': count / (time.perf_counter() - start)}
            elif command == 'casts':
                client.casts(count)
                result = {'casts': count / (time.perf_counter() - start)}
            else:
                break
            if command in ('seq', 'conc'):
                suffix = '' if command == 'seq' else '_conc'
                result['cpu' + suffix] = (
                    procstat.cpu_seconds(server.pid) - cpu) / count * 1e6
                result['ccpu' + suffix] = (
                    time.process_time() - ccpu) / count * 1e6
            print(json.dumps(result), flush=True)
        result = {}
        if scraper is not None:
            scraper.stdin.close()
            result = json.loads(scraper.stdout.read())
            result.update(echo_counted=rpc_bench.server_echo_count(address),
                          echo_sent=sent)
        print(json.dumps(result), flush=True)
    finally:
        if scraper is not None:
            scraper.kill()
            scraper.wait()
        server.terminate()
        server.wait()
    return 0


# --------------------------------------------------------------------------
# The parent

class _Worker:
    def __init__(self, mode, backend, args, state_dir):
        import uuid

        argv = [sys.executable, os.path.join(os.path.dirname(
                    os.path.abspath(__file__)), 'rpc_bench.py'),
                '--paired-worker', mode, '--backend', backend,
                '--url', args.url, '--warmup', str(args.warmup),
                '--concurrency', str(args.concurrency),
                '--state-dir', state_dir,
                '--scrape-interval', str(args.scrape_interval),
                '--run-id', uuid.uuid4().hex[:8]]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     env=backends.child_env(backend))
        if 'READY' not in self.proc.stdout.readline():
            self.proc.kill()
            raise SystemExit('paired worker %s (%s) did not start' % (
                mode, backend))

    def ask(self, command):
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        try:
            return self.ask('quit')
        finally:
            self.proc.stdin.close()
            self.proc.wait()


def run(args, backend, state_dir):
    """``{mode: [block results]}`` and ``{mode: scrape counts}``."""
    workers = {}
    try:
        for mode in MODES:
            workers[mode] = _Worker(mode, backend, args, state_dir)
        blocks = {mode: [] for mode in MODES}
        for number in range(args.paired_blocks):
            order = MODES if number % 2 == 0 else MODES[::-1]
            results = {mode: {} for mode in MODES}
            for command in ('seq %d' % args.paired_calls,
                            'conc %d' % args.paired_conc_calls,
                            'casts %d' % args.paired_casts):
                for mode in order:
                    results[mode].update(workers[mode].ask(command))
            for mode in MODES:
                blocks[mode].append(results[mode])
            print('paired %s: block %d/%d done' % (
                backend, number + 1, args.paired_blocks), file=sys.stderr,
                flush=True)
        scrapes = {mode: workers.pop(mode).close() for mode in MODES}
    finally:
        for worker in workers.values():
            worker.proc.kill()
            worker.proc.wait()
    return blocks, scrapes


def _mean(blocks, key):
    """Per call for CPU and p50 (the same calls in every block); for a
    rate, the rate over all blocks' time (the harmonic mean)."""
    values = [block[key] for block in blocks]
    if key in ('conc', 'casts'):
        return len(values) / sum(1.0 / value for value in values)
    return sum(values) / len(values)


def _title(title, args):
    return title % args.concurrency if '%d' in title else title


def report(args, backend, blocks, scrapes):
    """Print the paired table; the checks."""
    base, metrics = blocks['nova_lite'], blocks['nova_lite_metrics']
    print()
    print('paired on %s: nova_lite +metrics / nova_lite, %d blocks of %d '
          'sequential calls, %d calls from %d concurrent callers and %d '
          'casts each, the two stacks taking turns (both run at once)' % (
              backend, len(base), args.paired_calls, args.paired_conc_calls,
              args.concurrency, args.paired_casts))
    print('  %-14s %12s %12s %9s %-17s %s' % (
        '', 'nova_lite', '+metrics', 'ratio', 'target',
        'block ratios: median, min..max'))
    checks = []
    for key, title, bound, how in TARGETS:
        title = _title(title, args)
        mean_base, mean_metrics = _mean(base, key), _mean(metrics, key)
        ratio = mean_metrics / mean_base
        ratios = [m[key] / b[key] for b, m in zip(base, metrics)]
        ok = ratio <= bound if how == 'max' else ratio >= bound
        target = '%s%.2fx %s' % ('<=' if how == 'max' else '>=', bound,
                                 'met' if ok else 'MISSED')
        print('  %-14s %12.1f %12.1f %8.3fx %-17s %.3f, %.3f..%.3f' % (
            title, mean_base, mean_metrics, ratio, target, statistics.median(ratios), min(ratios),
            max(ratios)))
        checks.append(('paired %s: +metrics %s %s %.2fx nova_lite\'s' % (
            backend, title, '<=' if how == 'max' else '>=', bound), ok))
    scrape = scrapes.get('nova_lite_metrics') or {}
    print('  (ratio: of the means over the blocks, per call for CPU and '
          'p50, over the whole time for the rates.  /metrics scraped %d times, %d errors; echo calls '
          'counted by its histogram vs sent: %d/%d)' % (
              scrape.get('scrapes', 0), scrape.get('errors', 0),
              scrape.get('echo_counted', -1), scrape.get('echo_sent', -1)))
    checks.append(('paired %s: every echo call counted on /metrics' %
                   backend, scrape.get('echo_counted') ==
                   scrape.get('echo_sent')))
    return checks
