"""Real daemons on a real broker: calls, casts, caps, liveness, shutdown."""

import json
import os
import signal
import subprocess
import sys
import uuid

import oslo_messaging as messaging
import pytest

from nova_lite import baserpc
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite import exception
from nova_lite.scheduler import rpcapi as scheduler_rpcapi
from nova_lite.testing import waiters


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture
def deployment(factory, db, client_rpc):
    """conductor, scheduler and two computes, each its own process."""
    daemons = {
        'conductor': factory.start_daemon('nova-lite-conductor', 'ctl1'),
        'scheduler': factory.start_daemon('nova-lite-scheduler', 'ctl1'),
        'compute1': factory.start_daemon('nova-lite-compute', 'cpu1'),
        'compute2': factory.start_daemon('nova-lite-compute', 'cpu2'),
    }
    for daemon in daemons.values():
        _wait_up(db, daemon)
    return daemons


def _wait_up(db, daemon, **kwargs):
    try:
        return waiters.wait_for_service(db, daemon.host, daemon.binary,
                                        **kwargs)
    except waiters.WaitTimeout:
        pytest.fail('%s never came up; its log:\n%s' % (
            daemon.binary, daemon.log_text()[-3000:]))


def _manage(conf_fixture, *args):
    path = conf_fixture.write_config_file('manage.conf')
    return subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file',
         path] + list(args), capture_output=True, text=True, timeout=60)


def test_cast_and_call_across_processes(deployment, db, conf, ctxt):
    instance_uuid = str(uuid.uuid4())
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt,
                                                          instance_uuid)
    instance = waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=20,
        what='instance to become active')
    assert instance['host'] in ('cpu1', 'cpu2')
    info = compute_rpcapi.ComputeRPCAPI(conf).get_info(
        ctxt, instance['host'], instance_uuid)
    assert info == {'uuid': instance_uuid, 'host': instance['host'],
                    'state': 'running', 'vm_state': 'active',
                    'task_state': None}
    # The next one goes to the other, emptier compute.
    other = scheduler_rpcapi.SchedulerRPCAPI(conf).select_host(ctxt)
    assert other in ('cpu1', 'cpu2') and other != instance['host']


def test_ping_by_topic_and_host(deployment, conf, ctxt):
    client = baserpc.BaseRPCAPI(conf, 'compute')
    assert client.ping(ctxt, 'x', host='cpu2')['host'] == 'cpu2'
    assert client.ping(ctxt, 'y')['host'] in ('cpu1', 'cpu2')


def test_version_cap_against_real_scheduler(deployment, conf, ctxt):
    conf.set_override('scheduler', '1.0', group='upgrade_levels')
    capped = scheduler_rpcapi.SchedulerRPCAPI(conf)
    assert capped.select_host(ctxt) in ('cpu1', 'cpu2')
    with pytest.raises(exception.VersionCapTooLow):
        capped.select_host(ctxt, exclude_hosts=['cpu1'])
    conf.set_override('scheduler', 'auto', group='upgrade_levels')
    auto = scheduler_rpcapi.SchedulerRPCAPI(conf)
    assert auto.version_cap == '1.3'
    assert auto.select_host(ctxt, exclude_hosts=['cpu1']) == 'cpu2'


def test_unknown_method_and_version_are_remote_errors(deployment, conf,
                                                      ctxt):
    client = compute_rpcapi.ComputeRPCAPI(conf).client
    with pytest.raises(messaging.RemoteError) as err:
        client.prepare(server='cpu1').call(ctxt, 'no_such_method')
    assert err.value.exc_type == 'NoSuchMethod'
    with pytest.raises(messaging.RemoteError) as err:
        client.prepare(server='cpu1', version='1.99').call(
            ctxt, 'get_info', instance_uuid='x')
    assert err.value.exc_type == 'UnsupportedVersion'
    with pytest.raises(exception.InstanceNotFound):
        compute_rpcapi.ComputeRPCAPI(conf).get_info(ctxt, 'cpu1', 'nope')
    # ... and the service keeps serving.
    assert baserpc.BaseRPCAPI(conf, 'compute').ping(
        ctxt, 'still', host='cpu1')['arg'] == 'still'


def test_heartbeats_and_kill_9_shows_down(deployment, db, conf_fixture,
                                          conf):
    compute = deployment['compute1']
    before = db.service_get('cpu1', 'nova-lite-compute')['report_count']
    _wait_up(db, compute, min_report_count=before + 2)
    compute.signal(signal.SIGKILL)
    compute.wait(timeout=10)
    waiters.wait_for_service(db, 'cpu1', 'nova-lite-compute', status='down',
                             timeout=conf.service_down_time + 5)
    result = _manage(conf_fixture, 'service', 'list', '--json')
    rows = {(r['host'], r['binary']): r for r in json.loads(result.stdout)}
    assert rows[('cpu1', 'nova-lite-compute')]['status'] == 'down'
    assert rows[('cpu2', 'nova-lite-compute')]['status'] == 'up'


