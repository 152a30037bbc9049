"""Simulated services: many cheap probe targets in a few processes.

Process INDEX serves ``count`` services of topic ``PREFIXINDEX`` (``sim0``,
``sim1``, ...; binary ``nova-lite-sim``), each on its own host
``PREFIX-INDEX-NNN``, each a real
RPC server on the broker with its own heartbeat in the services table, and
nothing else (the base ``Manager``): what an inflight probe sees of a
compute, at a fraction of its cost.  The inflight benchmark and the ring's
functional test probe them.  Their rpc:self health round trips run once an
hour (``[metrics] health_interval``), not every 10 s: a hundred services in
one process would otherwise make a hundred calls of their own every
interval, and the broker should carry the probes.  A topic per process,
not one for all: every service also consumes its topic's shared queue, and
two thousand consumers declaring one queue at once time out on a busy
broker.

    python -m nova_lite.testing.simulated --config-file PATH --index 0 \\
        --count 100 [--prefix sim]
"""

import argparse
import os
import subprocess
import sys

BINARY = 'nova-lite-sim'
HEALTH_INTERVAL = 3600.0


def host_name(prefix, index, number):
    return '%s-%d-%03d' % (prefix, index, number)


def topic_name(prefix, index):
    return '%s%d' % (prefix, index)


def serve(config_files, index, count, prefix='sim'):
    """Run ``count`` services in this process until SIGTERM."""
    from nova_lite import monkey_patch  # noqa: F401
    from nova_lite import config
    from nova_lite.db import api as db_api
    from nova_lite import manager
    from nova_lite import rpc
    from nova_lite import service

    argv = []
    for path in config_files:
        argv += ['--config-file', path]
    conf = config.parse_args(argv, default_config_files=[])
    conf.set_override('health_interval', HEALTH_INTERVAL, group='metrics')
    config.setup_logging(conf)
    rpc.init(conf)
    db = db_api.API(conf)
    services = [service.Service(conf, binary=BINARY,
                                topic=topic_name(prefix, index),
                                manager=manager.Manager,
                                host=host_name(prefix, index, n), db=db)
                for n in range(count)]
    return service.serve(services)


class SimulatedServices:
    """``total`` simulated services in processes of at most ``per_process``
    each, started at once; ``stop()`` ends them (SIGTERM, then SIGKILL).

    ``config_files`` are the daemons' config files (transport_url,
    database); each process logs to ``log_dir/PREFIX-INDEX.log``.
    ``services`` lists (topic, host) of every one.  ``started``, if given,
    is called with the (topic, host) list of each process once it is
    started, before the next one starts (to wait until they registered:
    thousands of registrations at once lock SQLite out).
    """

    def __init__(self, config_files, total, log_dir, per_process=100,
                 prefix='sim', env=None, started=None):
        self.services = []
        self.procs = []
        try:
            self._start(config_files, total, log_dir, per_process, prefix,
                        env, started)
        except BaseException:
            self.stop()
            raise

    def _start(self, config_files, total, log_dir, per_process, prefix, env,
               started):
        index = 0
        left = total
        while left > 0:
            count = min(per_process, left)
            log = open(os.path.join(log_dir, '%s-%d.log' % (prefix, index)),
                       'ab')
            argv = [sys.executable, '-m', __name__, '--index', str(index),
                    '--count', str(count), '--prefix', prefix]
            for path in config_files:
                argv += ['--config-file', path]
            try:
                self.procs.append(subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=env,
                    start_new_session=True))
            finally:
                log.close()
            batch = [(topic_name(prefix, index), host_name(prefix, index, n))
                     for n in range(count)]
            self.services += batch
            if started is not None:
                started(batch)
            left -= count
            index += 1

    @property
    def pids(self):
        return [proc.pid for proc in self.procs]

    def stop(self, timeout=30):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config-file', action='append', required=True)
    parser.add_argument('--index', type=int, required=True)
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--prefix', default='sim')
    args = parser.parse_args(argv)
    return 0 if serve(args.config_file, args.index, args.count,
                      args.prefix) else 1


if __name__ == '__main__':
    sys.exit(main())
