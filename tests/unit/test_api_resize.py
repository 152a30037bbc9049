"""The resize actions of nova-lite-api: body checks, the 202/204/409
answers, and a resize through the API to VERIFY_RESIZE and back."""

import pytest

from nova_lite.api import wsgi
from nova_lite import exception
from nova_lite.testing import waiters
from tests.unit.test_api import _create
from tests.unit.test_api import _request
from tests.unit.test_api import _show
from tests.unit.test_api import api_conf  # noqa: F401
from tests.unit.test_api import app  # noqa: F401
from tests.unit.test_api import cloud_app  # noqa: F401
from tests.unit.test_api import conductor  # noqa: F401
from tests.unit.test_api import MEMBER
from tests.unit.test_api import Recorder


def _action(app, server_id, body, token='admin:admin'):
    return _request(app, 'POST', '/v2.1/servers/%s/action' % server_id,
                    body=body, token=token)


@pytest.mark.parametrize('body,message', [
    ({'resize': {}}, "'flavorRef' is a required property"),
    ({'resize': {'flavorRef': '2', 'size': 3}},
     'additional properties are not allowed (size)'),
    ({'resize': {'flavorRef': ''}}, 'flavorRef'),
    ({'resize': {'flavorRef': 'nine'}}, 'Flavor nine could not be found.'),
    ({'resize': '2'}, 'expected an object'),
    ({'confirmResize': {}}, 'expected null'),
    ({'revertResize': 1}, 'expected null'),
])
def test_malformed_resize_is_400(app, conductor, body, message):
    server_id = _create(app, flavor='1')
    resp = _action(app, server_id, body)
    assert resp.status_int == 400, resp.text
    assert message in resp.json['badRequest']['message']
    assert [name for name, *_ in conductor.calls] == ['build_instance']


def test_resize_to_the_same_flavor_is_400_only_for_a_resizable_server(
        app, conductor, db):
    """As Nova's check_instance_state comes first: an ACTIVE server is
    refused at once; a server in VERIFY_RESIZE (its flavor already the
    new one) goes to the conductor, whose state check answers 409."""
    server_id = _create(app, flavor='1')
    db.instance_update(server_id, vm_state='active', task_state=None)
    resp = _action(app, server_id, {'resize': {'flavorRef': '1'}})
    assert resp.status_int == 400, resp.text
    assert ('When resizing, instances must change flavor!' in
            resp.json['badRequest']['message'])
    db.instance_update(server_id, vm_state='resized')
    resp = _action(app, server_id, {'resize': {'flavorRef': '1'}})
    assert [name for name, *_ in conductor.calls] == [
        'build_instance', 'resize_instance']


def test_resize_actions_call_the_conductor(app, conductor):
    server_id = _create(app, flavor='1')
    link = 'http://localhost/v2.1/flavors/2'

    resp = _action(app, server_id, {'resize': {
        'flavorRef': link, 'OS-DCF:diskConfig': 'AUTO'}})
    assert (resp.status_int, resp.body) == (202, b'')
    assert _action(app, server_id, {'confirmResize': None}).status_int == 204
    assert _action(app, server_id, {'revertResize': None}).status_int == 202

    assert [(name, args) for name, _, args, _ in conductor.calls[1:]] == [
        ('resize_instance', (server_id, '2')),
        ('confirm_resize', (server_id,)),
        ('revert_resize', (server_id,))]


@pytest.mark.parametrize('body', [{'resize': {'flavorRef': '2'}},
                                  {'confirmResize': None}])
def test_the_guard_gives_409(api_conf, db, body):  # noqa: F811
    server_id = _create(wsgi.build_app(api_conf, db, conductor=Recorder()))
    busy = wsgi.build_app(api_conf, db, conductor=Recorder(
        exception.InstanceActionInProgress(instance_uuid=server_id,
                                           action='resize',
                                           task_state='rebooting')))
    resp = _action(busy, server_id, body)
    assert resp.status_int == 409
    assert 'already rebooting' in resp.json['conflictingRequest']['message']


def test_resize_through_the_api(cloud_app, db):  # noqa: F811
    server_id = _create(cloud_app, flavor='1', token=MEMBER)

    def status(wanted):
        waiters.wait_for(
            lambda: _show(cloud_app, server_id).json['server']['status']
            == wanted and db.instance_get(server_id)['task_state'] is None,
            timeout=15, what='the server to be %s' % wanted)
        return _show(cloud_app, server_id).json['server']

    status('ACTIVE')
    # An owner may resize, as Nova's default policy says.
    assert _action(cloud_app, server_id, {'resize': {'flavorRef': '2'}},
                   token=MEMBER).status_int == 202
    resized = status('VERIFY_RESIZE')
    assert resized['flavor']['id'] == '2'
    # Only confirm or revert now.
    assert _action(cloud_app, server_id, {'resize': {'flavorRef': '3'}},
                   token=MEMBER).status_int == 409

    assert _action(cloud_app, server_id, {'revertResize': None},
                   token=MEMBER).status_int == 202
    assert status('ACTIVE')['flavor']['id'] == '1'
    assert _action(cloud_app, server_id, {'confirmResize': None},
                   token=MEMBER).status_int == 409
