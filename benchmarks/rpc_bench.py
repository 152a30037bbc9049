"""RPC benchmark: nova_lite vs raw oslo.messaging vs raw AMQP, one broker.

    bin/nova-lite-dev bench            # or: python benchmarks/rpc_bench.py

Five stacks: raw py-amqp; raw oslo.messaging and nova_lite, each on the
eventlet and on the threading backend.  Each server runs in its own process
and each measurement in a fresh client process on the stack's backend
(eventlet-patched, or with eventlet never imported).  For calls: sequential
p50/p99/max over --calls calls after a warm-up, then throughput with
--concurrency callers (greenthreads, or native threads under threading).
For casts: throughput until the server has consumed them all.  Prints one
table with ratios to raw oslo.messaging on the same backend, the ratio
threading / eventlet for nova_lite, and the targets from the issue.
"""

import argparse
import gc
import logging
import os
import statistics
import subprocess
import sys
import time

import backends  # benchmarks/, next to this file
import procstat

# Names get a per-run suffix (--run-id), so a stray server from an earlier
# run can never consume this run's messages.
RAW_QUEUE = 'nova_lite_bench_raw'
RAW_CAST_QUEUE = 'nova_lite_bench_raw_cast'
TOPIC = 'nova_lite_bench'


def _set_run_id(run_id):
    global RAW_QUEUE, RAW_CAST_QUEUE, TOPIC
    RAW_QUEUE = 'nova_lite_bench_raw_%s' % run_id
    RAW_CAST_QUEUE = 'nova_lite_bench_raw_cast_%s' % run_id
    TOPIC = 'nova_lite_bench_%s' % run_id


def _exit_with_parent():
    """Exit when the benchmark (our stdin's writer) goes away."""
    import threading

    def _watch():
        sys.stdin.read()
        os._exit(0)
    threading.Thread(target=_watch, daemon=True).start()


# --------------------------------------------------------------------------
# Servers (each runs as ``rpc_bench.py --serve MODE --url URL``)

def serve_raw(url):
    """py-amqp echo server: reply to reply_to; count casts, report at N."""
    import amqp

    conn = _amqp_connect(amqp, url)
    channel = conn.channel()
    channel.queue_declare(RAW_QUEUE, auto_delete=True)
    channel.queue_declare(RAW_CAST_QUEUE, auto_delete=True)
    state = {'count': 0}

    def on_call(message):
        reply = amqp.Message(message.body,
                             correlation_id=message.correlation_id)
        channel.basic_publish(reply, routing_key=message.reply_to)

    def on_cast(message):
        state['count'] += 1
        expected = int(message.headers['expected'])
        if state['count'] == expected:
            state['count'] = 0
            channel.basic_publish(amqp.Message(b'done'),
                                  routing_key=message.reply_to)

    channel.basic_consume(RAW_QUEUE, callback=on_call, no_ack=True)
    channel.basic_consume(RAW_CAST_QUEUE, callback=on_cast, no_ack=True)
    print('READY', flush=True)
    while True:
        conn.drain_events()


class _Counter:
    """Endpoint shared by the oslo and nova_lite servers."""

    def __init__(self):
        import threading

        self.count = 0
        # The threading executor runs casts in parallel threads, and
        # ``count += 1`` is not atomic there (a lost update would leave the
        # client waiting for good).  Created after monkey-patching, so it
        # is a green lock under eventlet.
        self._lock = threading.Lock()

    def echo(self, context, arg):
        return arg

    def count_cast(self, context):
        with self._lock:
            self.count += 1

    def get_count(self, context):
        count = self.count
        return count

    def reset_count(self, context):
        self.count = 0


def serve_oslo(url, backend):
    """A plain oslo.messaging server with the executor of ``backend``.

    eventlet: monkey-patched here, no nova_lite.  threading: imports
    nova_lite.monkey_patch only to keep eventlet out (oslo.service and
    oslo.utils import it otherwise); nothing else of nova_lite runs.
    """
    if backend == backends.THREADING:
        from nova_lite import monkey_patch  # noqa: F401
    else:
        import eventlet
        eventlet.monkey_patch()
    from oslo_config import cfg
    import oslo_messaging as messaging

    transport = messaging.get_rpc_transport(cfg.CONF, url=url)
    target = messaging.Target(topic=TOPIC + '_oslo', server='bench')
    server = messaging.get_rpc_server(transport, target, [_Counter()],
                                      executor=backend)
    server.start()
    print('READY', flush=True)
    server.wait()


