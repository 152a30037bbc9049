"""Resize benchmark: what a resize costs the control plane, per
concurrency backend and per lock backend (tooz file:// and etcd).

    bin/nova-lite-dev bench resize      # or: python benchmarks/resize_bench.py

For each concurrency backend (``--backends``) and lock backend (file://
always; etcd when ``--etcd-url`` or ``NOVA_LITE_TEST_ETCD_URL`` names one)
two conductors, a scheduler, three computes (fake driver, operations of
``--operation-seconds``, 0 by default: only the control plane is timed)
and nova-lite-api run as daemons; this process (native threads) is the
client over HTTP and watches the database:

1. one resize at a time: from the POST to VERIFY_RESIZE (four conductor
   steps: scheduling with a claim, prep_resize, resize_instance,
   finish_resize, each a call and a work-step record, the whole run under
   the tooz locks of the server and its volume), then the confirm to
   ACTIVE;
2. 10 servers resized at once: resizes per second;
3. the locks alone: one workflow's acquire and release of a server's and
   one volume's lock, in this process.
"""

import argparse
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

# benchmarks/, next to this file.  api_bench, imported first, puts this
# process (the client side) on native threads before nova_lite is imported.
import api_bench  # noqa: E402
import backends  # noqa: E402

from nova_lite import coordination  # noqa: E402
from nova_lite.testing import waiters  # noqa: E402

SERVERS = 10
PLAN = (('nova-lite-conductor', 'ctl1'), ('nova-lite-conductor', 'ctl2'),
        ('nova-lite-scheduler', 'sch1'), ('nova-lite-compute', 'cpu1'),
        ('nova-lite-compute', 'cpu2'), ('nova-lite-compute', 'cpu3'),
        ('nova-lite-api', 'api1'))
FLAVORS = ('1', '2')     # m1.tiny <-> m1.small
POLL = 0.002


def _percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 *
                                                   (len(ordered) - 1))))]


class Deployment(api_bench.Deployment):
    """Two conductors, a scheduler, three roomy computes and the API."""

    def __init__(self, args, backend, lock_url):
        super().__init__(
            args, backend, plan=PLAN, overrides={
                'compute': {'vcpus': 64, 'memory_mb': 262144,
                            'disk_gb': 4096},
                'fake_driver': {'operation_seconds': args.operation_seconds},
                'coordination': {'backend_url': lock_url}})

    def servers(self, count):
        ids = []
        for n in range(count):
            resp = self.client.post('/v2.1/servers', {'server': {
                'name': 'bench%d' % n, 'imageRef': 'cirros',
                'flavorRef': FLAVORS[0]}})
            assert resp.status == 202, resp
            ids.append(resp.json['server']['id'])
        for server_id in ids:
            self.wait(server_id, 'active')
        # One volume each: the workflow locks it too.
        for server_id in ids:
            volume = self.client.post('/v2.1/os-volumes', {
                'volume': {'size': 1}})
            assert volume.status == 200, volume
            attached = self.client.post(
                '/v2.1/servers/%s/os-volume_attachments' % server_id,
                {'volumeAttachment': {'volumeId': volume.json['volume'][
                    'id']}})
            assert attached.status == 200, attached
        return ids

    def wait(self, server_id, vm_state):
        def done():
            instance = self.db.instance_get(server_id)
            if instance['task_state'] is None and \
                    instance['vm_state'] == vm_state:
                return instance
            assert instance['vm_state'] != 'error', instance
            return None
        return waiters.wait_for(done, timeout=120, interval=POLL,
                                what='%s to be %s' % (server_id, vm_state))

    def action(self, server_id, body, status):
        resp = self.client.post('/v2.1/servers/%s/action' % server_id, body)
        assert resp.status == status, resp
        return resp

    def resize(self, server_id):
        """POST resize (to the other flavor) -> VERIFY_RESIZE, and
        confirm -> ACTIVE: ms each."""
        now = self.db.instance_get(server_id)['flavorid']
        flavor = FLAVORS[1] if now == FLAVORS[0] else FLAVORS[0]
        started = time.perf_counter()
        self.action(server_id, {'resize': {'flavorRef': flavor}}, 202)
        resized = self.wait(server_id, 'resized')
        assert resized['flavorid'] == flavor, resized
        middle = time.perf_counter()
        self.action(server_id, {'confirmResize': None}, 204)
        self.wait(server_id, 'active')
        ended = time.perf_counter()
        return (middle - started) * 1000, (ended - middle) * 1000


