"""A local multi-daemon deployment for development and demos.

Started by ``bin/nova-lite-dev deploy`` (which first sets up the virtualenv
and RabbitMQ).  It writes a config, syncs the DB, starts a conductor, a
scheduler, an inflight prober and N computes as separate daemons with
different ``host`` values, prints ``service list``, and runs until Ctrl-C or
``--duration``.  On the way out it stops every daemon it started.

It starts nova-lite-api too (noauth2, on 127.0.0.1 ``--api-port``) and
builds its demo instance through it, with ``POST /v2.1/servers``.

Every daemon serves ``/metrics`` and ``/health`` on a free port of
127.0.0.1.  Once they are up it prints each endpoint and writes
``STATE_DIR/prometheus/nova-lite-targets.json`` (Prometheus file_sd, as
``nova-lite-manage metrics targets --output`` writes it) and, beside it, a
``prometheus.yml`` that scrapes them; it prints the command that starts a
Prometheus on them (it does not start one).

With ``--rabbit-cluster N`` it first starts a RabbitMQ cluster of N nodes
of its own on loopback (``nova_lite.testing.rabbit_cluster``, under
``STATE_DIR/rabbit-cluster``) and runs every daemon on it, through a
multi-host transport_url, with quorum queues
(``conf.messaging.CLUSTER_RABBIT_OPTIONS``); the cluster stops with the
daemons.
"""

from nova_lite import concurrency
from nova_lite import monkey_patch  # (must be first)

import argparse
import json
import os
import signal
import sys
import time

from nova_lite import config
from nova_lite.cmd import common
from nova_lite.cmd.manage import inflight as inflight_commands
from nova_lite.cmd.manage import service as service_commands
from nova_lite.cmd import output
from nova_lite.conf import messaging as messaging_conf
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite.inflight import rpcapi as inflight_rpcapi
from nova_lite.metrics import targets
from nova_lite import process
from nova_lite import rpc
from nova_lite import servicegroup
from nova_lite.testing import api as api_client
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import rabbit_cluster
from nova_lite import utils
from nova_lite.virt.qemu import process as qemu_process

PROG = 'nova-lite-dev'


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description='Run a local nova_lite deployment: conductor, '
        'scheduler, inflight and N computes as separate daemons.')
    parser.add_argument('--duration', type=common.non_negative(), default=0,
                        help='Seconds to run, then stop everything (default '
                             '0: until Ctrl-C).')
    parser.add_argument('--computes', type=int, default=2,
                        choices=range(1, 33), metavar='N',
                        help='How many compute daemons (default 2).')
    parser.add_argument('--state-dir', default=os.path.join('state', 'dev'),
                        help='Config, database and logs go here '
                             '(default state/dev).')
    parser.add_argument('--backend', choices=monkey_patch.BACKENDS,
                        help='Concurrency backend of the daemons, written '
                             'to the config as [DEFAULT] '
                             'concurrency_backend (default: eventlet; '
                             'NOVA_LITE_CONCURRENCY_BACKEND, if set, wins).')
    broker = parser.add_mutually_exclusive_group()
    broker.add_argument('--transport-url',
                        help='Broker URL (default: the config default, '
                             'the local RabbitMQ).')
    broker.add_argument('--rabbit-cluster', type=int, choices=range(1, 8),
                        metavar='N',
                        help='Start a RabbitMQ cluster of N nodes on '
                             'loopback (under STATE_DIR/rabbit-cluster) and '
                             'run on it with quorum queues; it stops with '
                             'the daemons.')
    parser.add_argument('--driver', choices=('fake', 'qemu'), default='fake',
                        help='[compute] driver of the computes (default '
                             'fake); with qemu each compute keeps its '
                             'instances in STATE_DIR/HOST/instances.')
    parser.add_argument('--api-port', type=common.positive(int),
                        default=8774,
                        help='Port of nova-lite-api on 127.0.0.1 (default '
                             '8774).')
    return parser