def serve_nova_lite(url, state_dir):
    """A nova_lite Service with a benchmark manager, as a daemon runs it."""
    from nova_lite import monkey_patch  # noqa: F401
    import oslo_messaging as messaging

    from nova_lite import config
    from nova_lite.db import api as db_api
    from nova_lite.db import migration
    from nova_lite import manager
    from nova_lite import rpc
    from nova_lite import service

    class BenchManager(_Counter, manager.Manager):
        target = messaging.Target(version='1.0')

        def __init__(self, *args, **kwargs):
            _Counter.__init__(self)
            manager.Manager.__init__(self, *args, **kwargs)

    conf = config.parse_args([], default_config_files=[])
    conf.set_override('transport_url', url)
    conf.set_override('connection', 'sqlite:///%s/bench.sqlite' % state_dir,
                      group='database')
    db = db_api.API(conf)
    migration.db_sync(db)
    rpc.init(conf)
    svc = service.Service(conf, binary='nova-lite-bench', topic=TOPIC,
                          manager=BenchManager, host='bench', db=db)
    # serve() starts the service; READY is printed from the manager hook.
    BenchManager.post_start_hook = lambda self: print('READY', flush=True)
    service.serve([svc])


# --------------------------------------------------------------------------
# Clients

def _amqp_connect(amqp, url):
    from oslo_messaging import transport as om_transport
    from oslo_config import cfg

    parsed = om_transport.TransportURL.parse(cfg.CONF, url)
    host = parsed.hosts[0]
    conn = amqp.Connection(host='%s:%s' % (host.hostname, host.port or 5672),
                           userid=host.username, password=host.password,
                           virtual_host=parsed.virtual_host or '/')
    conn.connect()
    return conn


class RawClient:
    def __init__(self, url):
        import amqp
        self.amqp = amqp
        self.conn = _amqp_connect(amqp, url)
        self.channel = self.conn.channel()
        self.reply_queue = self.channel.queue_declare(exclusive=True).queue
        self.replies = []
        self.channel.basic_consume(self.reply_queue, no_ack=True,
                                   callback=self.replies.append)
        self._id = 0

    def call(self):
        self._id += 1
        message = self.amqp.Message(b'x', correlation_id=str(self._id),
                                    reply_to=self.reply_queue)
        self.channel.basic_publish(message, routing_key=RAW_QUEUE)
        while not self.replies:
            self.conn.drain_events()
        self.replies.pop()

    def casts(self, count):
        for _ in range(count):
            message = self.amqp.Message(
                b'x', reply_to=self.reply_queue,
                application_headers={'expected': count})
            self.channel.basic_publish(message, routing_key=RAW_CAST_QUEUE)
        while not self.replies:
            self.conn.drain_events()
        self.replies.pop()

    concurrent_call = None  # one py-amqp channel is not thread-safe


class OsloClient:
    def __init__(self, url):
        from oslo_config import cfg
        import oslo_messaging as messaging
        transport = messaging.get_rpc_transport(cfg.CONF, url=url)
        self.client = messaging.get_rpc_client(
            transport, messaging.Target(topic=TOPIC + '_oslo',
                                        server='bench'))
        self.ctxt = {}

    def call(self):
        self.client.call(self.ctxt, 'echo', arg='x')

    concurrent_call = call

    def casts(self, count):
        self.client.call(self.ctxt, 'reset_count')
        for _ in range(count):
            self.client.cast(self.ctxt, 'count_cast')
        while self.client.call(self.ctxt, 'get_count') < count:
            time.sleep(0.005)


class NovaLiteClient:
    def __init__(self, url):
        from nova_lite import config
        from nova_lite import context
        from nova_lite import rpc

        class BenchRPCAPI(rpc.RPCAPIBase):
            """Client side of the benchmark API.

            1.0 - Initial version.
            """
            TOPIC = TOPIC

            def echo(self, ctxt, arg):
                return self.client.prepare(server='bench').call(
                    ctxt, 'echo', arg=arg)

            def count_cast(self, ctxt):
                self.client.prepare(server='bench').cast(ctxt, 'count_cast')

            def get_count(self, ctxt):
                return self.client.prepare(server='bench').call(
                    ctxt, 'get_count')

            def reset_count(self, ctxt):
                self.client.prepare(server='bench').call(ctxt, 'reset_count')

        conf = config.parse_args([], default_config_files=[])
        conf.set_override('transport_url', url)
        rpc.init(conf)
        self.api = BenchRPCAPI(conf)
        self.ctxt = context.get_admin_context()

    def call(self):
        self.api.echo(self.ctxt, 'x')

    concurrent_call = call

    def casts(self, count):
        self.api.reset_count(self.ctxt)
        for _ in range(count):
            self.api.count_cast(self.ctxt)
        while self.api.get_count(self.ctxt) < count:
            time.sleep(0.005)


