"""Broker failover, classic vs quorum queues: what kill -9 of a node costs.

    python benchmarks/broker_failover.py [--modes classic,quorum]
        [--rate 5] [--before 15] [--after 30] [--settle 90]
        [--backend eventlet] [--database-server URL]
        [--rabbit-option NAME=VALUE ...]

For each mode a 3-node RabbitMQ cluster starts on loopback
(``nova_lite.testing.rabbit_cluster.RabbitCluster``), and real daemons run
on its multi-host transport_url: nova-lite-api, -conductor, -scheduler,
-compute (fake driver) and -inflight (probing every service every 2 s).
``quorum`` runs the recommended ``[oslo_messaging_rabbit]`` options
(``rabbit_quorum_queue``, ``rabbit_transient_quorum_queue``,
``heartbeat_timeout_threshold = 30``); ``classic`` the same with classic
queues.  The ``conductor`` and ``compute`` queues are declared on node 1
first (``pin_queues``).  This process creates servers through the API at
``--rate`` per second and pings every daemon (``baseapi.ping``, 10 s
timeout) twice a second; after ``--before`` seconds it kills -9 node 1,
which leads (quorum) or hosts (classic) those queues, goes on for
``--after`` seconds, then waits up to ``--settle`` seconds for
every accepted create to end ACTIVE or ERROR.  The table gives, per mode:

- creates accepted (202) and how they ended: ACTIVE, ERROR, or still
  building (lost: a cast that never arrived, and nothing re-sent it);
- casts sent (publish confirmed) and handled per topic, summed over the
  daemons' /metrics (``nova_lite_rpc_client_seconds`` and
  ``nova_lite_rpc_server_handling_seconds``, kind ``cast``);
- the time from the kill until every daemon had answered a ping sent
  after it, and until every daemon answered for good (the reply to the
  first ping after the last one that failed: a daemon draining a backlog
  may miss a 10 s timeout long after its connections are back);
- what clients saw: API errors and timeouts, failed pings, the inflight
  daemon's probe timeouts;
- whether a daemon exited, and the consumers left on the topic queues.
"""

import argparse
import collections
import datetime
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import backends  # noqa: E402  (benchmarks/, next to this file)

# This process runs native threads; set before nova_lite is imported.
os.environ.setdefault(backends.ENV_VAR, backends.THREADING)

from nova_lite import monkey_patch  # noqa: E402,F401  (first of nova_lite)
import oslo_messaging as messaging  # noqa: E402

import failover_load  # noqa: E402  (imports nova_lite: after monkey_patch)
from nova_lite import config  # noqa: E402
from nova_lite.conf import messaging as messaging_conf  # noqa: E402
from nova_lite.db import api as db_api  # noqa: E402
from nova_lite.db import migration  # noqa: E402
from nova_lite import process  # noqa: E402
from nova_lite import rpc  # noqa: E402
from nova_lite.testing import api  # noqa: E402
from nova_lite.testing import rabbit_cluster  # noqa: E402
from nova_lite.testing import waiters  # noqa: E402

# [oslo_messaging_rabbit] per mode: the recommended options
# (conf.messaging.CLUSTER_RABBIT_OPTIONS: quorum queues, transient quorum
# queues, heartbeats), and the same with classic queues.
MODES = {
    'classic': dict(messaging_conf.CLUSTER_RABBIT_OPTIONS,
                    rabbit_quorum_queue=False,
                    rabbit_transient_quorum_queue=False),
    'quorum': dict(messaging_conf.CLUSTER_RABBIT_OPTIONS),
}

# (binary, host) of the daemons each mode runs.
PLAN = (('nova-lite-conductor', 'ctl1'), ('nova-lite-scheduler', 'ctl1'),
        ('nova-lite-compute', 'cpu1'), ('nova-lite-api', 'api1'),
        ('nova-lite-inflight', 'i1'))

# The queues whose node is killed: the topic queues of the build path.
KILL_QUEUES = ('conductor', 'compute')
TOPIC_QUEUES = ('conductor', 'scheduler', 'compute', 'compute.cpu1')

# The (topic, server) whose queues are declared on node 1 before the
# daemons start: topic, topic.server and a fanout queue each.
PINNED = (('conductor', 'ctl1'), ('compute', 'cpu1'))

# Log lines worth counting after a failover (driver errors, bugs).
_LOG_MARKERS = ('INTERNAL_ERROR', 'NOT_FOUND', 'MessageUndeliverable',
                'MessagingTimeout', 'Could not send notification',
                'Traceback', 'Taking over')
