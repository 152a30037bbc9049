"""Nova's JSON fault bodies, and which error gets which status.

    {"conflictingRequest": {"code": 409, "message": "..."}}

A controller raises ``Fault`` (or a nova_lite error that ``from_exception``
knows); ``FaultWrapper`` turns whatever escapes into such a body.  Never a
traceback or an HTML page: an unexpected error is logged with its
traceback and answered with a 500 ``computeFault`` that says only that.
"""

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_serialization import jsonutils
import webob
import webob.dec

from nova_lite import exception

LOG = logging.getLogger(__name__)

# Nova's names (nova.api.openstack.wsgi.Fault); any other status is a
# computeFault.
FAULT_NAMES = {
    400: 'badRequest',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'itemNotFound',
    405: 'badMethod',
    409: 'conflictingRequest',
    413: 'overLimit',
    415: 'badMediaType',
    429: 'overLimit',
    501: 'notImplemented',
    503: 'serviceUnavailable',
}

# nova_lite errors a request can cause, by status.
_STATUS_OF = (
    (exception.PolicyNotAuthorized, 403),
    (exception.InstanceNotFound, 404),
    (exception.ServiceNotFound, 404),
    (exception.FlavorNotFound, 404),
    (exception.VolumeNotFound, 404),   # VolumeNotAttached too
    (exception.ResourceLocked, 409),
    (exception.InvalidState, 409),     # InstanceActionInProgress,
                                       # DevicePathInUse too
    (exception.NoValidHost, 400),
    (exception.ComputeHostNotFound, 400),
    (exception.ComputeServiceUnavailable, 400),
    (exception.InvalidInput, 400),
    (exception.DBConnectionError, 503),
    (exception.CoordinationError, 503),
)


class Fault(Exception):
    """An HTTP error with Nova's JSON body."""

    def __init__(self, code, message, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def response(code, message, headers=None):
    """A webob response with the fault body for ``code``."""
    name = FAULT_NAMES.get(code, 'computeFault')
    resp = webob.Response(status=code, content_type='application/json',
                          charset='UTF-8')
    resp.body = jsonutils.dump_as_bytes(
        {name: {'code': code, 'message': message}})
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def from_exception(exc):
    """The ``Fault`` for an error a request can cause, or None."""
    if isinstance(exc, Fault):
        return exc
    if isinstance(exc, messaging.MessagingTimeout):
        return Fault(503, 'A service did not answer in time; try again.')
    for cls, code in _STATUS_OF:
        if isinstance(exc, cls):
            return Fault(code, str(exc))
    return None


class FaultWrapper:
    """Middleware: every error below it becomes a JSON fault."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            return req.get_response(self.application)
        except Exception as exc:  # noqa: BLE001 - nothing escapes as HTML
            fault = from_exception(exc)
            if fault is None:
                LOG.exception('Unexpected error in %s %s', req.method,
                              req.path)
                fault = Fault(500, 'Unexpected API Error. Please report '
                              'this at the nova_lite project and attach the '
                              'nova-lite-api log if possible.')
            elif fault.code >= 500:
                LOG.warning('%s %s: %s', req.method, req.path, exc)
            return response(fault.code, fault.message, fault.headers)