# --------------------------------------------------------------------------
# Measurement

class _PoolWarnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        if 'Connection pool limit exceeded' in record.getMessage():
            self.count += 1


def _broker_cpu():
    """RabbitMQ's CPU seconds so far, when it runs on this machine."""
    pid = procstat.find_pid('beam.smp')
    return procstat.cpu_seconds(pid) if pid else None


def measure(client, calls, warmup, concurrency, conc_calls, casts,
            server_pid):
    # Greenthreads under eventlet, native threads under threading.
    from nova_lite import concurrency as nl_concurrency
    from nova_lite.inflight import stats

    for _ in range(warmup):
        client.call()
    gc.collect()
    latencies = []
    cpu_before = procstat.cpu_seconds(server_pid)
    client_before = time.process_time()
    for _ in range(calls):
        start = time.perf_counter()
        client.call()
        latencies.append((time.perf_counter() - start) * 1000.0)
    result = {'p50': statistics.median(latencies),
              'p99': stats.percentile(latencies, 99), 'max': max(latencies),
              'cpu': (procstat.cpu_seconds(server_pid) - cpu_before) / calls * 1e6,
              'ccpu': (time.process_time() - client_before) / calls * 1e6}
    if client.concurrent_call is not None:
        broker_before = _broker_cpu()
        start = time.perf_counter()
        nl_concurrency.map_concurrently(lambda _: client.concurrent_call(),
                                        range(conc_calls), concurrency)
        result['conc'] = conc_calls / (time.perf_counter() - start)
        if broker_before is not None:
            result['bcpu'] = ((_broker_cpu() - broker_before)
                              / conc_calls * 1e6)
    start = time.perf_counter()
    client.casts(casts)
    result['casts'] = casts / (time.perf_counter() - start)
    return result


def start_server(mode, backend, url, state_dir, run_id):
    argv = [sys.executable, os.path.abspath(__file__), '--serve', mode,
            '--backend', backend, '--url', url, '--state-dir', state_dir,
            '--run-id', run_id]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True,
                            env=backends.child_env(backend))
    line = proc.stdout.readline()
    if 'READY' not in line:
        proc.kill()
        raise SystemExit('%s server did not start' % mode)
    return proc


def _fmt(value, unit=''):
    if value is None:
        return 'n/a'
    return '%.2f%s' % (value, unit) if value < 100 else '%.0f%s' % (value,
                                                                   unit)


RAW = 'raw py-amqp'
OSLO = 'oslo.messaging (%s)'
NOVA = 'nova_lite (%s)'

# (table label, server and client mode, backend of both processes, client).
# raw py-amqp has no executor; its processes run eventlet as before.
STACKS = (
    (RAW, 'raw', backends.EVENTLET, 'RawClient'),
    (OSLO % backends.EVENTLET, 'oslo', backends.EVENTLET, 'OsloClient'),
    (OSLO % backends.THREADING, 'oslo', backends.THREADING, 'OsloClient'),
    (NOVA % backends.EVENTLET, 'nova_lite', backends.EVENTLET,
     'NovaLiteClient'),
    (NOVA % backends.THREADING, 'nova_lite', backends.THREADING,
     'NovaLiteClient'),
)

# The target for the threading backend, on throughput.
THREADING_TARGET = 0.9


def _round_ratios(samples, numerator, denominator, key):
    return [num[key] / den[key] for num, den in zip(samples[numerator],
                                                   samples[denominator])]


def print_round_ratios(samples, args):
    """nova_lite / oslo per round and backend: the spread the medians
    hide."""
    print()
    print('nova_lite / oslo.messaging on the same backend, in each round '
          '(the stacks take turns, so a round shares the machine\'s '
          'conditions):')
    for backend in backends.BACKENDS:
        for key, title in (('p50', 'call p50'),
                           ('conc', 'calls/s @%d' % args.concurrency),
                           ('casts', 'casts/s')):
            ratios = _round_ratios(samples, NOVA % backend, OSLO % backend,
                                   key)
            print('  %-10s %-14s %s' % (backend, title, '  '.join(
                '%.3f' % r for r in ratios)))