_ERROR_LINE = re.compile(r' (ERROR|CRITICAL) ')
_RECONNECTED = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*'
                          r'Reconnected to AMQP server')


class Database:
    """A database of its own on ``server_url`` (PostgreSQL or MariaDB,
    a user that may create databases), dropped by ``close``; without a
    server, SQLite in ``state`` (whose single writer lock the threading
    backend's concurrent builds contend for: "database is locked")."""

    def __init__(self, server_url, state):
        self._admin = None
        if not server_url:
            self.url = 'sqlite:///%s/failover.sqlite' % state
            return
        server = sa.engine.make_url(server_url)
        self.name = 'nova_lite_failover_%s' % secrets.token_hex(4)
        self._admin = sa.create_engine(server, poolclass=sa.pool.NullPool,
                                       isolation_level='AUTOCOMMIT')
        self._force = ' WITH (FORCE)' if server.get_backend_name() == \
            'postgresql' else ''
        self._execute('CREATE DATABASE %s' % self.name)
        self.url = server.set(database=self.name).render_as_string(
            hide_password=False)

    def _execute(self, statement):
        with self._admin.connect() as connection:
            connection.execute(sa.text(statement))

    def close(self):
        if self._admin is not None:
            self._execute('DROP DATABASE %s%s' % (self.name, self._force))
            self._admin.dispose()


class Deployment:
    """The daemons of ``PLAN`` on ``url``, with ``rabbit`` options in
    ``[oslo_messaging_rabbit]``, one database, an API client."""

    def __init__(self, url, rabbit, backend, database_server=None):
        self.backend = backend
        self.state = tempfile.mkdtemp(prefix='nova_lite_failover_')
        self.database = Database(database_server, self.state)
        self.port = api.free_port()
        values = {
            'DEFAULT': {'state_path': self.state, 'transport_url': url,
                        'report_interval': 2, 'service_down_time': 20,
                        'periodic_fuzzy_delay': 0,
                        'rpc_response_timeout': 30},
            'database': {'connection': self.database.url},
            'api': {'host': '127.0.0.1', 'port': self.port,
                    'auth_strategy': 'noauth2'},
            'compute': {'vcpus': 100000, 'memory_mb': 100000000,
                        'disk_gb': 1000000},
            'fake_driver': {'operation_seconds': 0.05,
                            'call_latency_seconds': 0.001},
            'inflight': {'probe_interval': 2.0, 'sleep_seconds': 0.05,
                         'ping_timeout': 5.0},
            'oslo_messaging_rabbit': dict(rabbit),
        }
        self.conf_path = config.write_config_file(
            os.path.join(self.state, 'failover.conf'), values)
        self.conf = config.parse_args(['--config-file', self.conf_path],
                                      default_config_files=[])
        self.db = db_api.API(self.conf)
        migration.db_sync(self.db)
        self.daemons = []
        self.client = api.APIClient('http://127.0.0.1:%d' % self.port,
                                    timeout=failover_load.HTTP_TIMEOUT)

    def start(self):
        for binary, host in PLAN:
            self.daemons.append(process.start_in(
                self.state, binary, host, [self.conf_path],
                env=backends.child_env(self.backend)))
        for daemon in self.daemons:
            waiters.wait_for_service(self.db, daemon.host, daemon.binary,
                                     timeout=180)
        api.wait_for_api(self.client, timeout=60)

    def services(self):
        return self.db.service_get_all()

    def metrics_addresses(self):
        return [svc['metrics_address'] for svc in self.services()
                if svc.get('metrics_address')]

    def exited(self):
        """``{'binary@host': exit code}`` of the daemons that ended."""
        return {'%s@%s' % (d.binary, d.host): d.popen.poll()
                for d in self.daemons if d.popen.poll() is not None}

    def instance_states(self, uuids):
        """``Counter`` of the vm_state of ``uuids`` (missing: 'gone')."""
        by_uuid = {row['uuid']: row['vm_state']
                   for row in self.db.instance_get_all()}
        return collections.Counter(by_uuid.get(uuid, 'gone')
                                   for uuid in uuids)

    def log_counts(self):
        """Per daemon: ERROR lines and marker counts, and a few distinct
        ERROR messages."""
        counts, samples = {}, []
        for daemon in self.daemons:
            text = daemon.log_text()
            name = daemon.binary[len('nova-lite-'):]
            found = collections.Counter()
            for line in text.splitlines():
                if _ERROR_LINE.search(line):
                    found['ERROR'] += 1
                    message = line.split(' ', 5)[-1][:160]
                    if message not in samples and len(samples) < 12:
                        samples.append('%s: %s' % (name, message))
                for marker in _LOG_MARKERS:
                    if marker in line:
                        found[marker] += 1
            counts[name] = found
        return counts, samples

    def last_reconnect(self, since):
        """Seconds from ``since`` (wall clock) to the last "Reconnected to
        AMQP server" any daemon logged after it, and that daemon."""
        latest = (0.0, '-')
        for daemon in self.daemons:
            for line in daemon.log_text().splitlines():
                match = _RECONNECTED.match(line)
                if not match:
                    continue
                at = datetime.datetime.strptime(
                    match.group(1), '%Y-%m-%d %H:%M:%S.%f').timestamp()
                if at >= since and at - since > latest[0]:
                    latest = (at - since, daemon.binary[len('nova-lite-'):])
        return latest

    def stop(self):
        process.stop_all(self.daemons)
        self.db.dispose()
        self.database.close()


