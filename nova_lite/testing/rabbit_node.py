"""A private RabbitMQ node on loopback, for tests that stop the broker.

The machine's own node (``rabbit@HOST``, port 5672) is shared by every
test of a run; a test that stops a broker (``stop_app``) or builds a
cluster gets nodes of its own instead::

    with RabbitNode() as node:
        url = node.url                  # a user and vhost of its own
        node.stop_app()                 # the AMQP listener goes away
        node.start_app()

Each node has its own ``RABBITMQ_NODENAME`` (``nl-test-<random>@localhost``),
AMQP and distribution ports (free ones, on 127.0.0.1), its data and logs
under a temporary directory, no plugins (so no management listener on
15672 to fight over) and the machine's Erlang cookie: the Debian scripts
run the node and ``rabbitmqctl`` as the ``rabbitmq`` user, whose cookie is
``/var/lib/rabbitmq/.erlang.cookie``, so nodes started this way can join
one cluster (``node.ctl('join_cluster', other.node)``; see
``rabbit_cluster.RabbitCluster``).  ``node.kill()`` ends its Erlang VM
with SIGKILL, as a crash would.  At cleanup the VM is stopped (SIGTERM,
then SIGKILL if it lingers; nothing to do after a kill) and its directory
removed.
"""

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from nova_lite import concurrency
from nova_lite.testing import fixtures as nl_fixtures

# The user the Debian package runs the server and its CLI as.
_RABBIT_USER = 'rabbitmq'