def print_backend_ratio(samples, args):
    """nova_lite threading / eventlet throughput, per round and median,
    against the issue's target; True when both medians meet it."""
    print()
    print('nova_lite (threading) / nova_lite (eventlet), per round and '
          'median; target: threading-backend throughput >= %.1fx '
          'eventlet\'s' % THREADING_TARGET)
    met = True
    for key, title in (('conc', 'calls/s @%d' % args.concurrency),
                       ('casts', 'casts/s')):
        ratios = _round_ratios(samples, NOVA % backends.THREADING,
                               NOVA % backends.EVENTLET, key)
        median = statistics.median(ratios)
        met = met and median >= THREADING_TARGET
        print('  %-14s rounds %s   median %.3fx  [%s]' % (
            title, '  '.join('%.3f' % r for r in ratios), median,
            'met' if median >= THREADING_TARGET else 'MISSED'))
    return met


def print_table(results, pool_warnings, args):
    cols = [('p50', 'call p50 ms'), ('p99', 'call p99 ms'),
            ('max', 'call max ms'),
            ('conc', 'calls/s @%d' % args.concurrency),
            ('casts', 'casts/s'), ('cpu', 'srv us/call'),
            ('ccpu', 'cli us/call'),
            ('bcpu', 'brk us/c@%d' % args.concurrency)]
    header = '%-28s' % 'stack' + ''.join('%14s' % title for _, title in cols)
    print()
    print('RPC benchmark: %d sequential calls after %d warm-up, %d calls '
          'from %d concurrent callers (greenthreads; native threads under '
          'threading), %d casts, one RabbitMQ broker' % (
              args.calls, args.warmup, args.conc_calls, args.concurrency,
              args.casts))
    print(header)
    print('-' * len(header))
    for name, result in results.items():
        print('%-28s' % name + ''.join(
            '%14s' % _fmt(result.get(key)) for key, _ in cols))
    print('(medians of %d rounds; "Connection pool limit exceeded" warnings: '
          '%s)' % (args.rounds, ', '.join(
              '%s %d' % (name, count)
              for name, count in pool_warnings.items())))
    print()
    print('ratios to raw oslo.messaging on the same backend (nova_lite / '
          'oslo):')
    print('  %-14s %10s %10s' % (('',) + backends.BACKENDS))
    for key, title in cols:
        ratios = []
        for backend in backends.BACKENDS:
            nova, base = results[NOVA % backend], results[OSLO % backend]
            ratios.append('%.3fx' % (nova[key] / base[key])
                          if nova.get(key) and base.get(key) else 'n/a')
        print('  %-14s %10s %10s' % ((title,) + tuple(ratios)))


