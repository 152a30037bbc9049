"""RPC benchmark: nova_lite vs raw oslo.messaging vs raw AMQP, one broker.

    bin/nova-lite-dev bench            # or: python benchmarks/rpc_bench.py

Seven stacks: raw py-amqp; raw oslo.messaging, nova_lite and nova_lite
+metrics, each on the eventlet and on the threading backend.  nova_lite is
the service without RPC metrics (``rpc.init(conf, timed=False)``: no
stamps, no timing; started without ``service.serve``'s process endpoint:
no hub watchdog, no health round trips, no listener).  nova_lite +metrics
is the service as the daemons run it (``service.serve``: every message
stamped and timed, the endpoint with its /metrics listener), scraped once
per second by a separate process.  Each server runs in its own process
and each measurement in a fresh client process on the stack's backend
(eventlet-patched, or with eventlet never imported).  For calls: sequential
p50/p99/max over --calls calls after a warm-up, then throughput with
--concurrency callers (greenthreads, or native threads under threading).
For casts: throughput until the server has consumed them all.  Prints one
table with ratios to raw oslo.messaging on the same backend, the ratio
threading / eventlet for nova_lite, what the metrics cost (nova_lite
+metrics / nova_lite, per round and by medians), and the targets from the
issues.
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
import rpc_paired
import rpc_report as report

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


def serve_nova_lite(url, state_dir, metrics):
    """A nova_lite Service with a benchmark manager.

    ``metrics``: as a daemon runs it (``service.serve``: RPC timing, the
    process endpoint, its listener on a free port, whose address READY
    names).  Without: no timing or stamps (``rpc.init(conf,
    timed=False)``) and the service started by hand, without the endpoint
    that ``service.serve`` adds; then, as ``serve`` does, the start-up's
    objects are frozen out of the garbage collector's view.
    """
    from nova_lite import monkey_patch  # noqa: F401
    import oslo_messaging as messaging

    from nova_lite import concurrency
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
    rpc.init(conf, timed=metrics)
    svc = service.Service(conf, binary='nova-lite-bench', topic=TOPIC,
                          manager=BenchManager, host='bench', db=db)
    if metrics:
        # serve() starts the service; READY is printed from the manager
        # hook, once the listener's address is known.
        BenchManager.post_start_hook = lambda self: print(
            'READY', svc.metrics_address, flush=True)
        service.serve([svc])
        return
    svc.start()
    gc.collect()
    gc.freeze()
    print('READY', flush=True)
    concurrency.Event().wait()      # until terminated


def scrape(address, interval):
    """GET http://ADDRESS/metrics every ``interval`` s, as Prometheus
    would, until stdin closes; then print how many scrapes, errors and
    bytes."""
    import json
    import threading
    import urllib.request

    done = threading.Event()

    def _watch():
        sys.stdin.read()
        done.set()
    threading.Thread(target=_watch, daemon=True).start()
    counts = {'scrapes': 0, 'errors': 0, 'bytes': 0}
    while not done.wait(interval):
        try:
            with urllib.request.urlopen('http://%s/metrics' % address,
                                        timeout=5) as answer:
                counts['bytes'] += len(answer.read())
            counts['scrapes'] += 1
        except OSError:
            counts['errors'] += 1
    print(json.dumps(counts), flush=True)


def server_echo_count(address):
    """The count of ``echo`` calls in the server's handling histogram."""
    from nova_lite.testing import scrape as nl_scrape

    return nl_scrape.metrics(address).value(
        'nova_lite_rpc_server_handling_seconds_count', method='echo')


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
    """An rpcapi client; every call and cast timed only when TIMED."""

    TIMED = False

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
        rpc.init(conf, timed=self.TIMED)
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


class NovaLiteMetricsClient(NovaLiteClient):
    TIMED = True


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
    began = time.perf_counter()
    for _ in range(calls):
        start = time.perf_counter()
        client.call()
        latencies.append((time.perf_counter() - start) * 1000.0)
    result = {'seq_rate': calls / (time.perf_counter() - began),
              'p50': statistics.median(latencies),
              'p99': stats.percentile(latencies, 99), 'max': max(latencies),
              'cpu': (procstat.cpu_seconds(server_pid) - cpu_before) / calls * 1e6,
              'ccpu': (time.process_time() - client_before) / calls * 1e6}
    if client.concurrent_call is not None:
        broker_before = _broker_cpu()
        cpu_before = procstat.cpu_seconds(server_pid)
        client_before = time.process_time()
        start = time.perf_counter()
        nl_concurrency.map_concurrently(lambda _: client.concurrent_call(),
                                        range(conc_calls), concurrency)
        result['conc'] = conc_calls / (time.perf_counter() - start)
        result['cpu_conc'] = ((procstat.cpu_seconds(server_pid) - cpu_before)
                              / conc_calls * 1e6)
        result['ccpu_conc'] = ((time.process_time() - client_before)
                               / conc_calls * 1e6)
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
    # "READY [metrics address]"
    return proc, (line.split()[1:] or [None])[0]