def pin_queues(conf, cluster):
    """Declare the ``PINNED`` queues through node 1 alone.

    oslo.messaging shuffles the hosts of a multi-host URL per connection,
    and a queue lives (classic) or is led (quorum, ``client-local``) on
    the node its declaring connection reached: left alone, the conductor
    and compute queues land on random nodes, and one kill cannot hit
    both.  Declared first, here, by an RPC server that stops at once (with
    the daemons' own options, so their declares match), they sit on node
    1; the daemons' declares are then no-ops.
    """
    transport = messaging.get_rpc_transport(
        conf, url=cluster.url_for_node(cluster.nodes[0]))
    try:
        for topic, server in PINNED:
            rpc_server = messaging.get_rpc_server(
                transport, messaging.Target(topic=topic, server=server),
                [], executor='threading')
            rpc_server.start()
            rpc_server.stop()
            rpc_server.wait()
    finally:
        transport.cleanup()


def queue_homes(cluster):
    """``{queue: node name}``: a quorum queue's leader, a classic queue's
    node (from each live node's ``list_queues --local``: the JSON
    formatter shows a classic queue's pid without its node)."""
    homes = {}
    for node in cluster.alive_nodes():
        out = node.ctl('list_queues', '-p', cluster.vhost, '--local',
                       '--formatter', 'json', 'name', 'type', 'leader')
        for row in json.loads(out) if out.strip() else []:
            if row.get('type') == 'quorum':
                if row.get('leader'):
                    homes[row['name']] = row['leader']
            else:
                homes[row['name']] = node.node
    return homes


