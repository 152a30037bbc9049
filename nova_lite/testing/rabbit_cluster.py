"""A RabbitMQ cluster on loopback, for tests and the dev deploy.

``RabbitCluster(size=3)`` starts ``size`` ``rabbit_node.RabbitNode`` s at
once (each with its own ``RABBITMQ_NODENAME``, AMQP and distribution
ports, data and log dirs, and the machine's Erlang cookie), joins nodes
2..N to node 1 (``stop_app``, then one at a time ``join_cluster`` and
``start_app``), waits until ``cluster_status`` shows every node running.  Node 1 creates the
one user and vhost (cluster-wide) from its ``rabbitmq.conf`` as it first
boots::

    from nova_lite.testing import rabbit_cluster

    with rabbit_cluster.RabbitCluster(size=3) as cluster:
        conf.set_override('transport_url', cluster.url)
        # rabbit://u:p@127.0.0.1:P1,u:p@127.0.0.1:P2,u:p@127.0.0.1:P3/vhost
        conf.set_override('rabbit_quorum_queue', True,
                          group='oslo_messaging_rabbit')
        ...
        cluster.declare_quorum_queues(['compute'])  # led by node 1
        node = cluster.leader_of('compute')     # a RabbitNode
        node.kill()                             # kill -9 of its beam VM
        cluster.wait_running(2)
        cluster.list_queues('name', 'type', 'leader', 'messages')
        # -> [{'name': 'compute', 'type': 'quorum', ...}, ...]

(``self.useFixture(RabbitCluster())`` in a testtools test, or a pytest
fixture that enters it.)  ``nodes`` are the ``RabbitNode`` s (``node``
name, ``port``, ``pid``, ``kill()``, ``alive()``, ``ctl(...)``);
``ctl(...)`` runs ``rabbitmqctl`` against the first node still alive.
Cleanup stops every node at once (SIGTERM, then SIGKILL) and removes
their directories, killed nodes included.

Time on the 2-core dev machine (RabbitMQ 3.10.8), with other test runs
loading it (load average 9-36): 24-74 s to start 3 nodes, most of it
the nodes' boot and ``rabbitmqctl`` calls (each boots a VM of its own;
they run side by side where they can), and 2-5 s to stop them (see
``start_seconds``/``stop_seconds``).  One node alone: about 10 s.

From the shell (``bin/nova-lite-dev deploy --rabbit-cluster 3`` does
this)::

    python -m nova_lite.testing.rabbit_cluster start --size 3 --state-dir DIR
    python -m nova_lite.testing.rabbit_cluster stop --state-dir DIR

``start`` leaves the nodes running, writes the transport_url to
``DIR/transport_url`` (it holds the password, so it is printed masked)
and what ``stop`` needs to ``DIR/cluster.json``.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time

import kombu

from nova_lite import concurrency
from nova_lite import utils
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import rabbit_node

STATE_FILE = 'cluster.json'
URL_FILE = 'transport_url'
NODES_DIR = 'nodes'

# A classic queue's pid looks like <rabbit@host.1.2.3>: the node is the
# part before the last three dotted numbers.
_PID_NODE = re.compile(r'^<(.+)\.\d+\.\d+\.\d+>$')


class RabbitCluster(nl_fixtures.Fixture):
    """``size`` RabbitMQ nodes joined into one cluster on loopback (see the
    module docstring).

    After setUp: ``url`` (a multi-host transport_url, one host per node),
    ``nodes`` (``RabbitNode`` s, node 1 first), ``vhost``, ``user``,
    ``base_dir``, ``start_seconds``.
    """

    def __init__(self, size=3, base_dir=None, host='127.0.0.1',
                 start_timeout=120.0, stop_timeout=15.0):
        super().__init__()
        if size < 1:
            raise ValueError('a cluster has at least one node')
        self.size = size
        self.host = host
        self.base_dir = base_dir
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.name = 'nl-c%s' % secrets.token_hex(3)
        self.nodes = []
        self.url = None
        self.vhost = 'nova_lite'
        self.user = 'nova_lite'
        self.password = 'pw-%s' % secrets.token_hex(8)
        self.start_seconds = None
        self.stop_seconds = None

    def _setUp(self):
        started = time.monotonic()
        if self.base_dir is None:
            self.base_dir = tempfile.mkdtemp(prefix='nl-rabbit-cluster-')
            self.addCleanup(shutil.rmtree, self.base_dir, True)
        else:
            os.makedirs(self.base_dir, exist_ok=True)
        # The nodes run as the "rabbitmq" user: it must get through.
        os.chmod(self.base_dir, 0o755)
        ports = _distinct_ports(2 * self.size, self.host)
        for index in range(self.size):
            node = rabbit_node.RabbitNode(
                prefix='%s-n%d' % (self.name, index + 1), host=self.host,
                start_timeout=self.start_timeout, wait=False,
                port=ports[2 * index], dist_port=ports[2 * index + 1],
                base_dir=os.path.join(self.base_dir, 'node%d' % (index + 1)),
                # Node 1 creates the user and vhost as it first boots
                # (the others' are wiped by join_cluster): three
                # rabbitmqctl calls saved, at seconds each on a busy box.
                config=self._default_user_config() if index == 0 else '')
            node.vhost = self.vhost
            self.useFixture(node)
            self.nodes.append(node)
        # Runs before the nodes' own cleanups (which then only wait):
        # every node is told to stop at once.
        self.addCleanup(self._stop_all)
        # Each rabbitmqctl call boots a VM of its own (seconds on a loaded
        # machine): the nodes wait, and then join, side by side.
        self._on_each(self.nodes, lambda node: node.wait_started())
        first = self.nodes[0]
        joining = self.nodes[1:]
        self._on_each(joining, lambda node: node.stop_app())
        # One at a time, as RabbitMQ's clustering guide does: two nodes
        # joining and starting side by side race on the cluster's schema
        # (mnesia failed to start on one of them, once in a CI run).
        for node in joining:
            self._join(node, first)
        self.wait_running(self.size)
        self.url = 'rabbit://%s/%s' % (
            ','.join(node.netloc(self.user, self.password)
                     for node in self.nodes), self.vhost)
        self.start_seconds = time.monotonic() - started

    @staticmethod
    def _join(node, first):
        """``join_cluster`` then ``start_app``; a start that fails is
        tried once more from a reset node (it has no data of its own)."""
        try:
            node.ctl('join_cluster', first.node)
            node.start_app()
        except nl_fixtures.BrokerUnavailable as exc:
            sys.stderr.write('%s did not join (%s); resetting it and '
                             'joining again\n' % (node.node, exc))
            node.ctl('stop_app', check=False)
            node.ctl('reset')
            node.ctl('join_cluster', first.node)
            node.start_app()

    def _default_user_config(self):
        return '\n'.join([
            'default_vhost = %s' % self.vhost,
            'default_user = %s' % self.user,
            'default_pass = %s' % self.password,
            'default_permissions.configure = .*',
            'default_permissions.read = .*',
            'default_permissions.write = .*',
            'default_user_tags.administrator = true',
            ''])

    @staticmethod
    def _on_each(nodes, func):
        concurrency.map_concurrently(func, nodes, max(1, len(nodes)))

    def _stop_all(self):
        started = time.monotonic()
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.stop(timeout=self.stop_timeout)
        self.stop_seconds = time.monotonic() - started

    def url_for_node(self, node):
        """A single-host transport_url for one node (same user, vhost)."""
        return 'rabbit://%s/%s' % (node.netloc(self.user, self.password),
                                   self.vhost)

    def node_named(self, name):
        """The ``RabbitNode`` whose Erlang node name is ``name``."""
        for node in self.nodes:
            if node.node == name:
                return node
        raise KeyError(name)

    def alive_nodes(self):
        """The nodes whose VM still runs."""
        return [node for node in self.nodes if node.alive()]

    def ctl(self, *args, timeout=60.0, check=True):
        """``rabbitmqctl ARGS`` against the first node still alive."""
        alive = self.alive_nodes()
        if not alive:
            raise nl_fixtures.BrokerUnavailable(
                reason='every node of cluster %s is down' % self.name)
        return alive[0].ctl(*args, timeout=timeout, check=check)

    def running_nodes(self):
        """Node names ``cluster_status`` reports as running."""
        out = self.ctl('cluster_status', '--formatter', 'json')
        return sorted(json.loads(out).get('running_nodes', []))

    def wait_running(self, count, timeout=None):
        """Wait until ``cluster_status`` shows ``count`` running nodes."""
        timeout = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            running = self.running_nodes()
            if len(running) == count:
                return running
            if time.monotonic() >= deadline:
                raise nl_fixtures.BrokerUnavailable(
                    reason='cluster %s: %d running nodes after %ss, wanted '
                    '%d: %s' % (self.name, len(running), timeout, count,
                                running))
            concurrency.sleep(0.2)

    def list_queues(self, *columns, vhost=None):
        """``rabbitmqctl list_queues -p VHOST COLUMNS`` as a list of dicts
        (``name``, ``type``, ``messages``, ``consumers``, ``leader``,
        ``members``... see ``rabbitmqctl list_queues --help``)."""
        columns = columns or ('name', 'type', 'messages', 'consumers',
                              'leader')
        out = self.ctl('list_queues', '-p', vhost or self.vhost,
                       '--formatter', 'json', *columns)
        return json.loads(out) if out.strip() else []

    def leader_of(self, queue, vhost=None):
        """The ``RabbitNode`` that leads quorum queue ``queue`` (for a
        classic queue: the node that hosts it)."""
        for row in self.list_queues('name', 'type', 'leader', vhost=vhost):
            if row['name'] != queue:
                continue
            leader = row.get('leader')
            if row.get('type') != 'quorum' or not leader:
                leader = self._classic_node(queue, vhost)
            if not leader:
                raise nl_fixtures.BrokerUnavailable(
                    reason='queue %s has no leader: %s' % (queue, row))
            return self.node_named(leader)
        raise KeyError('no queue %r in vhost %s' % (queue,
                                                    vhost or self.vhost))

    def _classic_node(self, queue, vhost):
        # The JSON formatter writes a pid as #PID<11016.1144.0>, without
        # the node; the table one as <node@host.1668476236.1144.0>.
        out = self.ctl('list_queues', '-p', vhost or self.vhost,
                       '--no-table-headers', 'name', 'pid')
        for line in out.splitlines():
            name, _, pid = line.rpartition('\t')
            match = _PID_NODE.match(pid.strip())
            if name == queue and match:
                return match.group(1)
        return None

    def declare_quorum_queues(self, names, node=None):
        """Declare durable quorum queues ``names`` through a connection to
        ``node`` (default: node 1), which then leads them (RabbitMQ puts a
        new quorum queue's leader on the declaring client's node).

        oslo.messaging shuffles the hosts of a multi-host URL, so which
        node leads a server's queue is chance; a test that kills the node
        leading given queues declares them first, with the arguments
        oslo.messaging uses under ``rabbit_quorum_queue`` (a mismatch
        would fail the daemons' own declares with PRECONDITION_FAILED).
        """
        node = node or self.nodes[0]
        with kombu.Connection(hostname=node.host, port=node.port,
                              userid=self.user, password=self.password,
                              virtual_host=self.vhost, transport='pyamqp',
                              connect_timeout=10) as connection:
            channel = connection.channel()
            for name in names:
                kombu.Queue(name, channel=channel, durable=True,
                            auto_delete=False,
                            queue_arguments={'x-queue-type': 'quorum'}
                            ).declare()
        return node

    def save_state(self, directory):
        """Write ``cluster.json`` and ``transport_url`` (mode 0600) to
        ``directory``, for ``stop_saved`` (``stop``) from another
        process."""
        state = {'name': self.name, 'url_file': URL_FILE,
                 'nodes': [{'node': node.node, 'port': node.port,
                            'pid': node.pid, 'base_dir': node.base_dir}
                           for node in self.nodes]}
        path = os.path.join(directory, URL_FILE)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                          0o600), 'w') as handle:
            handle.write(self.url + '\n')
        with open(os.path.join(directory, STATE_FILE), 'w') as handle:
            json.dump(state, handle, indent=1)


def _distinct_ports(count, host):
    ports = []
    while len(ports) < count:
        port = rabbit_node.free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def stop_saved(state_dir, timeout=15.0):
    """Stop the nodes that ``start`` left in ``state_dir`` and remove
    their directories.  Returns the node names."""
    path = os.path.join(state_dir, STATE_FILE)
    try:
        with open(path) as handle:
            state = json.load(handle)
    except (OSError, ValueError) as exc:
        raise nl_fixtures.BrokerUnavailable(
            reason='no cluster state in %s: %s' % (path, exc))
    nodes = []
    for saved in state['nodes']:
        nodes.append(rabbit_node.RabbitNode.started_elsewhere(
            saved['node'], saved['port'], saved['pid'], saved['base_dir']))
    for node in nodes:
        node.terminate()
    for node in nodes:
        node.stop(timeout=timeout)
        shutil.rmtree(node.base_dir, True)
    forget_state(state_dir)
    return [node.node for node in nodes]


def forget_state(state_dir):
    """Remove what ``save_state`` wrote (the nodes are stopped)."""
    for name in (STATE_FILE, URL_FILE):
        try:
            os.unlink(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(os.path.join(state_dir, NODES_DIR))
    except OSError:
        pass


def main(argv=None):
    """``start`` or ``stop`` a cluster from the shell (see the module
    docstring)."""
    parser = argparse.ArgumentParser(
        prog='python -m nova_lite.testing.rabbit_cluster',
        description='A RabbitMQ cluster on loopback (for development).')
    sub = parser.add_subparsers(dest='command', required=True)
    start = sub.add_parser('start', help='start a cluster and leave it '
                           'running')
    start.add_argument('--size', type=int, default=3)
    start.add_argument('--state-dir', required=True)
    stop = sub.add_parser('stop', help='stop the cluster of --state-dir')
    stop.add_argument('--state-dir', required=True)
    args = parser.parse_args(argv)
    state_dir = os.path.abspath(args.state_dir)
    try:
        if args.command == 'stop':
            names = stop_saved(state_dir)
            print('stopped %s' % ', '.join(names))
            return 0
        if args.size < 1:
            parser.error('--size must be at least 1')
        os.makedirs(state_dir, exist_ok=True)
        if os.path.exists(os.path.join(state_dir, STATE_FILE)):
            parser.error('%s already holds a cluster: stop it first' %
                         state_dir)
        cluster = RabbitCluster(size=args.size,
                                base_dir=os.path.join(state_dir, NODES_DIR))
        # A failed setUp cleans up after itself (fixtures).
        cluster.setUp()
        # No cleanUp: the nodes outlive this process until "stop".
        cluster.save_state(state_dir)
        print('RabbitMQ cluster of %d nodes up in %.1f s: %s' % (
            args.size, cluster.start_seconds, utils.mask_url(cluster.url)))
        for node in cluster.nodes:
            print('  %s port %d pid %s' % (node.node, node.port, node.pid))
        print('transport_url (with its password) in %s' %
              os.path.join(state_dir, URL_FILE))
        print('stop it with: python -m nova_lite.testing.rabbit_cluster '
              'stop --state-dir %s' % state_dir)
        return 0
    except nl_fixtures.BrokerUnavailable as exc:
        print('error: %s' % exc, file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