def free_port(host='127.0.0.1'):
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _check_reachable(path, uid):
    """Raise if user ``uid`` cannot get through a parent of ``path`` (a
    private directory such as pytest's tmp_path or a home): the node
    would fail to boot and ``await_startup`` wait in vain."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        info = os.stat(parent)
        if info.st_uid != uid and not info.st_mode & 0o001:
            raise nl_fixtures.BrokerUnavailable(
                reason='the %s user cannot enter %s (mode %o), a parent of '
                '%s: give the node a directory it can reach' % (
                    _RABBIT_USER, parent, info.st_mode & 0o777, path))
        if parent == os.path.dirname(parent):
            return
        parent = os.path.dirname(parent)


class RabbitNode(nl_fixtures.Fixture):
    """A RabbitMQ node of its own (see the module docstring).

    ``url`` (after setUp) is a transport_url for a fresh user and vhost on
    it; ``node`` its Erlang node name; ``port`` its AMQP port; ``pid`` its
    Erlang VM's pid.

    ``wait=False`` returns from setUp as soon as the VM is launched, with
    no user, vhost or ``url``: the caller then calls ``wait_started()``
    (and ``add_user()``), so that several nodes boot at once.  ``port``
    and ``dist_port`` may be given (the cluster picks distinct ones);
    ``base_dir`` too.  ``config`` is extra ``rabbitmq.conf`` text (such
    as ``default_user``, read at the node's first boot).
    """

    def __init__(self, prefix='nl-test', host='127.0.0.1',
                 start_timeout=120.0, wait=True, port=None, dist_port=None,
                 base_dir=None, config=''):
        super().__init__()
        self.node = '%s-%s@localhost' % (prefix, secrets.token_hex(4))
        self.host = host
        self.start_timeout = start_timeout
        self.wait = wait
        self.port = port
        self.dist_port = dist_port
        self.base_dir = base_dir
        self.config = config
        self.url = None
        self.vhost = 'nova_lite_test'
        self.user = 'nova_lite_test'
        self.password = 'pw-%s' % secrets.token_hex(8)
        self._pid = None

    def _setUp(self):
        if shutil.which('rabbitmq-server') is None:
            raise nl_fixtures.BrokerUnavailable(
                reason='rabbitmq-server is not installed')
        if self.base_dir is None:
            self.base_dir = tempfile.mkdtemp(prefix='nl-rabbit-')
        else:
            os.makedirs(self.base_dir)
        self.addCleanup(shutil.rmtree, self.base_dir, True)
        if self.port is None:
            self.port = free_port(self.host)
        if self.dist_port is None:
            self.dist_port = free_port(self.host)
        for name in ('mnesia', 'log'):
            os.mkdir(os.path.join(self.base_dir, name))
        for name, text in (('enabled_plugins', '[].\n'),
                           ('rabbitmq.conf', self.config),
                           ('advanced.config', '[].\n')):
            with open(os.path.join(self.base_dir, name), 'w') as handle:
                handle.write(text)
        self._give_to_rabbit_user()
        self._start()
        self.addCleanup(self.stop)
        if self.wait:
            self.wait_started()
            self.add_user()

    def add_user(self):
        """Create this node's vhost and user (with every permission) and
        set ``url``.  Users and vhosts are cluster-wide: in a cluster,
        call it on one node only."""
        self.ctl('add_vhost', self.vhost)
        self.ctl('add_user', self.user, self.password)
        self.ctl('set_permissions', '-p', self.vhost, self.user,
                 '.*', '.*', '.*')
        self.url = self.url_for(self.user, self.password)

    @classmethod
    def started_elsewhere(cls, node, port, pid, base_dir):
        """A node another process started (and left running), to
        ``stop()`` or ``kill()`` it."""
        self = cls(port=port, base_dir=base_dir)
        self.node = node
        self._pid = pid
        return self

    def url_for(self, user, password):
        """A transport_url of this node alone, for ``user`` in
        ``vhost``."""
        return 'rabbit://%s/%s' % (self.netloc(user, password), self.vhost)

    def netloc(self, user, password):
        """``user:password@host:port`` of this node."""
        return '%s:%s@%s:%d' % (user, password, self.host, self.port)

    def env(self):
        """The environment the node and its CLI calls run with."""
        base = self.base_dir
        env = dict(os.environ)
        env.update({
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': self.host,
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'RABBITMQ_MNESIA_BASE': os.path.join(base, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(base, 'log'),
            'RABBITMQ_PID_FILE': os.path.join(base, 'node.pid'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(
                base, 'enabled_plugins'),
            'RABBITMQ_CONFIG_FILE': os.path.join(base, 'rabbitmq.conf'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': os.path.join(
                base, 'advanced.config'),
            # Erlang distribution on loopback too.
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
        })
        return env

    def _give_to_rabbit_user(self):
        # The Debian scripts run the node as "rabbitmq" when started by
        # root: it must be able to write its directories.
        if os.getuid() != 0:
            return
        try:
            entry = pwd.getpwnam(_RABBIT_USER)
        except KeyError:
            return
        _check_reachable(self.base_dir, entry.pw_uid)
        for root, dirs, files in os.walk(self.base_dir):
            for name in [root] + [os.path.join(root, n) for n in
                                  dirs + files]:
                os.chown(name, entry.pw_uid, entry.pw_gid)

    def ctl(self, *args, timeout=60.0, check=True):
        """``rabbitmqctl -n NODE ARGS``; its stdout.  A failure raises
        ``BrokerUnavailable`` (with ``check``)."""
        argv = ['rabbitmqctl', '-q', '-n', self.node] + list(args)
        try:
            result = subprocess.run(argv, capture_output=True, text=True,
                                    timeout=timeout, env=self.env())
        except subprocess.TimeoutExpired:
            raise nl_fixtures.BrokerUnavailable(
                reason='rabbitmqctl -n %s %s timed out after %ss' % (
                    self.node, args[0], timeout))
        if check and result.returncode != 0:
            raise nl_fixtures.BrokerUnavailable(
                reason='rabbitmqctl -n %s %s failed: %s' % (
                    self.node, args[0],
                    (result.stderr or result.stdout).strip()[-300:]))
        return result.stdout if check else result

    def _start(self):
        result = subprocess.run(['rabbitmq-server', '-detached'],
                                capture_output=True, text=True, timeout=60,
                                env=self.env())
        if result.returncode != 0:
            raise nl_fixtures.BrokerUnavailable(
                reason='rabbitmq-server -detached for %s failed: %s' % (
                    self.node, (result.stderr or result.stdout).strip()))

    def wait_started(self):
        """Wait until the node runs RabbitMQ (``await_startup``)."""
        # -detached returns before the node registers with epmd, and
        # await_startup fails at once ("not running") until it has.
        deadline = time.monotonic() + self.start_timeout
        while True:
            result = self.ctl('await_startup', check=False,
                              timeout=self.start_timeout)
            if result.returncode == 0:
                return
            if time.monotonic() >= deadline:
                raise nl_fixtures.BrokerUnavailable(
                    reason='node %s did not start within %ss: %s (logs in '
                    '%s)' % (self.node, self.start_timeout,
                             (result.stderr or result.stdout).strip()[-300:],
                             os.path.join(self.base_dir, 'log')))
            concurrency.sleep(0.5)

    @property
    def pid(self):
        """The pid of the node's Erlang VM (``beam.smp``), from the pid
        file RabbitMQ writes as it boots; None before that."""
        if self._pid is None:
            try:
                with open(os.path.join(self.base_dir, 'node.pid')) as handle:
                    self._pid = int(handle.read().strip())
            except (OSError, ValueError):
                return None
        return self._pid

    def alive(self):
        """True while the node's Erlang VM runs."""
        pid = self.pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def kill(self, timeout=30.0):
        """kill -9 the node's Erlang VM (a crash: no goodbye to its
        peers or clients) and wait until it is gone."""
        pid = self.pid
        if pid is None:
            raise nl_fixtures.BrokerUnavailable(
                reason='node %s has no pid file to kill' % self.node)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self._wait_gone(timeout)

    def stop_app(self):
        """Stop RabbitMQ on the node (its Erlang VM runs on): every
        connection is closed and the AMQP port refuses new ones."""
        self.ctl('stop_app')

    def start_app(self):
        """Start RabbitMQ again after ``stop_app``."""
        self.ctl('start_app')

    def terminate(self):
        """Ask the VM to stop (SIGTERM: Erlang's ``init:stop()``) without
        waiting; ``stop()`` waits.  A cluster sends this to every node
        first so that they stop in parallel."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, timeout=30.0):
        """Stop the node and wait until its VM is gone: SIGTERM, then
        SIGKILL after ``timeout``.  Nothing to do after ``kill()``.
        (Signals rather than ``rabbitmqctl stop``: no CLI VM to boot, and
        it works when the node no longer answers.)"""
        if self.pid is None:
            # Killed before it wrote its pid file (or never started):
            # the CLI is the only way to find it.
            try:
                self.ctl('stop', check=False, timeout=timeout)
            except nl_fixtures.BrokerUnavailable:
                pass
            return
        self.terminate()
        try:
            self._wait_gone(timeout)
        except nl_fixtures.BrokerUnavailable:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            self._wait_gone(timeout)

    def _wait_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                raise nl_fixtures.BrokerUnavailable(
                    reason='node %s (pid %s) still runs after %ss' % (
                        self.node, self.pid, timeout))
            concurrency.sleep(0.05)