def _wait_for(predicate, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def run_mode(args, mode):
    """One mode, start to end; a dict of figures for the table."""
    rabbit = dict(MODES[mode], **args.rabbit_options)
    out = {'mode': mode, 'load_start': os.getloadavg()[0]}
    with rabbit_cluster.RabbitCluster(size=3) as cluster:
        out['cluster_start_s'] = cluster.start_seconds
        env = Deployment(cluster.url, rabbit, args.backend,
                         args.database_server)
        pingers, creates = [], None
        try:
            pin_queues(env.conf, cluster)
            env.start()
            rpc.init(env.conf)
            for svc in env.services():
                pinger = failover_load.Pinger(env.conf, svc['topic'],
                                              svc['host'])
                pinger.start()
                pingers.append(pinger)
            creates = failover_load.Creates(env.client, args.rate)
            t_load = time.monotonic()
            creates.start()
            time.sleep(args.before)
            homes = {queue: node for queue, node in
                     queue_homes(cluster).items() if queue in TOPIC_QUEUES}
            targets = collections.Counter(homes[q] for q in KILL_QUEUES
                                          if homes.get(q))
            victim = cluster.node_named(targets.most_common(1)[0][0])
            out['homes'] = homes
            out['victim'] = victim.node
            out['victim_index'] = cluster.nodes.index(victim) + 1
            addresses = env.metrics_addresses()
            before = failover_load.cast_tally(addresses)
            probe_timeouts_before = failover_load.counter_total(
                addresses, 'nova_lite_inflight_timeouts_total')
            accepted_before = len(creates.accepted())
            t_kill, wall_kill = time.monotonic(), time.time()
            victim.kill()
            out['kill_s'] = time.monotonic() - t_kill
            out['before_s'] = t_kill - t_load
            time.sleep(max(0.0, t_kill + args.after - time.monotonic()))
            creates.stop()
            out['after_s'] = time.monotonic() - t_kill
            creates.join_all()
            accepted = creates.accepted()
            out['sent'] = len(creates.results)
            out['accepted'] = len(accepted)
            out['accepted_before_kill'] = accepted_before
            out['api_errors'] = creates.errors()
            seconds = [r['seconds'] for r in creates.results]
            out['post_p50'] = statistics.median(seconds) if seconds else 0
            out['post_max'] = max(seconds) if seconds else 0

            def settled():
                states = env.instance_states(accepted)
                return (states['active'] + states['error'] == len(accepted)
                        and all(p.recovery(t_kill) is not None
                                for p in pingers))
            t_settle = time.monotonic()
            _wait_for(settled, args.settle)
            out['settle_s'] = time.monotonic() - t_settle
            out['states'] = env.instance_states(accepted)
            for pinger in pingers:
                pinger.stop()
            for pinger in pingers:
                pinger.join(10)
            out['recovery'] = {'%s.%s' % (p.topic, p.host):
                               p.recovery(t_kill) for p in pingers}
            out['first_answer'] = {'%s.%s' % (p.topic, p.host):
                                   p.first_answer(t_kill) for p in pingers}
            out['ping_failures'] = sum(
                (p.failures_since(t_kill) for p in pingers),
                collections.Counter())
            addresses = env.metrics_addresses()
            out['casts_before'] = before
            out['casts'] = failover_load.cast_tally(addresses)
            out['probe_timeouts'] = failover_load.counter_total(
                addresses, 'nova_lite_inflight_timeouts_total') - \
                probe_timeouts_before
            out['consumers'] = {
                row['name']: row.get('consumers')
                for row in cluster.list_queues('name', 'consumers')
                if row['name'] in TOPIC_QUEUES}
            out['exited'] = env.exited()
            out['reconnected'] = env.last_reconnect(wall_kill)
            out['logs'], out['log_samples'] = env.log_counts()
        finally:
            for pinger in pingers:
                pinger.stop()
            if creates is not None:
                creates.stop()
            rpc.cleanup()
            env.stop()
            out['state_dir'] = env.state
    out['load_end'] = os.getloadavg()[0]
    return out


def _fmt_recovery(recovery):
    values = list(recovery.values())
    if any(v is None for v in values):
        never = [k for k, v in recovery.items() if v is None]
        return 'never: %s' % ','.join(never)
    slowest = max(recovery, key=recovery.get)
    if not recovery[slowest]:
        return '0 (no ping failed)'
    return '%.1f (%s)' % (recovery[slowest], slowest)


def _fmt_counter(counter):
    return ', '.join('%s %d' % item for item in
                     sorted(counter.items())) or '0'


def rows(result):
    """``[(label, text)]`` of one mode's figures, in table order."""
    states = result['states']
    lost = result['accepted'] - states['active']
    topics = sorted(set(result['casts']) | set(result['casts_before']))
    table = [
        ('node killed (of 3), its queues', 'n%d: %s' % (
            result['victim_index'], ' '.join(
                q for q in TOPIC_QUEUES
                if result['homes'].get(q) == result['victim']) or '-')),
        ('load before / after the kill (s)', '%.0f / %.0f' % (
            result['before_s'], result['after_s'])),
        ('creates sent', str(result['sent'])),
        ('creates accepted (202)', '%d (%d before the kill)' % (
            result['accepted'], result['accepted_before_kill'])),
        ('ACTIVE', str(states['active'])),
        ('ERROR', str(states['error'])),
        ('still building (lost)', str(result['accepted'] - states['active']
                                      - states['error'])),
        ('accepted, not ACTIVE', str(lost)),
    ]
    for topic in topics:
        tally = result['casts'].get(topic, collections.Counter())
        failed = (' (+%d failed)' % tally['send_failed']
                  if tally['send_failed'] else '')
        table.append(('casts %s sent/handled' % topic, '%d/%d%s' % (
            tally['sent'], tally['handled'], failed)))
    logs = result['logs']
    table += [
        ('build casts re-sent by takeover',
         str(logs.get('conductor', {}).get('Taking over', 0))),
        ('last daemon reconnected (s)', '%.1f (%s)' % result['reconnected']),
        ('every daemon answered a ping (s)',
         _fmt_recovery(result['first_answer'])),
        ('every daemon answers for good (s)',
         _fmt_recovery(result['recovery'])),
        ('failed pings after the kill',
         _fmt_counter(result['ping_failures'])),
        ('inflight probe timeouts', '%d' % result['probe_timeouts']),
        ('notifications dropped', str(sum(
            c['Could not send notification'] for c in logs.values()))),
        ('API errors', _fmt_counter(result['api_errors'])),
        ('POST p50 / max (s)', '%.2f / %.1f' % (result['post_p50'],
                                                 result['post_max'])),
        ('daemons exited', _fmt_counter(collections.Counter(
            {name: 1 for name in result['exited']})) if result['exited']
         else 'none'),
        ('consumers after', ' '.join(
            '%s=%s' % (q, result['consumers'].get(q, '-'))
            for q in TOPIC_QUEUES)),
        ('daemon log ERROR lines', str(sum(c['ERROR'] for c in
                                           logs.values()))),
        ('load avg start/end', '%.1f / %.1f' % (result['load_start'],
                                                result['load_end'])),
    ]
    return table


def print_table(args, results):
    print()
    print('Broker failover: 3-node RabbitMQ cluster on loopback, daemons on '
          '%s, %s, %.1f creates/s; kill -9 of the node holding the conductor '
          'and compute queues after %.0f s, %.0f s more load, up to %.0f s '
          'to settle' % (args.backend, 'SQLite' if not args.database_server
                         else sa.engine.make_url(
                             args.database_server).get_backend_name(),
                         args.rate, args.before, args.after,
                         args.settle))
    per_mode = [dict(rows(result)) for result in results]
    labels = [label for label, _ in rows(results[0])]
    for result in results[1:]:
        labels += [label for label, _ in rows(result) if label not in labels]
    width = max(len(label) for label in labels) + 2
    col = max([len(text) for table in per_mode for text in table.values()] +
              [10]) + 2
    header = '%-*s' % (width, '') + ''.join(
        '%-*s' % (col, r['mode']) for r in results)
    print(header)
    print('-' * len(header))
    for label in labels:
        print('%-*s' % (width, label) + ''.join(
            '%-*s' % (col, table.get(label, '-')) for table in per_mode))
    for result in results:
        print('\n%s: queue homes %s; logs in %s' % (
            result['mode'], result['homes'], result['state_dir']))
        for name, found in sorted(result['logs'].items()):
            if found:
                print('  %-10s %s' % (name, _fmt_counter(found)))
        for line in result['log_samples']:
            print('  | %s' % line)


def _rabbit_option(text):
    name, sep, value = text.partition('=')
    if not sep or not name:
        raise argparse.ArgumentTypeError('expected NAME=VALUE')
    return name.strip(), value.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--modes', default='classic,quorum',
                        help='Comma-separated, from %s.' % ', '.join(MODES))
    parser.add_argument('--rate', type=float, default=5.0,
                        help='Server creates per second (default 5).')
    parser.add_argument('--before', type=float, default=15.0,
                        help='Seconds of load before the kill (15).')
    parser.add_argument('--after', type=float, default=30.0,
                        help='Seconds of load after the kill (30).')
    parser.add_argument('--settle', type=float, default=90.0,
                        help='Seconds to wait for the builds to end (90).')
    parser.add_argument('--backend', choices=backends.BACKENDS,
                        default=backends.EVENTLET,
                        help='The daemons\' concurrency backend.')
    parser.add_argument('--database-server',
                        default=os.environ.get('NOVA_LITE_TEST_PG_URL'),
                        help='SQLAlchemy URL of a PostgreSQL or MariaDB '
                        'server on which to create a database per mode '
                        '(default: $NOVA_LITE_TEST_PG_URL; unset: SQLite).')
    parser.add_argument('--rabbit-option', dest='rabbit', action='append',
                        type=_rabbit_option, default=[],
                        help='[oslo_messaging_rabbit] NAME=VALUE for every '
                        'mode (repeatable).')
    args = parser.parse_args()
    args.rabbit_options = dict(args.rabbit)
    modes = [m.strip() for m in args.modes.split(',') if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error('--modes: expected some of %s' % ', '.join(MODES))
    results = []
    for mode in modes:
        print('%s: starting a 3-node cluster and the daemons...' % mode,
              flush=True)
        results.append(run_mode(args, mode))
        print('%s: done' % mode, flush=True)
    print_table(args, results)


if __name__ == '__main__':
    main()