def _deployment_values(args, cluster=None):
    state_dir = os.path.abspath(args.state_dir)
    values = {
        'DEFAULT': {'state_path': state_dir, 'report_interval': 2,
                    'service_down_time': 10, 'periodic_fuzzy_delay': 0,
                    'debug': False},
        'database': {'connection': 'sqlite:///%s' % os.path.join(
            state_dir, 'nova_lite.sqlite')},
        'inflight': {'probe_interval': 5, 'sleep_seconds': 0.2},
        'compute': {'driver': args.driver},
        'api': {'host': '127.0.0.1', 'port': args.api_port,
                'auth_strategy': 'noauth2'},
        # Each daemon on a free port of its own (written to its row).
        'metrics': {'enabled': True, 'bind_host': '127.0.0.1', 'port': 0},
    }
    if args.transport_url:
        values['DEFAULT']['transport_url'] = args.transport_url
    if cluster is not None:
        values['DEFAULT']['transport_url'] = cluster.url
        values['oslo_messaging_rabbit'] = dict(
            messaging_conf.CLUSTER_RABBIT_OPTIONS)
    if args.backend:
        values['DEFAULT']['concurrency_backend'] = args.backend
    return values


def _daemon_plan(computes):
    plan = [('nova-lite-conductor', 'control1'),
            ('nova-lite-scheduler', 'control1'),
            ('nova-lite-inflight', 'control1'),
            ('nova-lite-api', 'control1')]
    plan += [('nova-lite-compute', 'compute%d' % n)
             for n in range(1, computes + 1)]
    return plan


def _start_daemons(state_dir, conf_path, plan):
    daemons = []
    for binary, host in plan:
        daemons.append(process.start_in(
            state_dir, binary, host, [conf_path],
            {'qemu': {'instances_path': os.path.join(state_dir, host,
                                                     'instances')}}))
        print('started %-20s host=%-9s pid=%-7d log=%s' % (
            binary, host, daemons[-1].pid, daemons[-1].log_path), flush=True)
    return daemons


def _wait_all_up(conf, db, daemons, timeout=60):
    pending = list(daemons)

    def _all_up():
        for daemon in list(pending):
            if daemon.popen.poll() is not None:
                raise RuntimeError('%s exited with %s; see %s' % (
                    daemon.binary, daemon.popen.returncode,
                    daemon.log_path))
            svc = _service_or_none(db, daemon)
            if svc and servicegroup.is_up(svc, conf.service_down_time):
                pending.remove(daemon)
        return not pending

    try:
        utils.wait_for(_all_up, timeout, interval=0.2, retry_errors=())
    except TimeoutError:
        raise RuntimeError('not up after %ss: %s' % (timeout, ', '.join(
            '%s on %s (log %s)' % (d.binary, d.host, d.log_path)
            for d in pending)))


def _service_or_none(db, daemon):
    try:
        return db.service_get(daemon.host, daemon.binary)
    except Exception:  # noqa: BLE001 - not registered (or DB busy) yet
        return None


def _print_services(conf, db):
    print()
    output.print_table(service_commands.LIST_COLUMNS,
                       service_commands.service_rows(conf, db))
    print(flush=True)


# The rules of a checkout (etc/ is not installed with the package).
RULES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'etc', 'prometheus', 'nova-lite-rules.yml')


def _publish_metrics(db, state_dir, conf_path):
    """Print every daemon's endpoint; write the file_sd file and a
    Prometheus config that reads it; print how to start Prometheus."""
    services = db.service_get_all()
    for svc in services:
        address = targets.scrape_address(svc)
        print('metrics %-20s host=%-9s %s' % (
            svc['binary'], svc['host'],
            'http://%s/metrics (and /health)' % address if address
            else '- (no endpoint)'))
    directory = os.path.join(state_dir, 'prometheus')
    os.makedirs(directory, exist_ok=True)
    targets_path = os.path.join(directory, 'nova-lite-targets.json')
    groups = targets.write_file_sd(targets_path, services)
    config_path = os.path.join(directory, 'prometheus.yml')
    rules = [RULES] if os.path.exists(RULES) else []
    targets.write_atomically(config_path, json.dumps(
        targets.scrape_config(targets_path, rules, interval=5.0),
        indent=2) + '\n')
    print('Prometheus file_sd: %d target(s) in %s (again: nova-lite-manage '
          '--config-file %s metrics targets --output %s)' % (
              len(groups), targets_path, conf_path, targets_path))
    print('Prometheus on them: prometheus --config.file %s '
          '--storage.tsdb.path %s --web.listen-address 127.0.0.1:9090 '
          '(or add the file to a file_sd_configs of yours, with '
          'honor_labels: true: etc/prometheus/prometheus.yml)' % (
              config_path, os.path.join(directory, 'data')))
    print('Without Prometheus: nova-lite-manage --config-file %s rpc stats '
          '--watch' % conf_path, flush=True)


