"""The DB layer on PostgreSQL and MariaDB, the same code as on SQLite.

Each test runs on every backend ('sqlite' included where it is cheap): the
service registry and heartbeats, the conductor's guard and takeover
compare-and-swaps under real concurrency (several processes), inflight
samples, ``db sync``, the CLI's errors, and real daemons that stay up and
build an instance.  The servers come from ``sql_servers`` (see conftest):
a fresh database per test run, emptied before each test.
"""

import datetime
import json
import os
import random
import secrets
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa
from alembic import autogenerate
from alembic import migration as alembic_migration

from nova_lite.cmd.manage import inflight as inflight_commands
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite.db import models
from nova_lite import exception
from nova_lite.inflight import probe
from nova_lite.inflight import stats
from nova_lite import servicegroup
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import waiters

SERVERS = ('postgresql', 'mysql')


@pytest.fixture(params=('sqlite',) + SERVERS)
def backend(request):
    return request.param


def _database_url(backend, sql_servers, state_path, purpose='main'):
    if backend == 'sqlite':
        return 'sqlite:///%s' % os.path.join(state_path, purpose + '.sqlite')
    return sql_servers(backend).database(purpose)


@pytest.fixture
def conf_fixture(backend, rabbit, sql_servers, tmp_path):
    url = _database_url(backend, sql_servers, str(tmp_path))
    with nl_fixtures.ConfFixture(
            transport_url=rabbit.url,
            overrides={'database': {'connection': url}}) as fixture:
        yield fixture


@pytest.fixture
def db(conf):
    """This run's database for the backend, at head and with no rows."""
    api = db_api.API(conf)
    migration.db_sync(api)
    with api.engine.begin() as connection:
        for table in reversed(models.Base.metadata.sorted_tables):
            connection.execute(table.delete())
    yield api
    api.dispose()


def _run(module, conf_fixture, *args, url=None):
    extra = {'database': {'connection': url}} if url else None
    path = conf_fixture.write_config_file('%s.conf' % secrets.token_hex(4),
                                          extra=extra)
    return subprocess.run(
        [sys.executable, '-m', module, '--config-file', path] + list(args),
        capture_output=True, text=True, timeout=120)


# -- schema -------------------------------------------------------------

def test_db_sync_from_empty_is_idempotent_and_matches_models(
        backend, sql_servers, conf, tmp_path):
    conf.set_override('connection', _database_url(
        backend, sql_servers, str(tmp_path), 'sync'), group='database')
    api = db_api.API(conf)
    try:
        migration.db_sync(api)
        migration.db_sync(api)
        assert api.check_schema() == migration.db_head()
        with api.engine.connect() as connection:
            diff = autogenerate.compare_metadata(
                alembic_migration.MigrationContext.configure(connection),
                models.Base.metadata)
        assert diff == []
    finally:
        api.dispose()


def test_timestamps_keep_microseconds(db):
    stamp = datetime.datetime(2026, 11, 24, 9, 38, 55, 123456)
    db.instance_create('u1', host='h1')
    db.instance_update('u1', updated_at=stamp)
    assert db.instance_get('u1')['updated_at'] == stamp
    # Heartbeats a few ms apart are ordered.
    svc = db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    seen = []
    for _ in range(3):
        db.service_heartbeat(svc['id'])
        seen.append(db.service_get('h1', 'nova-lite-compute')['last_seen_up'])
    assert seen == sorted(set(seen))


def test_phases_keep_double_precision(db):
    db.inflight_samples_add([{'topic': 'compute', 'host': 'h1',
                              'total': 1.1, 'clock_offset': -0.123456789}])
    [sample] = db.inflight_samples_since(60)
    assert (sample['total'], sample['clock_offset']) == (1.1, -0.123456789)


# -- services -----------------------------------------------------------