def start_scraper(address, interval):
    """A separate process scraping ``address`` (its CPU is nobody's)."""
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), '--scrape', address,
         '--scrape-interval', str(interval)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


# (table label, server and client mode, backend of both processes, client).
# raw py-amqp has no executor; its processes run eventlet as before.  A
# stack's nova_lite and +metrics variants are neighbours, so that a round
# measures them under much the same conditions.
STACKS = (
    (report.RAW, 'raw', backends.EVENTLET, 'RawClient'),
    (report.OSLO % backends.EVENTLET, 'oslo', backends.EVENTLET,
     'OsloClient'),
    (report.OSLO % backends.THREADING, 'oslo', backends.THREADING,
     'OsloClient'),
    (report.NOVA % backends.EVENTLET, 'nova_lite', backends.EVENTLET,
     'NovaLiteClient'),
    (report.NOVA_METRICS % backends.EVENTLET, 'nova_lite_metrics',
     backends.EVENTLET, 'NovaLiteMetricsClient'),
    (report.NOVA % backends.THREADING, 'nova_lite', backends.THREADING,
     'NovaLiteClient'),
    (report.NOVA_METRICS % backends.THREADING, 'nova_lite_metrics',
     backends.THREADING, 'NovaLiteMetricsClient'),
)
MODES = ('raw', 'oslo', 'nova_lite', 'nova_lite_metrics')


