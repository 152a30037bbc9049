"""nova-lite-api benchmark: requests per second, p50 and p99, per backend.

    bin/nova-lite-dev bench api           # or: python benchmarks/api_bench.py

For each concurrency backend (``--backends``) a conductor, a scheduler, two
computes (fake driver) and nova-lite-api run as daemons on that backend;
this process (native threads) is the client:

1. ``GET /v2.1/servers/detail`` with 100 servers, from 10 concurrent
   clients;
2. ``POST /v2.1/servers``, from 10 concurrent clients (202 once recorded
   and cast; the builds go on behind);
3. the same two done directly, without HTTP: the DB list the API makes
   (``instance_get_all``), and the DB record plus the conductor cast
   (``instance_create_with_work`` + ``ConductorRPCAPI.build_instance``),
   from 10 threads: the API's own cost is the difference.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import backends  # noqa: E402  (benchmarks/, next to this file)

# The client side runs native threads; set before nova_lite is imported.
os.environ.setdefault(backends.ENV_VAR, backends.THREADING)

from nova_lite import monkey_patch  # noqa: E402,F401  (first of nova_lite)
from nova_lite import config  # noqa: E402
from nova_lite.conductor import rpcapi as conductor_rpcapi  # noqa: E402
from nova_lite import context  # noqa: E402
from nova_lite.db import api as db_api  # noqa: E402
from nova_lite.db import migration  # noqa: E402
from nova_lite import process  # noqa: E402
from nova_lite import rpc  # noqa: E402
from nova_lite.testing import api  # noqa: E402
from nova_lite.testing import waiters  # noqa: E402

SERVERS = 100
CLIENTS = 10


def _percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 *
                                                   (len(ordered) - 1))))]


def measure(func, requests, clients):
    """Run ``func()`` ``requests`` times from ``clients`` threads;
    ``(requests/s, p50 ms, p99 ms)``."""
    latencies = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker():
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            func()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed * 1000)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return (len(latencies) / wall, statistics.median(latencies),
            _percentile(latencies, 99))


# (binary, host) of the daemons a deployment runs.
PLAN = (('nova-lite-conductor', 'ctl1'), ('nova-lite-scheduler', 'ctl1'),
        ('nova-lite-compute', 'cpu1'), ('nova-lite-compute', 'cpu2'),
        ('nova-lite-api', 'api1'))


class Deployment:
    """The daemons of ``plan`` on ``backend`` (``overrides``:
    ``{group: {option: value}}`` on top of the benchmark's config), one
    SQLite database, and an API client."""

    def __init__(self, args, backend, plan=PLAN, overrides=None):
        self.backend = backend
        self.plan = plan
        self.state = tempfile.mkdtemp(prefix='nova_lite_bench_')
        self.port = api.free_port()
        values = {
            'DEFAULT': {'state_path': self.state, 'report_interval': 5,
                        'service_down_time': 60, 'periodic_fuzzy_delay': 0,
                        'transport_url': args.url},
            'database': {'connection': 'sqlite:///%s/bench.sqlite' %
                                       self.state},
            'api': {'host': '127.0.0.1', 'port': self.port,
                    'auth_strategy': 'noauth2'},
            'fake_driver': {'operation_seconds': 0.05,
                            'call_latency_seconds': 0.001},
        }
        for group, options in (overrides or {}).items():
            values.setdefault(group, {}).update(options)
        self.conf_path = config.write_config_file(
            os.path.join(self.state, 'bench.conf'), values)
        self.conf = config.parse_args(['--config-file', self.conf_path],
                                      default_config_files=[])
        self.db = db_api.API(self.conf)
        migration.db_sync(self.db)
        self.daemons = []

    def start(self):
        for binary, host in self.plan:
            self.daemons.append(process.start_in(
                self.state, binary, host, [self.conf_path],
                env=backends.child_env(self.backend)))
        for daemon in self.daemons:
            waiters.wait_for_service(self.db, daemon.host, daemon.binary,
                                     timeout=120)
        self.client = api.APIClient('http://127.0.0.1:%d' % self.port)
        api.wait_for_api(self.client)

    def stop(self):
        process.stop_all(self.daemons)
        self.db.dispose()


def _seed(db, count):
    for n in range(count):
        db.instance_create(str(uuid.uuid4()), host='cpu1', vm_state='active')
    # Owned by the project the benchmark lists as.
    for instance in db.instance_get_all():
        db.instance_update(instance['uuid'], project_id='admin',
                           user_id='admin', display_name='seed',
                           image_ref='cirros', flavorid='1')


def run_backend(args, backend):
    env = Deployment(args, backend)
    rows = []
    try:
        env.start()
        _seed(env.db, SERVERS)
        client = env.client

        def get_detail():
            resp = client.get('/v2.1/servers/detail')
            assert resp.status == 200, resp
        body = {'server': {'name': 'bench', 'imageRef': 'cirros',
                           'flavorRef': '1'}}

        def post_server():
            resp = client.post('/v2.1/servers', body)
            assert resp.status == 202, resp
        measure(get_detail, 20, CLIENTS)          # warm-up
        rows.append(('GET /servers/detail (100)', 'HTTP API',
                     measure(get_detail, args.requests, CLIENTS)))
        rows.append(('GET /servers/detail (100)', 'direct DB',
                     measure(lambda: env.db.instance_get_all(
                         project_id='admin', deleted=False),
                         args.requests, CLIENTS)))
        rpc.init(env.conf)
        conductor = conductor_rpcapi.ConductorRPCAPI(env.conf, db=env.db)
        ctxt = context.get_admin_context()

        def build_direct():
            instance_uuid = str(uuid.uuid4())
            work = env.db.instance_create_with_work(
                instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
                task_state='scheduling', project_id='admin',
                user_id='admin', display_name='bench', image_ref='cirros',
                flavorid='1', flavor_name='m1.tiny', vcpus=1, memory_mb=512,
                root_gb=1)
            conductor.build_instance(ctxt, instance_uuid, work_id=work['id'])
        rows.append(('POST /servers', 'HTTP API',
                     measure(post_server, args.requests, CLIENTS)))
        rows.append(('POST /servers', 'direct DB+cast',
                     measure(build_direct, args.requests, CLIENTS)))
    finally:
        rpc.cleanup()
        env.stop()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', default='rabbit://guest:guest@127.0.0.1:'
                        '5672/', help='Broker URL.')
    parser.add_argument('--backends', type=backends.backend_list,
                        default=list(backends.BACKENDS))
    parser.add_argument('--requests', type=int, default=300,
                        help='Requests per case (default 300).')
    args = parser.parse_args()
    print('API benchmark: %d clients, %d requests per case, %d servers '
          'listed; daemons on each backend, one RabbitMQ, SQLite' % (
              CLIENTS, args.requests, SERVERS))
    header = '%-10s %-27s %-15s %10s %10s %10s' % (
        'backend', 'operation', 'via', 'req/s', 'p50 ms', 'p99 ms')
    print(header)
    print('-' * len(header))
    for backend in args.backends:
        for operation, via, (rate, p50, p99) in run_backend(args, backend):
            print('%-10s %-27s %-15s %10.1f %10.2f %10.2f' % (
                backend, operation, via, rate, p50, p99), flush=True)


if __name__ == '__main__':
    main()
