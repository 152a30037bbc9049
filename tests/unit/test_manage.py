"""nova-lite-manage: service list/enable/disable, db sync, usage errors."""

import json

import pytest

from nova_lite.cmd import manage
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