def test_service_registry_and_heartbeats(db):
    row = db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    again = db.service_register('h1', 'nova-lite-compute', 'compute', '1.1')
    db.service_register('s1', 'nova-lite-scheduler', 'scheduler', '1.1')
    assert (again['id'], again['version']) == (row['id'], '1.1')
    assert [db.service_heartbeat(row['id']) for _ in range(3)] == [1, 2, 3]
    disabled = db.service_set_disabled('h1', 'nova-lite-compute', True,
                                       'maintenance')
    assert (disabled['disabled'], disabled['disabled_reason']) == (
        True, 'maintenance')
    [compute] = db.service_get_all(topic='compute')
    assert (compute['report_count'], compute['disabled']) == (3, True)
    assert [s['host'] for s in db.service_get_all()] == ['h1', 's1']
    with pytest.raises(exception.ServiceNotFound):
        db.service_heartbeat(row['id'] + 100)


def test_deleted_instances_are_no_load_and_purged(db):
    db.instance_create('gone', host='h1', vm_state='deleted')
    db.instance_create('live', host='h2', vm_state='active')
    assert db.instance_count_by_host() == {'h2': 1}
    db.instance_update('gone', updated_at=models.utcnow() -
                       datetime.timedelta(hours=2))
    assert db.instance_purge_deleted(3600) == 1
    assert [i['uuid'] for i in db.instance_get_all()] == ['live']


# -- the conductor's compare-and-swaps under real concurrency -----------

# Each contender process runs THREADS native threads (threading backend,
# so every thread has its own connection); all of them wait for "go" on
# stdin, then make their one attempt and print its outcome.
_CONTENDER = r'''
from nova_lite import monkey_patch
import json, sys, threading
from nova_lite import config, exception
from nova_lite.db import api as db_api
conf = config.parse_args(['--config-file', sys.argv[1]])
method, threads, args = sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
db = db_api.API(conf)
go, ready, results = threading.Event(), threading.Barrier(threads + 1), []

def attempt(me):
    db.service_get_all()              # this thread's connection, opened
    ready.wait()
    go.wait()
    try:
        if method == 'work_create':
            db.work_create(args['uuid'], 'reboot', 'casting', me,
                           guard=('reboot_pending', ['active']))
            results.append('won')
        elif method == 'allocation_claim':
            host = db.allocation_claim(me, ['h1'], 1, 512, 1)
            results.append('won' if host else 'lost')
        else:
            claimed = db.work_claim(args['work'], me)
            results.append('won' if claimed else 'lost')
    except exception.NovaLiteException as exc:
        results.append(type(exc).__name__)

workers = [threading.Thread(target=attempt, args=('%s-%d' % (sys.argv[5], n),))
           for n in range(threads)]
for worker in workers:
    worker.start()
ready.wait()
print('ready', flush=True)
sys.stdin.readline()
go.set()
for worker in workers:
    worker.join()
print(json.dumps(results), flush=True)
'''


