"""Configuration: parsing, validation, the generated sample."""

import os
import subprocess
import sys

import pytest
from oslo_config import cfg

from nova_lite import config
from nova_lite import exception
from nova_lite import rpc
from nova_lite import utils
from nova_lite.conf import messaging as messaging_conf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _write(tmp_path, text, name='nova-lite.conf'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_from_design():
    conf = config.parse_args([], conf=cfg.ConfigOpts(),
                             default_config_files=[])
    assert conf.transport_url == messaging_conf.DEFAULT_TRANSPORT_URL
    assert conf.report_interval == 10
    assert conf.service_down_time == 60
    assert conf.inflight.sleep_seconds == 1.0
    assert conf.statsd.port == 8125
    assert conf.statsd.prefix == 'nova_lite'
    assert conf.compute.driver == 'fake'
    assert conf.compute.task_poll_interval == 0.5
    # The sending pool covers the executor, so N concurrent callers never
    # exceed it.
    assert (conf.oslo_messaging_rabbit.rpc_conn_pool_size >=
            conf.executor_thread_pool_size)


def test_later_config_files_override_earlier(tmp_path):
    first = _write(tmp_path, '[DEFAULT]\nhost = one\nreport_interval = 7\n',
                   'a.conf')
    second = _write(tmp_path, '[DEFAULT]\nhost = two\n', 'b.conf')
    conf = config.parse_args(['--config-file', first, '--config-file',
                              second], conf=cfg.ConfigOpts(),
                             default_config_files=[])
    assert conf.host == 'two'
    assert conf.report_interval == 7


def test_bad_value_is_config_error(tmp_path):
    path = _write(tmp_path, '[DEFAULT]\nreport_interval = often\n')
    with pytest.raises(exception.ConfigError) as err:
        config.parse_args(['--config-file', path], conf=cfg.ConfigOpts(),
                          default_config_files=[])
    assert 'report_interval' in str(err.value)
    assert '\n' not in str(err.value)


def test_out_of_range_value_is_config_error(tmp_path):
    path = _write(tmp_path, '[inflight]\nsleep_seconds = -1\n')
    with pytest.raises(exception.ConfigError):
        config.parse_args(['--config-file', path], conf=cfg.ConfigOpts(),
                          default_config_files=[])


def test_missing_config_file_is_config_error(tmp_path):
    with pytest.raises(exception.ConfigError) as err:
        config.parse_args(['--config-file', str(tmp_path / 'nope.conf')],
                          conf=cfg.ConfigOpts(), default_config_files=[])
    assert 'nope.conf' in str(err.value)


@pytest.mark.parametrize('binary', ['nova-lite-compute', 'nova-lite-manage'])
def test_commands_exit_2_with_one_line_on_bad_config(tmp_path, binary):
    path = _write(tmp_path, '[DEFAULT]\nservice_down_time = soon\n')
    module = 'nova_lite.cmd.%s' % binary[len('nova-lite-'):]
    argv = [sys.executable, '-m', module, '--config-file', path]
    if binary == 'nova-lite-manage':
        argv += ['service', 'list']
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('%s: error:' % binary)
    assert 'service_down_time' in lines[0]


def test_sample_config_is_up_to_date(tmp_path):
    out = tmp_path / 'sample.conf'
    generator = os.path.join(os.path.dirname(sys.executable),
                             'oslo-config-generator')
    subprocess.run([generator, '--config-file',
                    os.path.join(ROOT, 'etc/oslo-config-generator/'
                                 'nova-lite.conf'),
                    '--output-file', str(out)], check=True, cwd=ROOT,
                   capture_output=True, timeout=60)
    with open(os.path.join(ROOT, 'etc', 'nova-lite.conf')) as handle:
        checked_in = handle.read()
    assert out.read_text() == checked_in, (
        'etc/nova-lite.conf drifted; regenerate it with "tox -e genconfig"')


@pytest.mark.parametrize('url,expected', [
    ('rabbit://guest:s3cret@localhost:5672/',
     'rabbit://guest:***@localhost:5672/'),
    ('rabbit://a:p1@h1:5672,b:p2@h2:5672/vh',
     'rabbit://a:***@h1:5672,b:***@h2:5672/vh'),
    ('postgresql+psycopg2://nova:pw@db/nova',
     'postgresql+psycopg2://nova:***@db/nova'),
    ('sqlite:////tmp/x.sqlite', 'sqlite:////tmp/x.sqlite'),
    ('rabbit://guest@h:5672/', 'rabbit://guest@h:5672/'),
    ('redis://h:6379?sentinel=m&sentinel_password=pw&db=1',
     'redis://h:6379?sentinel=m&sentinel_password=***&db=1'),
    ('zookeeper://h:2181?password=pw', 'zookeeper://h:2181?password=***'),
])
def test_mask_url(url, expected):
    assert utils.mask_url(url) == expected


@pytest.mark.parametrize('value,cap', [(None, None), ('1.0', '1.0'),
                                       ('2.13', '2.13')])
def test_version_cap_values(conf, value, cap):
    conf.set_override('scheduler', value, group='upgrade_levels')
    assert rpc.resolve_version_cap(conf, 'scheduler', None) == cap


def test_version_cap_auto_asks_live_services(conf):
    conf.set_override('scheduler', 'auto', group='upgrade_levels')
    asked = []
    cap = rpc.resolve_version_cap(
        conf, 'scheduler', lambda topic: asked.append(topic) or '1.3')
    assert (cap, asked) == ('1.3', ['scheduler'])


@pytest.mark.parametrize('value', ['latest', '1', '1.x', '1.0.0'])
def test_bad_version_cap_is_named_error(conf, value):
    conf.set_override('scheduler', value, group='upgrade_levels')
    with pytest.raises(exception.InvalidVersionCap) as err:
        rpc.resolve_version_cap(conf, 'scheduler', None)
    assert value in str(err.value)
