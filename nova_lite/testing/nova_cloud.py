"""A real Nova 34 on loopback, for tests that measure a real cloud.

    with NovaCloud() as cloud:
        cloud.transport_url            # its own vhost on the local broker
        cloud.api_database_connection  # sqlite:///.../nova_api.sqlite
        cloud.api_url                  # http://127.0.0.1:P/v2.1
        cloud.processes['nova-compute'].signal(signal.SIGKILL)

What runs: nova-conductor, nova-scheduler and nova-compute (the fake
driver) as processes of a venv of their own (``nova_venv``), nova-api and
placement under gunicorn, all on SQLite in a temporary state directory and
on a fresh RabbitMQ vhost.  No systemd, no Keystone: nova-api has a test-only
identity filter in place of ``authtoken`` and placement runs ``noauth2``.

From a shell:  python -m nova_lite.testing.nova_cloud up --state-dir D
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import sqlalchemy as sa

from nova_lite import exception
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import nova_files
from nova_lite.testing import nova_process
from nova_lite.testing import nova_venv
from nova_lite import utils

SERVICES = ('nova-conductor', 'nova-scheduler', 'nova-compute')
TOPICS = {'nova-conductor': 'conductor', 'nova-scheduler': 'scheduler',
          'nova-compute': 'compute'}
CELL1 = 'cell1'


class NovaCloudError(exception.NovaLiteException):
    msg_fmt = 'The test Nova cloud did not come up: %(reason)s'


class NovaCloud:
    """A Nova 34 on loopback: ``start()``/``stop()`` or a context manager.

    After ``start()``:
      ``host`` (of every service), ``state_dir``, ``venv`` (``NovaVenv``),
      ``vhost``, ``transport_url``, ``control_exchange`` ('nova'),
      ``api_database_connection``, ``cell_database_connections``
      (``{'cell0': url, 'cell1': url}``), ``placement_url``, ``api_url``
      (``http://127.0.0.1:P/v2.1``), ``clouds_yaml`` and ``cloud_name``
      (an openstacksdk entry that needs no Keystone), ``nova_conf``,
      ``processes`` (``{name: NovaProcess}`` for nova-conductor,
      nova-scheduler, nova-compute, nova-api, placement-api) and ``pids``.

    ``conf_overrides`` (``{group: {option: value}}``) go into nova.conf,
    e.g. ``{'DEFAULT': {'report_interval': 2}}``.  ``timeout`` bounds the
    wait for each step; a step that does not happen raises
    ``NovaCloudError`` naming it, with the tail of its log.
    """

    def __init__(self, state_dir=None, host='novahost', venv_path=None,
                 conf_overrides=None, timeout=180, rabbit_host='127.0.0.1',
                 rabbit_port=5672):
        self.host = host
        self.state_dir = state_dir
        self.venv_path = venv_path
        self.conf_overrides = conf_overrides or {}
        self.timeout = timeout
        self.control_exchange = 'nova'
        self.cloud_name = nova_files.CLOUD_NAME
        self.processes = {}
        self._argv = {}
        self.timings = {}
        self._rabbit = nl_fixtures.RabbitVhost(host=rabbit_host,
                                               port=rabbit_port)
        self._own_state_dir = state_dir is None
        self._rabbit_up = False

    # -- life cycle -------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.timings['start'] = time.monotonic() - started
        return self

    def stop(self):
        """Stop every process, delete the vhost, and the state directory
        when the cloud made it."""
        # SIGTERM to all first: their shutdowns overlap.
        for process in self.processes.values():
            process.terminate()
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            process.stop(timeout=max(0.1, deadline - time.monotonic()))
        if self._rabbit_up:
            self._rabbit.cleanUp()
            self._rabbit_up = False
        if self._own_state_dir and self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @property
    def pids(self):
        return {name: process.pid for name, process in self.processes.items()}

    def _start(self):
        step = time.monotonic()
        self.venv = nova_venv.ensure(self.venv_path)
        self.timings['venv'] = time.monotonic() - step
        if self.state_dir is None:
            self.state_dir = tempfile.mkdtemp(prefix='nova-cloud-')
        os.makedirs(os.path.join(self.state_dir, 'lock'), exist_ok=True)
        self._rabbit.setUp()
        self._rabbit_up = True
        self.vhost = self._rabbit.name
        self.transport_url = self._rabbit.url

        state = self.state_dir
        placement_port, api_port = _free_ports(2)
        self.placement_url = 'http://127.0.0.1:%d' % placement_port
        self.api_url = 'http://127.0.0.1:%d/v2.1' % api_port
        self.api_database_connection = nova_files.sqlite_url(state, 'nova_api')
        self.cell_database_connections = {
            'cell0': nova_files.sqlite_url(state, 'nova_cell0'),
            CELL1: nova_files.sqlite_url(state, 'nova_cell1')}
        self.nova_conf = nova_files.write_nova_conf(
            state, self.host, self.transport_url, self.placement_url,
            self.conf_overrides)
        self.placement_conf = nova_files.write_placement_conf(state)
        nova_files.write_api_paste(
            state, os.path.join(self.venv.path, 'etc', 'nova',
                                'api-paste.ini'))
        self.clouds_yaml = nova_files.write_clouds_yaml(
            state, self.api_url, self.placement_url)

        step = time.monotonic()
        placement_sync = self._spawn('placement-manage-db-sync', [
            self.venv.bin('placement-manage'), '--config-file',
            self.placement_conf, 'db', 'sync'])
        self._sync_nova()
        self._finished(placement_sync)
        self.timings['db_sync'] = time.monotonic() - step

        step = time.monotonic()
        self._start_wsgi('placement-api', 'placement.wsgi.api:application',
                         placement_port, {'OS_PLACEMENT_CONFIG_DIR': state})
        for binary in SERVICES:
            self._start_process(binary, [self.venv.bin(binary),
                                         '--config-file', self.nova_conf])
        self._start_wsgi('nova-api', nova_files.WSGI_MODULE + ':application',
                         api_port, {'OS_NOVA_CONFIG_DIR': state,
                                    'PYTHONPATH': state})
        self._wait_services()
        self.timings['services'] = time.monotonic() - step

    # -- steps ------------------------------------------------------------

    def _sync_nova(self):
        manage = [self.venv.bin('nova-manage'), '--config-file',
                  self.nova_conf]
        self._finished(self._spawn('nova-manage-api_db-sync',
                                   manage + ['api_db', 'sync']))
        self._finished(self._spawn('nova-manage-map_cell0', manage + [
            'cell_v2', 'map_cell0', '--database_connection',
            self.cell_database_connections['cell0']]))
        self._finished(self._spawn('nova-manage-create_cell', manage + [
            'cell_v2', 'create_cell', '--name', CELL1, '--verbose']))
        self._finished(self._spawn('nova-manage-db-sync',
                                   manage + ['db', 'sync']))

    def _env(self, extra=None):
        env = dict(os.environ)
        # Our own venv's variables must not leak into Nova's interpreter.
        for name in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME'):
            env.pop(name, None)
        env['PATH'] = os.pathsep.join([os.path.join(self.venv.path, 'bin'),
                                       env.get('PATH', '')])
        env.update(extra or {})
        return env

    def _spawn(self, name, argv, extra_env=None):
        log = os.path.join(self.state_dir, name + '.log')
        return nova_process.NovaProcess(name, argv, log,
                                        self._env(extra_env))

    def _finished(self, process):
        """Wait for a one-shot command; NovaCloudError if it failed."""
        try:
            code = process.popen.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            process.stop()
            raise NovaCloudError(reason='%s did not finish in %ds: %s' % (
                process.name, self.timeout, _one_line(process.log_tail())))
        process.stop()
        if code != 0:
            raise NovaCloudError(reason='%s exited %s: %s' % (
                process.name, code, _one_line(process.log_tail(5))))

    def _start_process(self, name, argv, extra_env=None):
        self.processes[name] = self._spawn(name, argv, extra_env)
        self._argv[name] = (argv, extra_env)
        return self.processes[name]

    def restart(self, name):
        """Stop process ``name`` (whatever state a test left it in: killed,
        stopped) and start it again with the same command, its log
        appended; returns the new NovaProcess.  Waits for nothing: a test
        waits for what it needs (``wait_for_queue_consumers``)."""
        self.processes[name].stop()
        if name == 'nova-compute':
            self._write_compute_id()
        argv, extra_env = self._argv[name]
        return self._start_process(name, argv, extra_env)

    def _write_compute_id(self):
        """The fake driver never writes the node identity file that
        nova-compute wants from its second start on ("No local node
        identity found ... Refusing to start"): write it from the
        compute node row its first start made."""
        path = os.path.join(self.state_dir, 'compute_id')
        if os.path.exists(path):
            return
        engine = sa.create_engine(self.cell_database_connections[CELL1],
                                  poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                uuids = connection.execute(sa.text(
                    'SELECT uuid FROM compute_nodes WHERE host = :host AND '
                    'deleted = 0'), {'host': self.host}).scalars().all()
        finally:
            engine.dispose()
        if len(uuids) == 1:
            with open(path, 'w') as handle:
                handle.write(uuids[0])

    def wait_for_queue_consumers(self, binary, timeout=None):
        """Wait until the queue ``TOPIC.host`` of ``binary`` has a
        consumer (after a ``restart``)."""
        queue = '%s.%s' % (TOPICS[binary], self.host)
        self._wait('a consumer on queue %s' % queue,
                   lambda: self.queue_consumers(queue), (binary,),
                   timeout=timeout)

    def _start_wsgi(self, name, app, port, extra_env):
        return self._start_process(name, [
            self.venv.bin('gunicorn'), '--workers', '1', '--threads', '4',
            '--bind', '127.0.0.1:%d' % port, '--timeout', '120',
            '--chdir', self.state_dir, '--no-control-socket',
            '--access-logfile', '-', app],
            extra_env)

    def _wait_services(self):
        """Every service's row in cell1, its queue consumed, and
        os-services answering with all of them."""
        engine = sa.create_engine(self.cell_database_connections[CELL1],
                                  poolclass=sa.pool.NullPool)
        try:
            self._wait('the rows of %s in the cell1 database' %
                       ', '.join(SERVICES),
                       lambda: set(SERVICES) <= {
                           row['binary'] for row in _service_rows(engine)},
                       SERVICES)
        finally:
            engine.dispose()
        queues = ['%s.%s' % (TOPICS[binary], self.host)
                  for binary in SERVICES]
        self._wait('consumers on the queues %s' % ', '.join(queues),
                   lambda: all(self.queue_consumers(q) for q in queues),
                   SERVICES)
        self._wait('GET %s/os-services to list %s' % (
            self.api_url, ', '.join(SERVICES)),
            lambda: set(SERVICES) <= {
                service['binary'] for service in self.api_get(
                    '/os-services')['services']},
            ('nova-api', 'placement-api'))

    def _wait(self, what, predicate, watched, timeout=None):
        """Wait for ``predicate``; a process in ``watched`` that exits, or
        the timeout, raises NovaCloudError with its log's tail."""
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        last_error = None
        while True:
            for name in watched:
                process = self.processes[name]
                if not process.alive():
                    raise NovaCloudError(reason='%s exited %s while waiting '
                                         'for %s; its log (%s) ends: %s' % (
                                             name, process.popen.returncode,
                                             what, process.log_path,
                                             _one_line(process.log_tail(8))))
            try:
                if predicate():
                    return
            except Exception as exc:  # not yet: a table, a port, a queue
                last_error = exc
            if time.monotonic() >= deadline:
                logs = '; '.join('%s: %s' % (
                    name, _one_line(self.processes[name].log_tail(3)))
                    for name in watched)
                raise NovaCloudError(reason='timed out after %ds waiting for '
                                     '%s (last error: %s); logs end: %s' % (
                                         timeout, what,
                                         _one_line(str(last_error)), logs))
            time.sleep(0.25)

    # -- what tests ask ---------------------------------------------------

    def api_get(self, path, timeout=10):
        """``GET api_url + path`` as the test admin; the decoded JSON."""
        request = urllib.request.Request(
            self.api_url + path,
            headers={'Accept': 'application/json',
                     'X-Auth-Token': nova_files.USER})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)

    def service_rows(self, cell=CELL1):
        """The ``services`` rows of a cell database, as dicts."""
        engine = sa.create_engine(self.cell_database_connections[cell],
                                  poolclass=sa.pool.NullPool)
        try:
            return _service_rows(engine)
        finally:
            engine.dispose()

    def queue_consumers(self, queue):
        """The consumer count of ``queue`` in the cloud's vhost (None when
        the queue does not exist)."""
        out = subprocess.run(
            ['rabbitmqctl', '-q', 'list_queues', '-p', self.vhost, 'name',
             'consumers'], capture_output=True, text=True, timeout=60,
            check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        return None

    def rss_bytes(self):
        """Resident memory of the whole cloud, ``{name: bytes}``."""
        return {name: process.rss_bytes()
                for name, process in self.processes.items()}

    def describe(self):
        """The addresses, passwords masked, as a dict."""
        return {
            'host': self.host, 'state_dir': self.state_dir,
            'venv': self.venv.path, 'vhost': self.vhost,
            'transport_url': utils.mask_url(self.transport_url),
            'control_exchange': self.control_exchange,
            'api_database_connection': self.api_database_connection,
            'cell_database_connections': self.cell_database_connections,
            'placement_url': self.placement_url, 'api_url': self.api_url,
            'clouds_yaml': self.clouds_yaml, 'cloud_name': self.cloud_name,
            'nova_conf': self.nova_conf, 'pids': self.pids,
            'timings': {k: round(v, 1) for k, v in self.timings.items()},
            'rss_mb': round(sum(self.rss_bytes().values()) / 2 ** 20),
        }


def _service_rows(engine):
    with engine.connect() as connection:
        result = connection.execute(sa.text(
            'SELECT id, host, "binary", topic, report_count, disabled, '
            'updated_at, created_at, forced_down, version FROM services '
            'WHERE deleted = 0'))
        return [dict(row._mapping) for row in result]


def _free_ports(count):
    """``count`` distinct free loopback ports (bound together, then
    released: a process of the cloud takes each soon after)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(('127.0.0.1', 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _one_line(text, limit=600):
    text = ' | '.join(line.strip() for line in text.splitlines()
                      if line.strip())
    return text[-limit:]


def main(argv=None):
    """``up --state-dir D``: start a cloud, print its addresses, and keep it
    until Ctrl-C or ``down --state-dir D``."""
    parser = argparse.ArgumentParser(prog='python -m %s' % __name__)
    parser.add_argument('command', choices=('up', 'down'))
    parser.add_argument('--state-dir', required=True)
    parser.add_argument('--host', default='novahost')
    args = parser.parse_args(argv)
    pid_file = os.path.join(args.state_dir, 'nova-cloud.pid')
    if args.command == 'down':
        try:
            with open(pid_file) as handle:
                os.kill(int(handle.read()), signal.SIGTERM)
        except (OSError, ValueError) as exc:
            print('no cloud running in %s: %s' % (args.state_dir, exc))
            return 1
        return 0
    os.makedirs(args.state_dir, exist_ok=True)
    cloud = NovaCloud(state_dir=os.path.abspath(args.state_dir),
                      host=args.host)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(pid_file, 'w') as handle:
        handle.write(str(os.getpid()))
    try:
        cloud.start()
        print(json.dumps(cloud.describe(), indent=2), flush=True)
        signal.pause()
    except (KeyboardInterrupt, SystemExit):
        pass
    except exception.NovaLiteException as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        cloud.stop()
        if os.path.exists(pid_file):
            os.unlink(pid_file)
    return 0


if __name__ == '__main__':
    sys.exit(main())