def _demo_build(conf, db):
    """One instance through the API: api -> conductor -> scheduler ->
    compute."""
    url = 'http://127.0.0.1:%d' % conf.api.port
    client = api_client.APIClient(url, token='admin:admin')
    api_client.wait_for_api(client)
    resp = client.post('/v2.1/servers', {'server': {
        'name': 'demo', 'imageRef': 'cirros', 'flavorRef': '1'}})
    if resp.status != 202:
        raise RuntimeError('POST %s/v2.1/servers answered %s: %s' % (
            url, resp.status, resp.body[:300]))
    instance_uuid = resp.json['server']['id']
    print('POST %s/v2.1/servers -> 202, %s (X-Auth-Token: admin:admin)' % (
        url, resp.headers.get('x-openstack-request-id')), flush=True)
    try:
        instance = utils.wait_for(
            lambda: _instance_if_settled(db, instance_uuid), 30, interval=0.2,
            what='instance %s to be built' % instance_uuid)
    except TimeoutError:
        print('instance %s: not built within 30s' % instance_uuid)
        return
    print('instance %s: %s on %s' % (instance_uuid, instance['vm_state'],
                                     instance['host']))


def _instance_if_settled(db, instance_uuid):
    instance = db.instance_get(instance_uuid)
    return instance if instance['vm_state'] in ('active', 'error') else None


def _start_rabbit_cluster(size, state_dir):
    """A RabbitMQ cluster of ``size`` nodes under
    ``STATE_DIR/rabbit-cluster``, left to ``_stop_rabbit_cluster``."""
    directory = os.path.join(state_dir, 'rabbit-cluster')
    if os.path.exists(os.path.join(directory, rabbit_cluster.STATE_FILE)):
        # A deployment killed before it could stop its cluster.
        print('stopping the RabbitMQ cluster left in %s' % directory)
        rabbit_cluster.stop_saved(directory)
    os.makedirs(directory, exist_ok=True)
    print('starting a RabbitMQ cluster of %d node(s) in %s' % (
        size, directory), flush=True)
    cluster = rabbit_cluster.RabbitCluster(
        size=size, base_dir=os.path.join(directory, rabbit_cluster.NODES_DIR))
    cluster.setUp()  # a failed one cleans up after itself (fixtures)
    cluster.save_state(directory)
    print('RabbitMQ cluster up in %.1f s: %s' % (
        cluster.start_seconds, utils.mask_url(cluster.url)))
    for node in cluster.nodes:
        print('  node %s port %d pid %s' % (node.node, node.port, node.pid))
    print('  quorum queues on ([oslo_messaging_rabbit] %s); Ctrl-C stops '
          'the cluster with the daemons; should this command be killed, '
          'stop it with: python -m nova_lite.testing.rabbit_cluster stop '
          '--state-dir %s' % (', '.join(
              '%s = %s' % item for item in
              messaging_conf.CLUSTER_RABBIT_OPTIONS.items()), directory),
          flush=True)
    return cluster, directory


