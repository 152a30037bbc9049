"""The volume queries on SQLite, PostgreSQL and MariaDB: states, errors,
and their compare-and-swaps under real concurrency (several processes,
several threads each, released at once)."""

import pytest

from nova_lite import exception
from tests.functional import test_sql_backends

# The backends' fixtures: SQLite, PostgreSQL and MariaDB, a fresh database
# per backend, emptied before each test.
backend = test_sql_backends.backend
conf_fixture = test_sql_backends.conf_fixture
db = test_sql_backends.db

PROCESSES, THREADS = 3, 4

_CONTENDER = r'''
from nova_lite import monkey_patch
import json, sys, threading
from nova_lite import config, exception
from nova_lite.db import api as db_api
conf = config.parse_args(['--config-file', sys.argv[1]])
method, args = sys.argv[2], json.loads(sys.argv[4])
threads = int(sys.argv[3])
db = db_api.API(conf)
go, ready, results = threading.Event(), threading.Barrier(threads + 1), []

def attempt(me):
    db.volume_get_all()               # this thread's connection, opened
    ready.wait()
    go.wait()
    try:
        row = getattr(db, method)(*[a % {'me': me} for a in args])
        results.append(['won', row and row['device']])
    except exception.NovaLiteException as exc:
        results.append([type(exc).__name__, None])

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


def _contenders():
    return ['c%d-%d' % (p, t) for p in range(PROCESSES)
            for t in range(THREADS)]


def _contend(conf_fixture, method, *args):
    """[outcome, device] of each of PROCESSES x THREADS simultaneous
    ``db.<method>(*args)`` calls, '%(me)s' in an arg being the caller's
    name (c<process>-<thread>)."""
    return test_sql_backends.run_contenders(
        conf_fixture, _CONTENDER, method, args, PROCESSES, THREADS)


def test_volume_states_and_errors(db):
    db.instance_create('i1', vm_state='active')
    before = db.instance_get('i1')
    created = db.volume_create('v1', 10, project_id='p1', display_name='n')
    assert (created['status'], created['size'], created['project_id'],
            created['instance_uuid']) == ('available', 10, 'p1', None)
    db.volume_create('v2', 1, project_id='p2')
    assert [v['id'] for v in db.volume_get_all(project_id='p1')] == ['v1']
    assert {v['id'] for v in db.volume_get_all()} == {'v1', 'v2'}

    attached = db.volume_attach('v1', 'i1')
    assert (attached['status'], attached['instance_uuid'],
            attached['device']) == ('in-use', 'i1', '/dev/vdb')
    assert db.volume_attach('v2', 'i1', device='/dev/vdz')['device'] == (
        '/dev/vdz')
    assert db.volume_ids_attached('i1') == ['v1', 'v2']
    assert [v['id'] for v in db.volume_get_all(instance_uuid='i1')] == [
        'v1', 'v2']
    # The server's guard changed nothing of the server.
    assert db.instance_get('i1') == before

    with pytest.raises(exception.VolumeInUse):
        db.volume_attach('v1', 'i1')
    with pytest.raises(exception.VolumeInUse):
        db.volume_delete('v1')
    with pytest.raises(exception.VolumeNotAttached):
        db.volume_detach('v9', 'i1')
    with pytest.raises(exception.InstanceNotFound):
        db.volume_detach('v1', 'no-such-server')
    db.volume_create('v3', 1)
    with pytest.raises(exception.DevicePathInUse):
        db.volume_attach('v3', 'i1', device='/dev/vdb')
    with pytest.raises(exception.VolumeNotFound):
        db.volume_attach('v9', 'i1')
    db.instance_update('i1', task_state='resize_prep')
    with pytest.raises(exception.InstanceActionInProgress):
        db.volume_attach('v3', 'i1')
    with pytest.raises(exception.InstanceActionInProgress):
        db.volume_detach('v1', 'i1')
    db.instance_update('i1', task_state=None)

    detached = db.volume_detach('v1', 'i1')
    assert (detached['status'], detached['instance_uuid'],
            detached['device']) == ('available', None, None)
    with pytest.raises(exception.VolumeNotAttached):
        db.volume_detach('v1', 'i1')
    db.volume_delete('v1')
    with pytest.raises(exception.VolumeNotFound):
        db.volume_get('v1')
    with pytest.raises(exception.VolumeNotFound):
        db.volume_delete('v1')
    assert db.volume_ids_attached('i1') == ['v2']
    # A destroyed server's volumes are freed whatever its state.
    db.volume_attach('v3', 'i1')
    db.instance_update('i1', vm_state='deleted', task_state='destroying')
    assert db.volume_detach_all('i1') == 2
    assert db.volume_ids_attached('i1') == []
    assert {(v['id'], v['status'], v['device']) for v in
            db.volume_get_all()} == {('v2', 'available', None),
                                     ('v3', 'available', None)}
    assert db.volume_detach_all('i1') == 0


def test_of_concurrent_attaches_of_one_volume_exactly_one_wins(
        db, conf_fixture):
    for me in _contenders():
        db.instance_create('i-' + me, vm_state='active')
    db.volume_create('v1', 1)
    outcomes = _contend(conf_fixture, 'volume_attach', 'v1', 'i-%(me)s')
    assert sorted(o for o, _device in outcomes) == (
        ['VolumeInUse'] * (PROCESSES * THREADS - 1) + ['won'])
    volume = db.volume_get('v1')
    assert volume['status'] == 'in-use'
    assert [db.volume_ids_attached('i-' + me) for me in _contenders()
            ].count(['v1']) == 1


def test_concurrent_attaches_to_one_server_get_distinct_devices(
        db, conf_fixture):
    db.instance_create('i1', vm_state='active')
    for me in _contenders():
        db.volume_create('v-' + me, 1)
    outcomes = _contend(conf_fixture, 'volume_attach', 'v-%(me)s', 'i1')
    assert [o for o, _device in outcomes] == ['won'] * (PROCESSES * THREADS)
    devices = sorted(v['device'] for v in db.volume_get_all(
        instance_uuid='i1'))
    assert devices == ['/dev/vd%s' % c for c in 'bcdefghijklm']


def test_of_concurrent_deletes_of_one_volume_exactly_one_wins(
        db, conf_fixture):
    db.volume_create('v1', 1)
    outcomes = _contend(conf_fixture, 'volume_delete', 'v1')
    assert sorted(o for o, _device in outcomes) == (
        ['VolumeNotFound'] * (PROCESSES * THREADS - 1) + ['won'])
    with pytest.raises(exception.VolumeNotFound):
        db.volume_get('v1')
