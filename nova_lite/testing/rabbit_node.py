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
one cluster (``node.ctl('join_cluster', other.node)``).  The node is
stopped (``rabbitmqctl -n NODE stop``) and its directory removed at
cleanup.
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


class RabbitNode(nl_fixtures.Fixture):
    """A RabbitMQ node of its own (see the module docstring).

    ``url`` (after setUp) is a transport_url for a fresh user and vhost on
    it; ``node`` its Erlang node name; ``port`` its AMQP port.
    """

    def __init__(self, prefix='nl-test', host='127.0.0.1',
                 start_timeout=120.0):
        super().__init__()
        self.node = '%s-%s@localhost' % (prefix, secrets.token_hex(4))
        self.host = host
        self.start_timeout = start_timeout
        self.port = None
        self.dist_port = None
        self.base_dir = None
        self.url = None
        self.vhost = 'nova_lite_test'
        self.user = 'nova_lite_test'
        self.password = 'pw-%s' % secrets.token_hex(8)

    def _setUp(self):
        if shutil.which('rabbitmq-server') is None:
            raise nl_fixtures.BrokerUnavailable(
                reason='rabbitmq-server is not installed')
        self.base_dir = tempfile.mkdtemp(prefix='nl-rabbit-')
        self.addCleanup(shutil.rmtree, self.base_dir, True)
        self.port = free_port(self.host)
        self.dist_port = free_port(self.host)
        for name in ('mnesia', 'log'):
            os.mkdir(os.path.join(self.base_dir, name))
        for name, text in (('enabled_plugins', '[].\n'),
                           ('rabbitmq.conf', ''),
                           ('advanced.config', '[].\n')):
            with open(os.path.join(self.base_dir, name), 'w') as handle:
                handle.write(text)
        self._give_to_rabbit_user()
        self._start()
        self.addCleanup(self._stop)
        self._wait_started()
        self.ctl('add_vhost', self.vhost)
        self.ctl('add_user', self.user, self.password)
        self.ctl('set_permissions', '-p', self.vhost, self.user,
                 '.*', '.*', '.*')
        self.url = 'rabbit://%s:%s@%s:%d/%s' % (
            self.user, self.password, self.host, self.port, self.vhost)

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

    def _wait_started(self):
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

    def stop_app(self):
        """Stop RabbitMQ on the node (its Erlang VM runs on): every
        connection is closed and the AMQP port refuses new ones."""
        self.ctl('stop_app')

    def start_app(self):
        """Start RabbitMQ again after ``stop_app``."""
        self.ctl('start_app')

    def _stop(self):
        try:
            if self.ctl('stop', check=False, timeout=60).returncode == 0:
                return
        except nl_fixtures.BrokerUnavailable:
            pass
        # The CLI could not reach it: end the VM through its pid file.
        try:
            with open(os.path.join(self.base_dir, 'node.pid')) as handle:
                os.kill(int(handle.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
