"""``/os-services``: list, enable and disable services (admin only).

``PUT /os-services/{id}`` takes both forms Nova has had: the 2.1 actions
``enable``, ``disable`` and ``disable-log-reason`` with ``host`` and
``binary`` in the body (what novaclient and the CLI send at 2.1), and a
service id with ``{"status": "enabled" | "disabled", "disabled_reason":
...}`` (Nova's 2.53 form).
"""

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import policies
from nova_lite import servicegroup

_ACTIONS = ('enable', 'disable', 'disable-log-reason')


def _updated_at(service):
    value = service['last_seen_up'] or service['updated_at']
    return value.isoformat() if value else None


def view(conf, service):
    return {
        'id': service['id'],
        'binary': service['binary'],
        'host': service['host'],
        'zone': 'nova' if service['topic'] == 'compute' else 'internal',
        'status': 'disabled' if service['disabled'] else 'enabled',
        'state': servicegroup.status(service, conf.service_down_time),
        'updated_at': _updated_at(service),
        'disabled_reason': service['disabled_reason'],
    }


class Controller:
    def __init__(self, deps):
        self.deps = deps

    def index(self, req):
        """``GET /os-services[?host=H&binary=B]``."""
        self.deps.policy.authorize(common.context_of(req),
                                   policies.SERVICES_LIST)
        rows = self.deps.db.service_get_all(binary=req.GET.get('binary'))
        if req.GET.get('host'):
            rows = [row for row in rows if row['host'] == req.GET['host']]
        return common.json_response({'services': [
            view(self.deps.conf, row) for row in rows]})

    def update(self, req, service_id):
        """``PUT /os-services/{enable|disable|disable-log-reason|id}``."""
        self.deps.policy.authorize(common.context_of(req),
                                   policies.SERVICES_UPDATE)
        body = common.json_body(req)
        if service_id in _ACTIONS:
            return self._legacy_action(service_id, body)
        service = self._service(service_id)
        common.check_object(body, 'request body',
                            ('status', 'disabled_reason'),
                            required=('status',))
        if body['status'] not in ('enabled', 'disabled'):
            raise faults.Fault(400, "Invalid input for field/attribute "
                               "status: %r is not one of 'enabled', "
                               "'disabled'" % (body['status'],))
        disabled = body['status'] == 'disabled'
        reason = body.get('disabled_reason')
        if reason is not None:
            if not disabled:
                raise faults.Fault(400, 'Specifying a disabled_reason is '
                                   'only supported when the status is '
                                   'disabled.')
            reason = common.string(reason, 'disabled_reason')
        service = self.deps.db.service_set_disabled(
            service['host'], service['binary'], disabled, reason)
        return common.json_response(
            {'service': view(self.deps.conf, service)})

    def _service(self, service_id):
        for service in self.deps.db.service_get_all():
            if str(service['id']) == service_id:
                return service
        raise faults.Fault(404, 'Service %s could not be found.' %
                           service_id)

    def _legacy_action(self, action, body):
        allowed = ('host', 'binary') + (
            ('disabled_reason',) if action == 'disable-log-reason' else ())
        common.check_object(body, 'request body', allowed, required=allowed)
        host = common.string(body['host'], 'host')
        binary = common.string(body['binary'], 'binary')
        reason = (common.string(body['disabled_reason'], 'disabled_reason')
                  if action == 'disable-log-reason' else None)
        service = self.deps.db.service_set_disabled(
            host, binary, action != 'enable', reason)
        result = {'host': service['host'], 'binary': service['binary'],
                  'status': 'disabled' if service['disabled'] else 'enabled'}
        if reason is not None:
            result['disabled_reason'] = reason
        return common.json_response({'service': result})


def routes(deps):
    controller = Controller(deps)
    return [
        ('GET', '/os-services', controller.index),
        ('PUT', '/os-services/{service_id}', controller.update),
    ]