def test_sigterm_and_sigint_exit_cleanly(deployment):
    for name, signum in (('compute2', signal.SIGTERM),
                         ('scheduler', signal.SIGINT)):
        daemon = deployment[name]
        daemon.signal(signum)
        assert daemon.wait(timeout=30) == 0, daemon.log_text()[-2000:]
        assert 'Stopped %s' % daemon.binary in daemon.log_text()


def test_no_secret_in_logs_or_cli_output(deployment, rabbit, conf_fixture):
    outputs = [_manage(conf_fixture, 'service', 'list'),
               _manage(conf_fixture, 'db', 'sync')]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert rabbit.password not in result.stdout + result.stderr
    for daemon in deployment.values():
        text = daemon.log_text()
        assert 'Using message broker rabbit://%s:***@' % rabbit.name in text
        assert rabbit.password not in text


def test_unreachable_broker_logs_masked_url_and_retries(factory,
                                                        conf_fixture, db):
    secret = 'pw-%s' % uuid.uuid4().hex[:8]
    daemon = factory.start_daemon(
        'nova-lite-compute', 'lonely',
        extra={'DEFAULT': {'transport_url':
                           'rabbit://someone:%s@127.0.0.1:1/' % secret}})
    waiters.wait_for(
        lambda: daemon.log_text().count('Connection failed') >= 2,
        timeout=30, what='two broker connection retries')
    text = daemon.log_text()
    assert ('Connecting to message broker rabbit://someone:***@127.0.0.1:1/'
            in text)
    assert secret not in text
    assert daemon.popen.poll() is None, 'the daemon must keep retrying'
    # A signal still stops it, in order, while it retries.
    assert daemon.stop(timeout=15) == 0
    assert 'Stopped nova-lite-compute' in daemon.log_text()


def test_unreachable_database_is_one_masked_line(conf_fixture):
    secret = 'db-%s' % uuid.uuid4().hex[:8]
    path = conf_fixture.write_config_file('baddb.conf', extra={
        'database': {'connection': 'postgresql://nova:%s@127.0.0.1:1/nova'
                                   % secret,
                     'connect_retries': 1, 'connect_retry_interval': 0}})
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file', path,
         'db', 'sync'], capture_output=True, text=True, timeout=60,
        env=dict(os.environ))
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('nova-lite-manage: error: Cannot connect to '
                           'database postgresql://nova:***@127.0.0.1:1/nova')


def test_a_killed_conductors_build_is_finished_by_another(factory, db, conf,
                                                          ctxt, client_rpc):
    doomed = factory.start_daemon('nova-lite-conductor', 'ctl-doomed', extra={
        'DEFAULT': {'conductor_manager':
                    'nova_lite.testing.managers:StallingConductorManager'}})
    others = [factory.start_daemon('nova-lite-scheduler', 'ctl1'),
              factory.start_daemon('nova-lite-compute', 'cpu1')]
    for daemon in [doomed] + others:
        _wait_up(db, daemon)
    instance_uuid = str(uuid.uuid4())
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt,
                                                          instance_uuid)
    # It scheduled the instance and recorded that; it stalls before the
    # cast to the compute host, and dies there.
    work = waiters.wait_for(
        lambda: [w for w in db.work_get_all(instance_uuid=instance_uuid)
                 if w['step'] == 'casting'], timeout=20,
        what='the doomed conductor to reach its last step')[0]
    assert (work['conductor_host'], work['host']) == ('ctl-doomed', 'cpu1')
    doomed.signal(signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL

    rescuer = factory.start_daemon('nova-lite-conductor', 'ctl2')

    instance = waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=30,
        what='the instance to be built by the second conductor')
    assert instance['host'] == 'cpu1'
    done = db.work_get(work['id'])
    assert (done['conductor_host'], done['takeovers'], done['step']) == (
        'ctl2', 1, 'done')
    assert 'Taking over build of instance %s from dead conductor ' \
        'ctl-doomed' % instance_uuid in rescuer.log_text()


def test_conductor_refuses_a_second_action_across_processes(
        factory, db, conf, ctxt, client_rpc):
    # Operations of 2 s: the reboot surely still holds the instance when
    # the destroy request arrives.
    for daemon in (factory.start_daemon('nova-lite-conductor', 'ctl1'),
                   factory.start_daemon('nova-lite-scheduler', 'ctl1'),
                   factory.start_daemon('nova-lite-compute', 'slow1', extra={
                       'fake_driver': {'operation_seconds': 2}})):
        _wait_up(db, daemon)
    instance_uuid = str(uuid.uuid4())
    client = conductor_rpcapi.ConductorRPCAPI(conf)
    client.build_instance(ctxt, instance_uuid)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'active', timeout=20, what='instance to become active')

    accepted = client.reboot_instance(ctxt, instance_uuid)
    with pytest.raises(exception.InstanceActionInProgress) as refused:
        client.destroy_instance(ctxt, instance_uuid)

    assert accepted['action'] == 'reboot'
    assert 'already' in str(refused.value)
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['task_state']
                     is None, timeout=20, what='the reboot to finish')
    assert client.destroy_instance(ctxt, instance_uuid)['action'] == 'destroy'
    waiters.wait_for(lambda: db.instance_get(instance_uuid)['vm_state'] ==
                     'deleted', timeout=20, what='the destroy')
