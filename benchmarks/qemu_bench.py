"""QEMU driver benchmark: block-job abort latency (event-driven against
polling only) and live migration time and downtime.

    bin/nova-lite-dev bench qemu       # or: python benchmarks/qemu_bench.py

Driver level, as the compute manager drives it: two "hosts" (a QemuDriver
each, with its own instances_path) in one process, every call through
``ThreadPoolDriver`` (native threads), QMP events handed to the waiter
through ``concurrency.HubQueue``.  Each backend runs in a child process of
its own (``--backends``).

1. Block-job abort of a running copy job (drive-mirror, throttled so it
   never finishes by itself), --aborts times each:
   - sync, event-driven: from the call until BLOCK_JOB_CANCELLED's end event
     (polling only as a fallback every 0.5 s).  Target: median <= 30 ms.
   - sync, polling only: ``block_job_info`` every 100 ms until the job is
     gone (libvirt's first implementation), shown beside it.
   - ASYNC: the call returning, and the end event.
2. Live migration of an idle instance between the two hosts, --migrations
   times (prepare_incoming + migrate over NBD + adopt): wall time, and
   QEMU's own total-time and downtime.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import backends  # benchmarks/, next to this file

TARGET_SYNC_MS = 30.0


def _host(name, state):
    from oslo_config import cfg

    from nova_lite import concurrency
    from nova_lite.testing import fixtures
    from nova_lite import virt
    from nova_lite.virt import tasks

    fixture = fixtures.ConfFixture(conf=cfg.ConfigOpts(), state_path=state,
                                   overrides={'compute': {'driver': 'qemu'},
                                              'qemu': {'instances_path':
                                                       os.path.join(state,
                                                                    name)}})
    fixture.setUp()
    host = {'driver': virt.load_driver(fixture.conf, name), 'ended': {},
            'events': tasks.TaskEvents(), 'fixture': fixture}

    def handle(event):
        if (event['type'] == 'block_job' and
                event['state'] in ('cancelled', 'completed')):
            ended = host['ended'].get((event['instance_uuid'],
                                       event['disk']))
            if ended is not None:
                ended.set()
        elif event['type'] == 'task':
            host['events'].done(event['task_id'])

    host['queue'] = concurrency.HubQueue(handle)
    host['driver'].register_event_callback(host['queue'].put)
    return host


def _wait(host, task_id):
    from nova_lite.virt import tasks
    return tasks.Task(host['driver'], task_id, 'bench', '-', host['events'],
                      30).wait()


def _ms(seconds):
    return [s * 1000.0 for s in seconds]


def _aborts(host, count):
    from nova_lite import concurrency

    driver = host['driver']
    driver.unwrapped.block_job_speed = 64 * 1024   # never ends by itself
    _wait(host, driver.spawn('abort-1'))
    results = {'sync, event-driven': [], 'sync, polling every 100 ms': [],
               'ASYNC: call returns': [], 'ASYNC: end event': []}
    try:
        for _ in range(count):
            driver.block_job_start('abort-1', 'vda', 'copy')
            ended = host['ended'][('abort-1', 'vda')] = concurrency.Event()
            start = time.monotonic()
            driver.block_job_abort('abort-1', 'vda')
            while not ended.wait(0.5):          # the fallback poll
                if driver.block_job_info('abort-1', 'vda') is None:
                    break
            results['sync, event-driven'].append(time.monotonic() - start)
        for _ in range(count):
            driver.block_job_start('abort-1', 'vda', 'copy')
            host['ended'].pop(('abort-1', 'vda'), None)
            start = time.monotonic()
            driver.block_job_abort('abort-1', 'vda')
            while driver.block_job_info('abort-1', 'vda') is not None:
                concurrency.sleep(0.1)
            results['sync, polling every 100 ms'].append(
                time.monotonic() - start)
        for _ in range(count):
            driver.block_job_start('abort-1', 'vda', 'copy')
            ended = host['ended'][('abort-1', 'vda')] = concurrency.Event()
            start = time.monotonic()
            driver.block_job_abort('abort-1', 'vda')
            results['ASYNC: call returns'].append(time.monotonic() - start)
            ended.wait(5)
            results['ASYNC: end event'].append(time.monotonic() - start)
    finally:
        _wait(host, driver.destroy('abort-1'))
    return {name: _ms(values) for name, values in results.items()}


def _migrations(source, dest, count):
    wall, total, down = [], [], []
    _wait(source, source['driver'].spawn('migrate-1'))
    for _ in range(count):
        start = time.monotonic()
        data = dest['driver'].prepare_incoming(
            'migrate-1', source['driver'].migration_source_data('migrate-1'))
        status = _wait(source, source['driver'].migrate('migrate-1', 'dest',
                                                        data))
        dest['driver'].adopt('migrate-1', 'running')
        wall.append((time.monotonic() - start) * 1000.0)
        total.append(status['stats']['total_time_ms'])
        down.append(status['stats']['downtime_ms'])
        source, dest = dest, source
    _wait(source, source['driver'].destroy('migrate-1'))
    return {'prepare + migrate + adopt (wall)': wall,
            'QEMU total-time': total, 'QEMU downtime': down}


def run_here(args):
    """Both cases on this process's backend; prints rows as JSON."""
    from nova_lite import monkey_patch  # noqa: F401
    import json

    state = tempfile.mkdtemp(prefix='nova_lite_qemu_bench_')
    first, second = _host('h1', state), _host('h2', state)
    result = {'aborts': _aborts(first, args.aborts),
              'migrations': _migrations(first, second, args.migrations)}
    print(json.dumps(result))
    return 0


def _row(name, values):
    return '  %-36s %10.1f %10.1f %10.1f' % (
        name, statistics.median(values), min(values), max(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--backends', type=backends.backend_list,
                        default=list(backends.BACKENDS),
                        help='Comma-separated (default: eventlet,threading).')
    parser.add_argument('--aborts', type=int, default=20)
    parser.add_argument('--migrations', type=int, default=10)
    parser.add_argument('--here', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.here:
        return run_here(args)

    import json

    checks = []
    print('QEMU driver benchmark (2-core machine, QEMU without KVM, '
          '-machine none)')
    for backend in args.backends:
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), '--here',
             '--aborts', str(args.aborts),
             '--migrations', str(args.migrations)],
            stdout=subprocess.PIPE, text=True, check=True, timeout=900,
            env=backends.child_env(backend)).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print('\n--- %s backend ---' % backend)
        print('  %-36s %10s %10s %10s' % ('1. block-job abort, ms', 'median',
                                          'min', 'max'))
        for name, values in result['aborts'].items():
            print(_row(name, values))
        print('  %-36s %10s %10s %10s' % ('2. live migration, ms', 'median',
                                          'min', 'max'))
        for name, values in result['migrations'].items():
            print(_row(name, values))
        sync = statistics.median(result['aborts']['sync, event-driven'])
        checks.append(('%s: event-driven sync abort median <= %.0f ms '
                       '(%.1f ms)' % (backend, TARGET_SYNC_MS, sync),
                       sync <= TARGET_SYNC_MS))
    print()
    for title, ok in checks:
        print('  [%s] %s' % ('met' if ok else 'MISSED', title))
    return 0


if __name__ == '__main__':
    sys.exit(main())
