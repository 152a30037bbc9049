"""nova_lite's service list on a real Nova 34 (the ``nova_cloud`` fixture,
nova_lite/testing/nova_cloud.py): both sources list nova-conductor,
nova-scheduler and nova-compute as up, through ``nova-lite-manage service
list --json`` as an operator runs it."""

import json
import os
import subprocess
import sys

import pytest

from nova_lite.cmd.manage import service as service_commands
from nova_lite.testing import waiters

NOVA_BINARIES = {'nova-conductor': ('conductor', 'internal'),
                 'nova-scheduler': ('scheduler', 'internal'),
                 'nova-compute': ('compute', 'nova')}


def _service_list(conf_fixture, nova_cloud, services_from):
    cloud = {'kind': 'nova', 'services_from': services_from}
    if services_from == 'database':
        cloud['api_database_connection'] = nova_cloud.api_database_connection
    else:
        cloud['os_cloud'] = nova_cloud.cloud_name
    path = conf_fixture.write_config_file(
        'manage-%s.conf' % services_from,
        extra={'DEFAULT': {'transport_url': nova_cloud.transport_url},
               'cloud': cloud})
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=nova_cloud.clouds_yaml)
    result = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file', path,
         'service', 'list', '--json'],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr
    return json.loads(result.stdout)


def _all_up(rows, host):
    found = {row['binary']: row for row in rows if row['host'] == host}
    # updated_at stays None until a service's first heartbeat (Nova's
    # report_interval, 10 s).
    if set(found) == set(NOVA_BINARIES) and all(
            found[binary]['status'] == 'up' and found[binary]['updated_at']
            for binary in NOVA_BINARIES):
        return found
    return None


@pytest.mark.parametrize('services_from', ['database', 'api'])
def test_both_sources_list_nova_services_up(nova_cloud, conf_fixture,
                                            services_from):
    found = waiters.wait_for(
        lambda: _all_up(_service_list(conf_fixture, nova_cloud,
                                      services_from), nova_cloud.host),
        timeout=90, interval=1,
        what='conductor, scheduler and compute up in Nova\'s %s'
             % services_from)
    for binary, (topic, zone) in NOVA_BINARIES.items():
        row = found[binary]
        assert tuple(row) == service_commands.NOVA_LIST_COLUMNS
        assert (row['topic'], row['zone'], row['disabled']) == (
            topic, zone, False), row
        assert row['metrics'] is None
        assert len(row['id']) == 36, row     # Nova's service uuid


def test_sources_agree(nova_cloud, conf_fixture):
    """The same services, by the same uuids, from Nova's databases and
    from its os-services."""
    def identities(services_from):
        return {(row['id'], row['host'], row['binary'], row['zone'],
                 row['disabled'])
                for row in _service_list(conf_fixture, nova_cloud,
                                         services_from)}
    assert identities('database') == identities('api')