def run_contenders(conf_fixture, script, method, args, processes=3,
                   threads=4):
    """Outcomes of processes x threads simultaneous calls: ``script``
    run by each process, with argv ``config method threads args name``;
    it prints "ready", waits for "go" on stdin, then prints its threads'
    outcomes as a JSON list."""
    path = conf_fixture.write_config_file('contender.conf')
    env = dict(os.environ, NOVA_LITE_CONCURRENCY_BACKEND='threading')
    children = [subprocess.Popen(
        [sys.executable, '-c', script, path, method, str(threads),
         json.dumps(args), 'c%d' % n], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for n in range(processes)]
    try:
        for child in children:
            line = child.stdout.readline()
            assert line == 'ready\n', line + child.stderr.read()
        for child in children:
            child.stdin.write('go\n')
            child.stdin.flush()
        outcomes = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            outcomes += json.loads(out)
        return outcomes
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def _contend(conf_fixture, method, args):
    """Outcomes of 3 x 4 simultaneous ``method`` calls, sorted."""
    return sorted(run_contenders(conf_fixture, _CONTENDER, method, args))


def test_of_concurrent_guarded_actions_exactly_one_wins(db, conf_fixture):
    db.instance_create('u1', host='h1', vm_state='active')
    outcomes = _contend(conf_fixture, 'work_create', {'uuid': 'u1'})
    assert outcomes == ['InstanceActionInProgress'] * 11 + ['won']
    [work] = db.work_get_all(instance_uuid='u1')
    assert db.instance_get('u1')['task_state'] == 'reboot_pending'
    assert work['host'] == 'h1'


def test_concurrent_capacity_claims_never_overcommit(db, conf_fixture):
    # Room for 5 tiny instances; 12 claims at once (one per contender).
    db.compute_node_update('h1', hypervisor_type='fake', vcpus=5,
                           memory_mb=8192, local_gb=100)
    outcomes = _contend(conf_fixture, 'allocation_claim', {})
    assert outcomes == ['lost'] * 7 + ['won'] * 5
    assert len(db.allocation_get_all(host='h1')) == 5
    [node] = db.compute_node_get_all()
    assert (node['vcpus_used'], node['memory_mb_used'],
            node['local_gb_used']) == (5, 2560, 5)


def test_takeover_claims_and_fencing(db, conf_fixture):
    db.instance_create('u1', host='h1', vm_state='active')
    old = db.work_create('u1', 'reboot', 'casting', 'dead-conductor',
                         guard=('reboot_pending', ['active']))
    outcomes = _contend(conf_fixture, 'work_claim', {'work': {
        'id': old['id'], 'conductor_host': old['conductor_host']}})
    assert outcomes == ['lost'] * 11 + ['won']
    claimed = db.work_get(old['id'])
    assert claimed['takeovers'] == 1
    assert claimed['conductor_host'] != 'dead-conductor'
    # The old owner, only slow, is fenced: nothing it writes lands.
    with pytest.raises(exception.WorkTakenOver):
        db.work_update(old, step='done', finished=True,
                       instance={'task_state': None})
    assert db.instance_get('u1')['task_state'] == 'reboot_pending'
    assert db.work_get(old['id'])['finished_at'] is None
    done = db.work_update(claimed, step='done', finished=True,
                          instance={'task_state': None})
    assert done['finished_at'] is not None
    assert db.instance_get('u1')['task_state'] is None
    assert db.work_claim(claimed, 'late-conductor') is None


# -- inflight samples ---------------------------------------------------

def _expected_report(samples):
    """What ``inflight report`` means, computed in Python (the report
    nova_lite had before the database aggregated it)."""
    groups = {}
    for sample in samples:
        key = (sample['topic'], sample['host'] or '*',
               sample['binary'] or '-')
        groups.setdefault(key, []).append(sample)
    rows = []
    for (topic, host, binary), group in sorted(groups.items()):
        answered = [s for s in group if not s['timed_out'] and
                    not s['error']]
        row = {'topic': topic, 'host': host, 'binary': binary,
               'samples': len(answered),
               'timeouts': sum(1 for s in group if s['timed_out']),
               'errors': sum(1 for s in group if s['error']),
               'skewed': sum(1 for s in answered if s['skew']),
               'workers_max': max((s['workers'] for s in answered
                                   if s['workers'] is not None),
                                  default=None),
               'backend': next((s['backend'] for s in reversed(answered)
                                if s['backend']), None)}
        for phase in probe.PHASES:
            summary = stats.summarize([s[phase] for s in answered],
                                      inflight_commands.REPORT_PERCENTILES)
            row[phase] = ({key: summary[key] for key in ('p50', 'p95', 'max')}
                          if summary else None)
        # The host's tightest clock offset, any service's (newest of ties).
        clocked = [(s['clock_offset_bound'], -index, s)
                   for index, s in enumerate(samples)
                   if (s['host'] or '*') == host and s['clock_offset']
                   is not None and s['clock_offset_bound'] is not None
                   and not s['timed_out'] and not s['error']]
        tightest = min(clocked, key=lambda c: c[:2], default=None)
        row['clock_offset_ms'] = tightest and tightest[2]['clock_offset']
        row['clock_offset_bound_ms'] = (tightest and
                                        tightest[2]['clock_offset_bound'])
        # Who took the service's samples, answered or not.
        row['probers'] = {}
        for s in sorted(group, key=lambda s: s['prober'] or '-'):
            prober = s['prober'] or '-'
            row['probers'][prober] = row['probers'].get(prober, 0) + 1
        # What the sweep saw last: the group's latest sample's.
        latest = group[-1]
        for key in ('method', 'up', 'heartbeat_age', 'queue_messages',
                    'queue_unacked', 'queue_consumers'):
            row[key] = latest[key]
        row['flags'] = latest['flags'].split(',') if latest['flags'] else []
        rows.append(row)
    return rows


def _random_samples(rand, count):
    samples = []
    for _ in range(count):
        sample = {'topic': rand.choice(['compute', 'conductor']),
                  'host': rand.choice(['h1', 'h2', 'h3', None]),
                  'binary': rand.choice(['nova-lite-compute', None]),
                  'skew': rand.random() < 0.1,
                  'timed_out': rand.random() < 0.1,
                  'error': 'boom' if rand.random() < 0.05 else None,
                  'workers': rand.choice([None, 0, 3, 7]),
                  'backend': rand.choice([None, 'eventlet', 'threading']),
                  'greenthreads': 2,
                  # None: a sample stored before probers were recorded.
                  'prober': rand.choice(['i1-4242', 'i2-99', None]),
                  'clock_offset': (None if rand.random() < 0.1
                                   else round(rand.uniform(-5000, 5000), 3)),
                  'clock_offset_bound': (None if rand.random() < 0.1
                                         else round(rand.uniform(0, 20), 1)),
                  # None: stored before the sweep recorded them (012).
                  'method': rand.choice(['inflight', 'ping', None]),
                  'up': rand.choice([True, False, None]),
                  'heartbeat_age': rand.choice([None, 0.5, 12.25, 3600.0]),
                  'queue_messages': rand.choice([None, 0, 4]),
                  'queue_unacked': rand.choice([None, 0, 5]),
                  'queue_consumers': rand.choice([None, 0, 1]),
                  'flags': rand.choice([None, 'unreachable',
                                        'unreachable,no_consumers', 'slow'])}
        for phase in probe.PHASES:
            sample[phase] = (None if rand.random() < 0.1
                             else round(rand.uniform(0, 500), 3))
        samples.append(sample)
    return samples


def test_inflight_samples_add_report_and_purge(db, monkeypatch):
    rand = random.Random(8)
    old = _random_samples(rand, 50)
    monkeypatch.setattr(models, 'utcnow', lambda: datetime.datetime(
        2026, 1, 1))
    db.inflight_samples_add(old)
    monkeypatch.undo()
    recent = _random_samples(rand, 400)
    for start in range(0, len(recent), 100):
        db.inflight_samples_add(recent[start:start + 100])
    assert len(db.inflight_samples_since(3600)) == len(recent)
    report = inflight_commands.report_rows(db, since_minutes=60)
    assert json.dumps(report) == json.dumps(_expected_report(recent))
    assert db.inflight_samples_purge(3600) == len(old)
    assert len(db.inflight_samples_since(10 ** 9)) == len(recent)


# -- clocks -------------------------------------------------------------

def test_reference_clock_is_the_database_servers(backend, db):
    measured = db.reference_offset(5)
    if backend == 'sqlite':
        # A file on this host: the reference is this host's clock.
        assert measured == {'offset_ms': 0.0, 'bound_ms': 0.0}
        return
    # The server runs on this host, on this clock: the truth is 0, within
    # the bound (plus the servers' microsecond resolution).
    assert 0.0 < measured['bound_ms'] < 1000.0
    assert abs(measured['offset_ms']) <= measured['bound_ms'] + 0.002


def test_host_clocks_upsert_keeps_double_precision(db):
    clock = {'host': 'h1', 'offset_ms': 3000.123456789, 'bound_ms': 0.25,
             'measured_by': 'i1'}
    db.host_clocks_set([clock])
    db.host_clocks_set([dict(clock, offset_ms=-12.000001, bound_ms=0.125,
                             measured_by='i2'),
                        dict(clock, host='h2')])
    assert [(r['host'], r['offset_ms'], r['bound_ms'], r['measured_by'])
            for r in db.host_clock_get_all()] == [
        ('h1', -12.000001, 0.125, 'i2'), ('h2', 3000.123456789, 0.25, 'i1')]


# -- the CLI's errors ---------------------------------------------------

def test_empty_database_is_one_line_for_cli_and_daemon(
        backend, sql_servers, conf_fixture, tmp_path):
    url = _database_url(backend, sql_servers, str(tmp_path), 'empty')
    for module, args in (('nova_lite.cmd.manage', ['service', 'list']),
                         ('nova_lite.cmd.manage', ['inflight', 'report']),
                         ('nova_lite.cmd.scheduler', [])):
        result = _run(module, conf_fixture, *args, url=url)
        assert result.returncode == 1, result.stderr
        assert 'Traceback' not in result.stdout + result.stderr
        [line] = result.stderr.splitlines()
        assert line.endswith('has no schema; run `nova-lite-manage db '
                             'sync`'), line


@pytest.mark.parametrize('backend', SERVERS)
def test_unreachable_database_is_one_line_with_password_masked(
        backend, sql_servers, conf_fixture):
    secret = 'pw-%s' % secrets.token_hex(8)
    url = sa.engine.make_url(sql_servers(backend).database())
    for wrong in (url.set(password=secret), url.set(password=secret,
                                                    port=1)):
        result = _run('nova_lite.cmd.manage', conf_fixture, 'service',
                      'list', url=wrong.render_as_string(hide_password=False))
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert line.startswith('nova-lite-manage: error: Cannot connect to '
                               'database %s' % wrong.render_as_string())
        assert secret not in result.stdout + result.stderr


# -- real daemons -------------------------------------------------------

def _wait_up(db, daemon):
    try:
        waiters.wait_for_service(db, daemon.host, daemon.binary, timeout=60)
    except waiters.WaitTimeout:
        pytest.fail('%s never came up; its log:\n%s' % (
            daemon.binary, daemon.log_text()[-3000:]))


@pytest.mark.parametrize('backend', SERVERS)
def test_daemons_stay_up_and_build_an_instance(backend, factory, db,
                                               conf_fixture, conf,
                                               client_rpc):
    daemons = [factory.start_daemon('nova-lite-conductor', 'ctl1'),
               factory.start_daemon('nova-lite-scheduler', 'ctl1'),
               factory.start_daemon('nova-lite-compute', 'cpu1'),
               factory.start_daemon('nova-lite-compute', 'cpu2')]
    for daemon in daemons:
        _wait_up(db, daemon)
    # Up across several report intervals, as seen at every look: a
    # heartbeat that failed or came late would show it down at some point.
    heartbeats = conf.service_down_time // conf.report_interval + 3
    seen_down = []

    def all_made_heartbeats():
        services = db.service_get_all()
        seen_down.extend((s['host'], s['binary']) for s in services
                         if servicegroup.status(
                             s, conf.service_down_time) != 'up')
        return all(s['report_count'] >= heartbeats for s in services)

    waiters.wait_for(all_made_heartbeats, timeout=60, interval=0.2,
                     what='%d heartbeats of every daemon' % heartbeats)
    assert seen_down == []
    instance_uuid = str(uuid.uuid4())
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
        context.get_admin_context(), instance_uuid)
    instance = waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=30,
        what='instance to become active')
    assert instance['host'] in ('cpu1', 'cpu2')
    listing = _run('nova_lite.cmd.manage', conf_fixture, 'service', 'list',
                   '--json')
    assert listing.returncode == 0, listing.stderr
    assert sorted((r['host'], r['binary'], r['status'])
                  for r in json.loads(listing.stdout)) == [
        ('cpu1', 'nova-lite-compute', 'up'),
        ('cpu2', 'nova-lite-compute', 'up'),
        ('ctl1', 'nova-lite-conductor', 'up'),
        ('ctl1', 'nova-lite-scheduler', 'up')]