def _modes(text):
    """argparse type: comma-separated server modes."""
    names = [name.strip() for name in text.split(',') if name.strip()]
    if not names or set(names) - set(MODES):
        raise argparse.ArgumentTypeError(
            'expected stacks from %s, comma-separated' % ', '.join(MODES))
    return names


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
    parser.add_argument('--rounds', type=int, default=5,
                        help='Rounds of every stack; the table shows '
                             'medians (default 5).')
    parser.add_argument('--stacks', type=_modes, default=list(MODES),
                        help='Stacks to run, comma-separated, from %s '
                             '(default: all); each on both backends, but '
                             'raw.' % ', '.join(MODES))
    parser.add_argument('--backends', type=backends.backend_list,
                        default=list(backends.BACKENDS),
                        help='Backends of the oslo and nova_lite stacks, '
                             'comma-separated (default: eventlet,'
                             'threading).')
    parser.add_argument('--scrape-interval', type=float, default=1.0,
                        help='Seconds between scrapes of nova_lite '
                             '+metrics\'s /metrics (default 1).')
    parser.add_argument('--paired-blocks', type=int, default=10,
                        help='Blocks of the paired comparison of nova_lite '
                             'and nova_lite +metrics, per backend (default '
                             '10; 0 skips it).')
    parser.add_argument('--paired-calls', type=int, default=500,
                        help='Sequential calls per paired block (default '
                             '500).')
    parser.add_argument('--paired-conc-calls', type=int, default=1000,
                        help='Concurrent calls per paired block (default '
                             '1000).')
    parser.add_argument('--paired-casts', type=int, default=1000,
                        help='Casts per paired block (default 1000).')
    parser.add_argument('--paired-worker', choices=rpc_paired.MODES,
                        help=argparse.SUPPRESS)
    parser.add_argument('--serve', choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument('--backend', choices=backends.BACKENDS,
                        default=backends.EVENTLET, help=argparse.SUPPRESS)
    parser.add_argument('--state-dir', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--run-id', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--measure', choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument('--scrape', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scrape:
        return scrape(args.scrape, args.scrape_interval)
    if args.paired_worker:
        return rpc_paired.serve_worker(args)
    if args.serve:
        _set_run_id(args.run_id)
        _exit_with_parent()
    if args.serve == 'raw':
        return serve_raw(args.url)
    if args.serve == 'oslo':
        return serve_oslo(args.url, args.backend)
    if args.serve in ('nova_lite', 'nova_lite_metrics'):
        return serve_nova_lite(args.url, args.state_dir,
                               metrics=args.serve == 'nova_lite_metrics')

    if args.measure:
        return measure_in_this_process(args)
    return run_rounds(args)


def measure_in_this_process(args):
    """One stack, one round: server subprocess + client here; JSON out.

    Started with the stack's backend in its environment, which the server
    inherits; nova_lite.monkey_patch applies it here first.  A server
    with a /metrics listener is scraped by a third process meanwhile.
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
    server, address = start_server(mode, backend, args.url, args.state_dir,
                                   args.run_id)
    scraper = None
    try:
        if address:
            scraper = start_scraper(address, args.scrape_interval)
        client = globals()[client_name](args.url)
        result = measure(client, args.calls, args.warmup, args.concurrency,
                         args.conc_calls, args.casts, server.pid)
        if scraper is not None:
            scraper.stdin.close()
            result['scrapes'] = json.loads(scraper.stdout.read())
            result['scrapes'].update(
                echo_counted=server_echo_count(address),
                echo_sent=args.warmup + args.calls + args.conc_calls)
    finally:
        if scraper is not None:
            scraper.kill()
            scraper.wait()
        server.terminate()
        server.wait()
    result['pool_warnings'] = pool_warnings.count
    print(json.dumps(result), flush=True)
    return 0


def _measure_once(argv, backend, name, attempts=2):
    """One stack's round in a child process; tried again once if it
    fails or hangs (the broker on a shared machine may be restarted by
    someone else's test meanwhile)."""
    import json

    for attempt in range(1, attempts + 1):
        try:
            out = subprocess.run(argv, stdout=subprocess.PIPE, text=True,
                                 check=True, timeout=300,
                                 env=backends.child_env(backend)).stdout
            return json.loads(out.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError) as exc:
            print('%s: attempt %d failed: %s' % (name, attempt, exc),
                  file=sys.stderr, flush=True)
            if attempt == attempts:
                raise


def _swap_pairs(order):
    """``order`` with each backend's nova_lite and nova_lite +metrics in
    each other's place: every other round, so that neither always runs
    right after the other."""
    order = list(order)
    for backend in backends.BACKENDS:
        where = [i for i, stack in enumerate(order) if stack[2] == backend
                 and stack[1] in ('nova_lite', 'nova_lite_metrics')]
        if len(where) == 2:
            first, second = where
            order[first], order[second] = order[second], order[first]
    return order


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
    stacks = [s for s in STACKS if s[1] in args.stacks and
              (s[1] == 'raw' or s[2] in args.backends)]
    samples = {stack[0]: [] for stack in stacks}
    for round_no in range(1, args.rounds + 1):
        # Each round starts with another stack: whichever runs right after
        # another meets the broker still cleaning up the previous one's
        # queues and connections, and that must not always be the same one.
        offset = (round_no - 1) % len(stacks)
        order = stacks[offset:] + stacks[:offset]
        if round_no % 2 == 0:
            order = _swap_pairs(order)
        for name, mode, backend, _ in order:
            argv = [sys.executable, os.path.abspath(__file__),
                    '--measure', mode, '--backend', backend,
                    '--url', args.url,
                    '--calls', str(args.calls), '--warmup', str(args.warmup),
                    '--concurrency', str(args.concurrency),
                    '--conc-calls', str(args.conc_calls),
                    '--casts', str(args.casts), '--state-dir', state_dir,
                    '--scrape-interval', str(args.scrape_interval),
                    '--run-id', uuid.uuid4().hex[:8]]
            samples[name].append(_measure_once(argv, backend, name))
            print('round %d/%d: %s done' % (round_no, args.rounds, name),
                  file=sys.stderr, flush=True)
    results = report.medians(samples)
    warnings = {name: sum(r['pool_warnings'] for r in rounds)
                for name, rounds in samples.items()}
    report.print_table(results, warnings, args)
    checks = report.print_backend_ratio(samples, args)
    checks += report.print_metrics_overhead(samples, results, args)
    checks = report.oslo_checks(results, warnings) + checks
    paired = (args.paired_blocks > 0 and
              set(rpc_paired.MODES) <= set(args.stacks))
    for backend in args.backends if paired else ():
        blocks, scrapes = rpc_paired.run(args, backend, state_dir)
        checks += rpc_paired.report(args, backend, blocks, scrapes)
    if 'nova_lite_metrics' in args.stacks:
        report.print_pieces(results, {
            backend: json.loads(subprocess.run(
                [sys.executable, os.path.join(os.path.dirname(
                    os.path.abspath(__file__)), 'rpc_overhead.py')],
                stdout=subprocess.PIPE, text=True, check=True, timeout=600,
                env=backends.child_env(backend)).stdout)
            for backend in args.backends}, args)
    report.print_checks(checks)
    report.print_round_ratios(samples, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
