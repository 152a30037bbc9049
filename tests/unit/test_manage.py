"""nova-lite-manage: service list/enable/disable, db sync, usage errors."""

import json
import subprocess
import sys

import pytest

from nova_lite.cmd import manage
from nova_lite.cmd.manage import inflight as inflight_commands
from nova_lite.cmd.manage import service as service_commands
from nova_lite.cmd import output


def _run(conf_fixture, capsys, *args):
    path = conf_fixture.write_config_file()
    code = manage.main(['--config-file', path] + list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_service_list_json_has_exactly_the_columns(conf_fixture, db, capsys):
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    code, out, _ = _run(conf_fixture, capsys, 'service', 'list', '--json')
    rows = json.loads(out)
    assert code == 0
    assert [set(r) for r in rows] == [set(service_commands.LIST_COLUMNS)]
    assert rows[0]['status'] == 'up'
    assert rows[0]['disabled'] is False


def test_service_disable_enable_roundtrip(conf_fixture, db, capsys):
    db.service_register('h1', 'nova-lite-compute', 'compute', '1.0')
    code, out, _ = _run(conf_fixture, capsys, 'service', 'disable', 'h1',
                        'nova-lite-compute', '--reason', 'maintenance')
    assert code == 0 and 'disabled' in out
    assert db.service_get('h1', 'nova-lite-compute')['disabled']
    _run(conf_fixture, capsys, 'service', 'enable', 'h1', 'nova-lite-compute')
    assert not db.service_get('h1', 'nova-lite-compute')['disabled']


def test_disable_unknown_service_is_one_line_exit_1(conf_fixture, db, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(conf_fixture, capsys, 'service', 'disable', 'nohost',
             'nova-lite-compute')
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.strip() == ('nova-lite-manage: error: No service '
                           'nova-lite-compute on host nohost')


@pytest.mark.parametrize('args', [['bogus'], ['service', 'bogus'], []])
def test_unknown_subcommand_prints_usage_exit_2(conf_fixture, capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        _run(conf_fixture, capsys, *args)
    assert exit_info.value.code == 2
    assert 'usage: nova-lite-manage' in capsys.readouterr().err


def test_db_sync_twice(conf_fixture, capsys):
    for _ in range(2):
        code, out, _ = _run(conf_fixture, capsys, 'db', 'sync')
        assert code == 0 and 'at revision' in out


def test_table_is_aligned():
    text = output.format_table(('id', 'host'), [{'id': 1, 'host': 'a'},
                                                {'id': 22, 'host': 'bbbb'}])
    lines = text.splitlines()
    assert lines[0].index('host') == lines[1].index('a') == \
        lines[2].index('bbbb')


def _manage(conf_fixture, *args, extra=None):
    """nova-lite-manage as its own process: what an operator sees."""
    path = conf_fixture.write_config_file('manage.conf', extra=extra)
    return subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file',
         path] + list(args), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize('args', [['service', 'list'],
                                  ['inflight', 'report', '--json']])
def test_empty_database_is_one_line_not_a_traceback(conf_fixture, args):
    result = _manage(conf_fixture, *args)        # no db sync
    assert result.returncode == 1
    assert result.stdout == ''
    assert 'Traceback' not in result.stderr
    assert result.stderr.splitlines() == [
        'nova-lite-manage: error: The database %s has no schema; run '
        '`nova-lite-manage db sync`' % conf_fixture.conf.database.connection]


def test_unreachable_database_is_one_line_with_password_masked(
        conf_fixture):
    result = _manage(conf_fixture, 'service', 'list', extra={'database': {
        'connection': 'postgresql+psycopg://nova:s3cr3t-pw@127.0.0.1:1/n'}})
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith('nova-lite-manage: error: Cannot connect to '
                           'database postgresql+psycopg://nova:***@'
                           '127.0.0.1:1/n: ')
    assert 's3cr3t-pw' not in result.stdout + result.stderr


def _sample(host, total, **kw):
    values = dict(topic='compute', host=host, binary='nova-lite-compute',
                  to_service=1.0, in_service=10.0, greenthread_overhead=0.5,
                  from_service=1.0, total=total, skew=False, timed_out=False,
                  error=None, workers=1, backend='eventlet')
    values.update(kw)
    return values


# Samples stored before the sweep recorded these (migration 012).
_NO_STATE = {'method': None, 'up': None, 'heartbeat_age': None,
             'queue_messages': None, 'queue_unacked': None,
             'queue_consumers': None, 'flags': []}


def test_inflight_report_of_pinged_services_never_shows_zero(
        conf_fixture, db, capsys):
    """A ping measures the round trip only: every other phase is null
    in JSON and '-' in text, never 0.  The sweep's columns are the
    latest sample's: a conductor stuck after answering is unreachable,
    with its probe waiting in its queue, while its heartbeat says up."""
    ping = dict(to_service=None, in_service=None, greenthread_overhead=None,
                from_service=None, workers=None, backend=None,
                binary='nova-conductor', topic='conductor', method='ping',
                up=True, heartbeat_age=1.5, queue_messages=0,
                queue_consumers=1, prober='i1-7')
    db.inflight_samples_add([_sample('ctl', 3.0, **ping)])
    db.inflight_samples_add([_sample('ctl', 2.0, **ping)])
    db.inflight_samples_add([_sample('ctl', None, **dict(
        ping, timed_out=True, heartbeat_age=4.5,
        queue_messages=2, queue_unacked=5, flags='unreachable'))])
    code, out, _ = _run(conf_fixture, capsys, 'inflight', 'report', '--json')
    assert code == 0
    [row] = json.loads(out)
    assert (row['samples'], row['timeouts']) == (2, 1)
    assert row['total'] == {'p50': 2.0, 'p95': 3.0, 'max': 3.0}
    for phase in ('to_service', 'in_service', 'greenthread_overhead',
                  'from_service'):
        assert row[phase] is None, phase
    assert {key: row[key] for key in _NO_STATE} == {
        'method': 'ping', 'up': True, 'heartbeat_age': 4.5,
        'queue_messages': 2, 'queue_unacked': 5, 'queue_consumers': 1,
        'flags': ['unreachable']}
    code, out, _ = _run(conf_fixture, capsys, 'inflight', 'report')
    assert code == 0
    assert out.splitlines()[2].split() == [
        'conductor', 'ctl', 'nova-conductor', '-', '2', '1', '-', '-', '-',
        '-', '-', '2.0/3.0/3.0', '-', 'i1-7:3', 'ping', 'up', '4.5s', '2/5/1',
        'unreachable']


def test_inflight_report_groups_and_summarizes(db):
    db.inflight_samples_add([_sample('a', 10.0)])
    db.inflight_samples_add([_sample('a', 30.0, workers=7)])
    db.inflight_samples_add([
        _sample('a', 20.0),
        _sample('a', None, timed_out=True, to_service=None, workers=None),
        _sample('b', 5.0, workers=None, backend=None),
        _sample('b', 6.0, backend='threading')])
    rows = inflight_commands.report_rows(db, since_minutes=60)
    assert [(r['host'], r['samples'], r['timeouts']) for r in rows] == [
        ('a', 3, 1), ('b', 2, 0)]
    assert rows[0]['total'] == {'p50': 20.0, 'p95': 30.0, 'max': 30.0}
    # A baseapi 1.1 service's samples have neither field.
    assert [(r['workers_max'], r['backend']) for r in rows] == [
        (7, 'eventlet'), (1, 'threading')]


def test_inflight_report_counts_each_probers_samples(db):
    """``probers``: every sample a prober took in the window, timeouts
    and errors included; the prober and the round are stored."""
    db.inflight_samples_add([
        _sample('a', 10.0, prober='i1-4242', round_no=7),
        _sample('a', None, timed_out=True, prober='i1-4242', round_no=8),
        _sample('a', 12.0, prober='i2-99', round_no=9),
        _sample('b', None, error='boom', prober='i2-99', round_no=9)])
    rows = inflight_commands.report_rows(db, since_minutes=60)
    assert [(r['host'], r['probers']) for r in rows] == [
        ('a', {'i1-4242': 2, 'i2-99': 1}), ('b', {'i2-99': 1})]
    assert inflight_commands.format_probers(rows[0]['probers']) == (
        'i1-4242:2,i2-99:1')
    assert inflight_commands.format_probers({}) == '-'
    stored = db.inflight_samples_since(60)
    assert [(s['prober'], s['round_no']) for s in stored] == [
        ('i1-4242', 7), ('i1-4242', 8), ('i2-99', 9), ('i2-99', 9)]


def test_inflight_report_is_aggregated_by_the_database(conf_fixture, db,
                                                       capsys, monkeypatch):
    """The report never loads the samples (millions a day at scale)."""
    db.inflight_samples_add([
        _sample('a', 10.0, clock_offset=3.0, clock_offset_bound=2.0,
                prober='i2-7', round_no=170000000),
        _sample('a', 20.0, clock_offset=5.0, clock_offset_bound=0.5,
                prober='i1-42', round_no=170000001),
        _sample(None, 1.0, binary=None, skew=True, error='boom',
                workers=None, clock_offset=9.0, clock_offset_bound=0.1)])

    def refuse(*args, **kwargs):
        raise AssertionError('the report loaded every sample')

    monkeypatch.setattr(type(db), 'inflight_samples_since', refuse)
    code, out, _ = _run(conf_fixture, capsys, 'inflight', 'report', '--json')
    assert code == 0
    phase = {'p50': 1.0, 'p95': 1.0, 'max': 1.0}
    assert out == output.to_json([
        {'topic': 'compute', 'host': '*', 'binary': '-', 'samples': 0,
         'timeouts': 0, 'errors': 1, 'skewed': 0, 'workers_max': None,
         'backend': None, 'to_service': None, 'in_service': None,
         'greenthread_overhead': None, 'from_service': None, 'total': None,
         'clock_offset_ms': None, 'clock_offset_bound_ms': None,
         # Stored before probers were recorded.
         'probers': {'-': 1}, **_NO_STATE},
        {'topic': 'compute', 'host': 'a', 'binary': 'nova-lite-compute',
         'samples': 2, 'timeouts': 0, 'errors': 0, 'skewed': 0,
         'workers_max': 1, 'backend': 'eventlet', 'to_service': phase,
         'in_service': dict(phase, p50=10.0, p95=10.0, max=10.0),
         'greenthread_overhead': dict(phase, p50=0.5, p95=0.5, max=0.5),
         'from_service': phase,
         'total': {'p50': 10.0, 'p95': 20.0, 'max': 20.0},
         # The lowest-bound sample's (NTP-style), not the latest's.
         'clock_offset_ms': 5.0, 'clock_offset_bound_ms': 0.5,
         'probers': {'i1-42': 1, 'i2-7': 1}, **_NO_STATE}],
        ) + '\n'
    code, out, _ = _run(conf_fixture, capsys, 'inflight', 'report')
    assert code == 0
    assert out.splitlines()[3].split() == [
        'compute', 'a', 'nova-lite-compute', 'eventlet', '2', '0', '1',
        '1.0/1.0/1.0', '10.0/10.0/10.0', '0.5/0.5/0.5', '1.0/1.0/1.0',
        '10.0/20.0/20.0', '+5.0±0.5', 'i1-42:1,i2-7:1', '-', '-', '-', '-',
        '-']
    assert out.splitlines()[1].split()[-6:] == [
        'probers', 'method', 'up', 'heartbeat_age', 'queue', 'flags']
