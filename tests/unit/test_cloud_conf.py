"""[cloud]: kind, services_from, control_exchange's default, bad
combinations."""

import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_lite import config
from nova_lite import exception
from nova_lite.testing import fixtures as nl_fixtures


def _parse(tmp_path, text):
    path = tmp_path / 'nova-lite.conf'
    path.write_text(text)
    return config.parse_args(['--config-file', str(path)],
                             conf=cfg.ConfigOpts(), default_config_files=[])


def test_default_is_nova_lite_as_before(tmp_path):
    conf = _parse(tmp_path, '')
    assert conf.cloud.kind == 'nova_lite'
    assert conf.cloud.services_from == 'database'
    assert conf.cloud.service_down_time == 60
    assert conf.control_exchange == 'nova_lite'


def test_kind_nova_defaults_control_exchange_to_nova(tmp_path):
    conf = _parse(tmp_path, '[cloud]\nkind = nova\n'
                  'api_database_connection = sqlite:///x.sqlite\n')
    assert conf.control_exchange == 'nova'


def test_explicit_control_exchange_wins(tmp_path):
    conf = _parse(tmp_path, '[DEFAULT]\ncontrol_exchange = openstack\n'
                  '[cloud]\nkind = nova\nservices_from = api\n'
                  'os_cloud = admin\n')
    assert conf.control_exchange == 'openstack'


def test_same_conf_parsed_again_as_nova_lite_gets_its_default_back(
        tmp_path):
    conf = cfg.ConfigOpts()
    nova = tmp_path / 'nova.conf'
    nova.write_text('[cloud]\nkind = nova\nservices_from = api\n'
                    'os_cloud = admin\n')
    config.parse_args(['--config-file', str(nova)], conf=conf,
                      default_config_files=[])
    assert conf.control_exchange == 'nova'
    config.parse_args([], conf=conf, default_config_files=[])
    assert conf.control_exchange == 'nova_lite'


@pytest.mark.parametrize('text, needs', [
    ('[cloud]\nkind = nova\n', 'api_database_connection'),
    ('[cloud]\nkind = nova\nservices_from = api\n', 'os_cloud'),
])
def test_bad_combinations_are_named_errors(tmp_path, text, needs):
    with pytest.raises(exception.CloudConfigError) as err:
        _parse(tmp_path, text)
    message = str(err.value)
    assert message.startswith('Invalid [cloud] configuration: ')
    assert needs in message and '\n' not in message


def test_nova_lite_ignores_the_nova_options(tmp_path):
    conf = _parse(tmp_path, '[cloud]\nservices_from = api\n')
    assert conf.cloud.kind == 'nova_lite'


def test_conf_fixture_applies_cloud_defaults():
    with nl_fixtures.ConfFixture(conf=cfg.ConfigOpts(), overrides={
            'cloud': {'kind': 'nova', 'services_from': 'api',
                      'os_cloud': 'admin'}}) as fixture:
        assert fixture.conf.control_exchange == 'nova'


def test_secret_connection_is_masked_in_the_sample():
    from nova_lite.conf import cloud as cloud_conf
    [(group, opts)] = cloud_conf.list_opts()
    secret = {opt.name for opt in opts if opt.secret}
    assert secret == {'api_database_connection'}


@pytest.mark.parametrize('binary', ['nova-lite-manage', 'nova-lite-ping'])
def test_commands_exit_2_with_one_line_on_bad_cloud(tmp_path, binary):
    path = tmp_path / 'nova-lite.conf'
    path.write_text('[cloud]\nkind = nova\nservices_from = api\n')
    module = 'nova_lite.cmd.%s' % binary[len('nova-lite-'):]
    argv = [sys.executable, '-m', module, '--config-file', str(path)]
    argv += ['service', 'list'] if binary == 'nova-lite-manage' else [
        'conductor']
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line == ('%s: error: Invalid [cloud] configuration: kind = nova '
                    'with services_from = api needs os_cloud (a clouds.yaml '
                    'entry)' % binary)
