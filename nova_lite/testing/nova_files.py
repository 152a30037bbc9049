"""The files a test Nova cloud runs from: nova.conf, placement.conf, an
api-paste.ini whose keystone pipeline has a test-only identity filter in
place of ``authtoken``, that filter's module, and a clouds.yaml.

Each writer takes the state directory and returns the path it wrote.
"""

import configparser
import os

import yaml

# The paste filter, a module of its own that the fixture puts on nova-api's
# PYTHONPATH.  It stands in for keystonemiddleware's authtoken: every request
# is an admin of one project, as if Keystone had validated a token.
AUTH_MODULE = 'nova_lite_test_identity'
AUTH_FILTER = '''"""Test-only identity for nova-api (written by nova_lite's
test fixture): every request is the admin of project %(project)r.  NEVER use
this outside a test: it lets anyone in."""


def filter_factory(global_conf, **local_conf):
    def _filter(app):
        def identity(environ, start_response):
            environ.update({
                'HTTP_X_IDENTITY_STATUS': 'Confirmed',
                'HTTP_X_USER_ID': %(user)r,
                'HTTP_X_USER_NAME': %(user)r,
                'HTTP_X_PROJECT_ID': %(project)r,
                'HTTP_X_PROJECT_NAME': %(project)r,
                'HTTP_X_USER_DOMAIN_ID': 'default',
                'HTTP_X_PROJECT_DOMAIN_ID': 'default',
                'HTTP_X_ROLES': 'admin,member,reader',
            })
            return app(environ, start_response)
        return identity
    return _filter
'''
# nova-api's WSGI entry point for gunicorn: Nova parses sys.argv for its own
# options, and gunicorn's would fail that parse.
WSGI_MODULE = 'nova_lite_test_wsgi'
WSGI_APP = '''# nova-api under a WSGI server (from nova_lite's test fixture).
import sys

sys.argv = sys.argv[:1]
from nova.wsgi.osapi_compute import application  # noqa
'''
USER = 'admin'
PROJECT = 'nova-lite-test'
CLOUD_NAME = 'nova-test'


def write_nova_conf(state, host, transport_url, placement_url, overrides):
    """nova.conf for nova-manage, the services and nova-api.

    ``overrides`` is ``{group: {option: value}}`` on top of these values.
    """
    values = {
        'DEFAULT': {
            'host': host,
            'state_path': state,
            'transport_url': transport_url,
            # The fake driver, with a node uuid that survives a restart
            # (FakeDriver draws a new one per process, and a second start
            # then fails on a duplicate compute node record).
            'compute_driver': 'fake.PredictableNodeUUIDDriver',
            'my_ip': '127.0.0.1',
            'debug': 'false',
            'rpc_ping_enabled': 'true',
            'graceful_shutdown_timeout': '5',
        },
        # One process per service: a signal to the pid reaches the process
        # that consumes the queue.
        'conductor': {'workers': '1'},
        'scheduler': {'workers': '1'},
        'api': {'auth_strategy': 'keystone'},
        'api_database': {'connection': sqlite_url(state, 'nova_api')},
        'database': {'connection': sqlite_url(state, 'nova_cell1')},
        'oslo_concurrency': {'lock_path': os.path.join(state, 'lock')},
        'wsgi': {'api_paste_config': os.path.join(state, 'api-paste.ini')},
        'placement': {
            # keystoneauth's admin_token plugin: no Keystone; it sends
            # X-Auth-Token, which placement's noauth2 reads as the admin.
            'auth_type': 'admin_token',
            'token': USER,
            'endpoint': placement_url,
            'endpoint_override': placement_url,
            'region_name': 'RegionOne',
        },
        'oslo_messaging_notifications': {'driver': 'noop'},
    }
    _merge(values, overrides)
    return _write_ini(os.path.join(state, 'nova.conf'), values)


def write_placement_conf(state):
    """placement.conf: SQLite, and noauth2 (the token names the user)."""
    values = {
        'DEFAULT': {'debug': 'false'},
        'api': {'auth_strategy': 'noauth2'},
        'placement_database': {
            'connection': sqlite_url(state, 'placement')},
    }
    return _write_ini(os.path.join(state, 'placement.conf'), values)


def write_api_paste(state, nova_paste_ini):
    """Nova's own api-paste.ini with our identity filter in place of
    ``authtoken``, the filter's module beside it, and the WSGI entry
    module (``WSGI_MODULE:application``)."""
    with open(nova_paste_ini) as handle:
        text = handle.read()
    if ' authtoken keystonecontext ' not in text:
        raise ValueError('%s has no "authtoken keystonecontext" pipeline '
                         'to replace' % nova_paste_ini)
    text = text.replace(' authtoken keystonecontext ',
                        ' nova_lite_identity keystonecontext ')
    text += ('\n[filter:nova_lite_identity]\n'
             'paste.filter_factory = %s:filter_factory\n' % AUTH_MODULE)
    path = os.path.join(state, 'api-paste.ini')
    with open(path, 'w') as handle:
        handle.write(text)
    with open(os.path.join(state, AUTH_MODULE + '.py'), 'w') as handle:
        handle.write(AUTH_FILTER % {'user': USER, 'project': PROJECT})
    with open(os.path.join(state, WSGI_MODULE + '.py'), 'w') as handle:
        handle.write(WSGI_APP)
    return path


def write_clouds_yaml(state, compute_url, placement_url):
    """clouds.yaml with one entry, ``nova-test``: keystoneauth's
    ``admin_token`` plugin and per-service endpoint overrides, so that
    openstacksdk calls the compute API with no Keystone at all."""
    cloud = {
        'auth_type': 'admin_token',
        'auth': {'endpoint': compute_url, 'token': USER},
        'region_name': 'RegionOne',
        'compute_endpoint_override': compute_url,
        'placement_endpoint_override': placement_url,
        'identity_api_version': '3',
    }
    path = os.path.join(state, 'clouds.yaml')
    with open(path, 'w') as handle:
        yaml.safe_dump({'clouds': {CLOUD_NAME: cloud}}, handle,
                       default_flow_style=False)
    return path


def sqlite_url(state, name):
    return 'sqlite:///%s' % os.path.join(state, name + '.sqlite')


def _merge(values, overrides):
    for group, options in (overrides or {}).items():
        values.setdefault(group, {}).update(
            {name: str(value) for name, value in options.items()})


def _write_ini(path, values):
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    for group, options in values.items():
        if group != 'DEFAULT':
            parser.add_section(group)
        for name, value in options.items():
            parser.set(group, name, value)
    with open(path, 'w') as handle:
        parser.write(handle)
    return path