def _sequential(env, server_id, count):
    resize_ms, confirm_ms = [], []
    for _ in range(count):
        resize, confirm = env.resize(server_id)
        resize_ms.append(resize)
        confirm_ms.append(confirm)
    return resize_ms, confirm_ms


def _concurrent(env, server_ids, rounds):
    """Every server resized (and confirmed) ``rounds`` times, all at
    once; resizes per second."""
    def worker(server_id):
        for _ in range(rounds):
            env.resize(server_id)
    threads = [threading.Thread(target=worker, args=(server_id,))
               for server_id in server_ids]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(server_ids) * rounds / (time.perf_counter() - started)


def _lock_cost(conf, count):
    """µs per acquire + release of one workflow's locks (a server and
    one volume), in this process."""
    coordinator = coordination.Coordinator(conf, 'bench-%d' % os.getpid())
    coordinator.start()
    names = coordination.lock_names('bench-server', ['bench-volume'])
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            with coordinator.locked(names, timeout=0):
                pass
            samples.append((time.perf_counter() - started) * 1e6)
    finally:
        coordinator.stop()
    return statistics.median(samples), _percentile(samples, 99)


def run(args, backend, lock_name, lock_url):
    env = Deployment(args, backend, lock_url)
    try:
        env.start()
        server_ids = env.servers(SERVERS)
        env.resize(server_ids[0])     # warm-up
        env.resize(server_ids[0])
        resize_ms, confirm_ms = _sequential(env, server_ids[0],
                                            args.resizes)
        rate = _concurrent(env, server_ids, args.rounds)
        lock_p50, lock_p99 = _lock_cost(env.conf, 200)
    finally:
        env.stop()
    return (backend, lock_name, statistics.median(resize_ms),
            _percentile(resize_ms, 99), statistics.median(confirm_ms),
            rate, lock_p50, lock_p99)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--url', default='rabbit://guest:guest@127.0.0.1:'
                        '5672/', help='Broker URL.')
    parser.add_argument('--backends', type=backends.backend_list,
                        default=list(backends.BACKENDS))
    parser.add_argument('--etcd-url',
                        default=os.environ.get('NOVA_LITE_TEST_ETCD_URL', ''),
                        help='tooz etcd3+http:// URL to compare with file:// '
                             '(default $NOVA_LITE_TEST_ETCD_URL; none: '
                             'file:// only).')
    parser.add_argument('--resizes', type=int, default=30,
                        help='Sequential resizes timed (default 30).')
    parser.add_argument('--rounds', type=int, default=3,
                        help='Resizes per server in the concurrent case '
                             '(default 3, %d servers).' % SERVERS)
    parser.add_argument('--operation-seconds', type=float, default=0.0,
                        help="The fake driver's operation time (default 0: "
                             'the control plane alone).')
    args = parser.parse_args()
    locks = [('file', '')]
    if args.etcd_url:
        locks.append(('etcd', args.etcd_url))
    print('Resize benchmark: 2 conductors, 3 computes (fake driver, '
          'operations %.2fs), nova-lite-api, SQLite, one RabbitMQ; %d '
          'sequential resizes, %d servers x %d concurrent' % (
              args.operation_seconds, args.resizes, SERVERS, args.rounds))
    header = '%-10s %-6s %14s %14s %14s %12s %12s %12s' % (
        'backend', 'locks', 'resize p50 ms', 'resize p99 ms',
        'confirm p50', 'resizes/s', 'lock p50 us', 'lock p99 us')
    print(header)
    print('-' * len(header))
    for backend in args.backends:
        for lock_name, lock_url in locks:
            print('%-10s %-6s %14.1f %14.1f %14.1f %12.2f %12.0f %12.0f' %
                  run(args, backend, lock_name, lock_url), flush=True)


if __name__ == '__main__':
    main()
