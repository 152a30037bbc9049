"""nova-lite-manage flavor: list and create."""

import json

import pytest

from tests.unit.test_manage import _run


def test_db_sync_seeds_novas_default_flavors(conf_fixture, db, capsys):
    code, out, _ = _run(conf_fixture, capsys, 'flavor', 'list', '--json')
    assert code == 0
    assert json.loads(out) == [
        {'id': '1', 'name': 'm1.tiny', 'vcpus': 1, 'ram': 512, 'disk': 1},
        {'id': '2', 'name': 'm1.small', 'vcpus': 1, 'ram': 2048,
         'disk': 20},
        {'id': '3', 'name': 'm1.medium', 'vcpus': 2, 'ram': 4096,
         'disk': 40},
        {'id': '4', 'name': 'm1.large', 'vcpus': 4, 'ram': 8192,
         'disk': 80},
        {'id': '5', 'name': 'm1.xlarge', 'vcpus': 8, 'ram': 16384,
         'disk': 160}]


def test_create_then_list(conf_fixture, db, capsys):
    code, out, _ = _run(conf_fixture, capsys, 'flavor', 'create', 'm1.nano',
                        '--vcpus', '1', '--ram', '128', '--id', '42',
                        '--json')
    assert code == 0
    assert json.loads(out) == {'id': '42', 'name': 'm1.nano', 'vcpus': 1,
                               'ram': 128, 'disk': 0}
    _run(conf_fixture, capsys, 'flavor', 'create', 'big', '--vcpus', '16',
         '--ram', '65536', '--disk', '500')
    code, out, _ = _run(conf_fixture, capsys, 'flavor', 'list')
    lines = out.splitlines()
    assert lines[0].split() == ['id', 'name', 'vcpus', 'ram', 'disk']
    assert lines[1].split() == ['42', 'm1.nano', '1', '128', '0']
    assert lines[-1].split()[1:] == ['big', '16', '65536', '500']
    assert len(lines[-1].split()[0]) == 36      # a generated UUID


def test_a_taken_name_or_id_is_one_line_exit_1(conf_fixture, db, capsys):
    for args in (['m1.tiny', '--id', '77'], ['other', '--id', '1']):
        with pytest.raises(SystemExit) as exit_info:
            _run(conf_fixture, capsys, 'flavor', 'create', *args,
                 '--vcpus', '1', '--ram', '64')
        err = capsys.readouterr().err
        assert exit_info.value.code == 1
        assert len(err.strip().splitlines()) == 1
        assert err.startswith('nova-lite-manage: error: A flavor named ')


@pytest.mark.parametrize('args', [
    ['x', '--vcpus', '0', '--ram', '64'],
    ['x', '--vcpus', 'two', '--ram', '64'],
    ['x', '--vcpus', '1', '--ram', '64', '--disk', '-1'],
    ['x', '--vcpus', '1'],
    [' ', '--vcpus', '1', '--ram', '64'],
    ['x', '--vcpus', '1', '--ram', '64', '--id', 'a/b'],
])
def test_bad_input_is_a_usage_error(conf_fixture, db, capsys, args):
    with pytest.raises(SystemExit) as exit_info:
        _run(conf_fixture, capsys, 'flavor', 'create', *args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip().splitlines()[-1].startswith(
        'nova-lite-manage flavor create: error: ')
    assert 'Traceback' not in err