def print_checks(results, pool_warnings, backend_ratio_met):
    """The issue's targets: nova_lite against raw oslo.messaging on each
    backend, and threading against eventlet."""
    checks = []
    for backend in backends.BACKENDS:
        name = NOVA % backend
        nova, base = results[name], results[OSLO % backend]
        checks += [
            ('%s call p50 <= 1.05x oslo' % name,
             nova['p50'] <= 1.05 * base['p50']),
            ('%s call max <= 10 ms' % name, nova['max'] <= 10.0),
            ('%s 50-concurrent >= 1.0x oslo' % name,
             nova['conc'] >= 1.0 * base['conc']),
            ('no "Connection pool limit exceeded" warnings in %s' % name,
             pool_warnings[name] == 0),
            ('%s casts >= 0.95x oslo' % name,
             nova['casts'] >= 0.95 * base['casts']),
        ]
    checks.append(('threading-backend throughput >= %.1fx eventlet\'s '
                   '(median ratios above)' % THREADING_TARGET,
                   backend_ratio_met))
    print()
    for title, ok in checks:
        print('  [%s] %s' % ('met' if ok else 'MISSED', title))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', default='rabbit://guest:guest@localhost:5672/')
    parser.add_argument('--calls', type=int, default=2000)
    parser.add_argument('--warmup', type=int, default=200)
    parser.add_argument('--concurrency', type=int, default=50)
    parser.add_argument('--conc-calls', type=int, default=5000,
                        help='Calls in the concurrent throughput phase '
                             '(default 5000).')
    parser.add_argument('--casts', type=int, default=5000)
    parser.add_argument('--rounds', type=int, default=3,
                        help='Rounds of every stack; the table shows '
                             'medians (default 3).')
    parser.add_argument('--serve', choices=['raw', 'oslo', 'nova_lite'],
                        help=argparse.SUPPRESS)
    parser.add_argument('--backend', choices=backends.BACKENDS,
                        default=backends.EVENTLET, help=argparse.SUPPRESS)
    parser.add_argument('--state-dir', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--run-id', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--measure', choices=['raw', 'oslo', 'nova_lite'],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _set_run_id(args.run_id)
        _exit_with_parent()
    if args.serve == 'raw':
        return serve_raw(args.url)
    if args.serve == 'oslo':
        return serve_oslo(args.url, args.backend)
    if args.serve == 'nova_lite':
        return serve_nova_lite(args.url, args.state_dir)

    if args.measure:
        return measure_in_this_process(args)
    return run_rounds(args)


def measure_in_this_process(args):
    """One stack, one round: server subprocess + client here; JSON out.

    Started with the stack's backend in its environment, which the server
    inherits; nova_lite.monkey_patch applies it here first.
    """
    from nova_lite import monkey_patch
    import json

    _set_run_id(args.run_id)
    name, mode, backend, client_name = [
        s for s in STACKS if s[1:3] == (args.measure, args.backend)][0]
    if monkey_patch.BACKEND != backend:
        raise SystemExit('%s: this process runs %s (from %s)' % (
            name, monkey_patch.BACKEND, monkey_patch.SOURCE))
    pool_warnings = _PoolWarnings()
    logging.getLogger().addHandler(pool_warnings)
    server = start_server(mode, backend, args.url, args.state_dir,
                          args.run_id)
    try:
        client = globals()[client_name](args.url)
        result = measure(client, args.calls, args.warmup, args.concurrency,
                         args.conc_calls, args.casts, server.pid)
    finally:
        server.terminate()
        server.wait()
    result['pool_warnings'] = pool_warnings.count
    print(json.dumps(result), flush=True)
    return 0


def run_rounds(args):
    """Every stack in a fresh client process, round after round.

    A fresh process per measurement keeps one stack's leftovers (pooled
    connections and their heartbeat threads) from slowing the next, and
    lets each run its own backend; taking turns over several rounds
    spreads machine noise (two cores shared by client, server and broker)
    evenly; the table shows medians.
    """
    import json
    import tempfile
    import uuid

    state_dir = tempfile.mkdtemp(prefix='nova_lite_bench_')
    samples = {stack[0]: [] for stack in STACKS}
    for round_no in range(1, args.rounds + 1):
        # Each round starts with another stack: whichever runs right after
        # another meets the broker still cleaning up the previous one's
        # queues and connections, and that must not always be the same one.
        offset = (round_no - 1) % len(STACKS)
        for name, mode, backend, _ in STACKS[offset:] + STACKS[:offset]:
            argv = [sys.executable, os.path.abspath(__file__),
                    '--measure', mode, '--backend', backend,
                    '--url', args.url,
                    '--calls', str(args.calls), '--warmup', str(args.warmup),
                    '--concurrency', str(args.concurrency),
                    '--conc-calls', str(args.conc_calls),
                    '--casts', str(args.casts), '--state-dir', state_dir,
                    '--run-id', uuid.uuid4().hex[:8]]
            out = subprocess.run(argv, stdout=subprocess.PIPE, text=True,
                                 check=True, timeout=600,
                                 env=backends.child_env(backend)).stdout
            samples[name].append(json.loads(out.strip().splitlines()[-1]))
            print('round %d/%d: %s done' % (round_no, args.rounds, name),
                  file=sys.stderr, flush=True)
    results = {name: {key: statistics.median(r[key] for r in rounds)
                      for key in rounds[0] if key != 'pool_warnings'}
               for name, rounds in samples.items()}
    warnings = {name: sum(r['pool_warnings'] for r in rounds)
                for name, rounds in samples.items()}
    print_table(results, warnings, args)
    backend_ratio_met = print_backend_ratio(samples, args)
    print_checks(results, warnings, backend_ratio_met)
    print_round_ratios(samples, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