def _stop_rabbit_cluster(cluster, directory):
    cluster.cleanUp()
    rabbit_cluster.forget_state(directory)
    print('stopped the RabbitMQ cluster (%d nodes) in %.1f s' % (
        len(cluster.nodes), cluster.stop_seconds or 0.0))


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    if not args.rabbit_cluster:
        return _deploy(args, state_dir)
    try:
        cluster, directory = _start_rabbit_cluster(args.rabbit_cluster,
                                                   state_dir)
    except nl_fixtures.BrokerUnavailable as exc:
        print('%s: error: %s' % (PROG, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('\ninterrupted')
        return 1
    try:
        return _deploy(args, state_dir, cluster)
    finally:
        _stop_rabbit_cluster(cluster, directory)


def _deploy(args, state_dir, cluster=None):
    conf_path = config.write_config_file(
        os.path.join(state_dir, 'nova-lite.conf'),
        _deployment_values(args, cluster))
    conf = config.parse_args_or_exit(['--config-file', conf_path], PROG)
    daemons = []
    started = time.monotonic()
    with common.exit_on_error(PROG):
        db = db_api.API(conf)
        db.connect()
        migration.db_sync(db)
        print('config: %s' % conf_path)
        print('broker: %s' % utils.mask_url(conf.transport_url), flush=True)
        try:
            daemons = _start_daemons(state_dir, conf_path,
                                     _daemon_plan(args.computes))
            _wait_all_up(conf, db, daemons)
            _print_services(conf, db)
            _publish_metrics(db, state_dir, conf_path)
            rpc.init(conf)
            _demo_build(conf, db)
            print('running %s; Ctrl-C stops every daemon and prints the '
                  'inflight report' % ('for %ss' % args.duration
                                       if args.duration else
                                       'until Ctrl-C'), flush=True)
            _run_until(args.duration)
            # One more round so even a short run reports every service.
            inflight_rpcapi.InflightRPCAPI(conf, db=db).probe_now(
                context.get_admin_context(), timeout=60)
            _print_services(conf, db)
            inflight_commands.print_report(db, since_minutes=
                                           (time.monotonic() - started) / 60)
        except KeyboardInterrupt:
            print('\ninterrupted')
        except RuntimeError as exc:
            print('%s: error: %s' % (PROG, exc), file=sys.stderr)
            return 1
        finally:
            if args.driver == 'qemu' and daemons:
                _destroy_instances(conf, db)
            for daemon, code in process.stop_all(list(reversed(daemons))):
                print('stopped %-20s host=%-9s exit=%s' % (
                    daemon.binary, daemon.host, code))
            if args.driver == 'qemu':
                _kill_qemu(state_dir)
            rpc.cleanup()
    return 0


def _destroy_instances(conf, db):
    """Destroy the instances this deployment built (their QEMU processes
    outlive the computes, as libvirt domains do)."""
    conductor = conductor_rpcapi.ConductorRPCAPI(conf, db=db)
    uuids = [i['uuid'] for i in db.instance_get_all(deleted=False)]
    for instance_uuid in uuids:
        try:
            conductor.destroy_instance(context.get_admin_context(),
                                       instance_uuid)
        except Exception as exc:  # noqa: BLE001 - _kill_qemu follows
            print('instance %s: not destroyed: %s' % (instance_uuid, exc))
    try:
        utils.wait_for(lambda: not db.instance_get_all(deleted=False), 30,
                       interval=0.2, what='the instances to be destroyed')
    except TimeoutError as exc:
        print(exc)
    else:
        print('destroyed %d instance(s)' % len(uuids))


def _kill_qemu(state_dir):
    """Kill any QEMU still running from ``state_dir`` (a compute that
    died before it destroyed its instances)."""
    for pid in qemu_process.find_processes(state_dir):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                program = f.read().split(b'\0')[0]
        except OSError:
            continue
        # Only QEMU: this command's own line names the state dir too.
        if not os.path.basename(program).startswith(b'qemu-system'):
            continue
        print('killing QEMU pid %d, left over' % pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _run_until(duration):
    """Until ``duration`` s passed (0: forever) or Ctrl-C."""
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            concurrency.sleep(0.5 if deadline is None
                        else min(0.5, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        print('\ninterrupted; reporting, then stopping every daemon')


if __name__ == '__main__':
    sys.exit(main())
