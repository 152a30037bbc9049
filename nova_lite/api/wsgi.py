"""The WSGI app: middleware, routing and microversions.

    RequestId -> FaultWrapper -> BodySizeLimit -> version discovery
                                                  | auth -> Router

``RequestId`` names every request (``req-<uuid>``), puts the id on every
response as ``x-openstack-request-id`` and ``x-compute-request-id``, and
logs one line per request under it.  The router serves each path with and
without a project id (``/v2.1/servers``, ``/v2.1/{project_id}/servers``),
and only microversion 2.1.
"""

import re
import time

from oslo_log import log as logging
from oslo_utils import uuidutils
import routes
import webob.dec

from nova_lite.api import auth
from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import flavors
from nova_lite.api import hypervisors
from nova_lite.api import policies
from nova_lite.api import server_actions
from nova_lite.api import servers
from nova_lite.api import services
from nova_lite.api import versions
from nova_lite.api import volume_attachments
from nova_lite.api import volumes
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context as nova_context

LOG = logging.getLogger(__name__)

REQUEST_ID_HEADERS = ('x-openstack-request-id', 'x-compute-request-id')
_REQUEST_ID_RE = re.compile(r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-'
                            r'[0-9a-f]{4}-[0-9a-f]{12}$')

VERSION = '2.1'
_VERSION_HEADERS = {
    'OpenStack-API-Version': 'compute %s' % VERSION,
    'X-OpenStack-Nova-API-Version': VERSION,
    'Vary': 'OpenStack-API-Version, X-OpenStack-Nova-API-Version',
}
_VERSION_RE = re.compile(r'^([1-9]\d*)\.([1-9]\d*|0)$')

# The resource modules, each with routes(deps).
RESOURCES = (servers, server_actions, flavors, services, hypervisors,
             volumes, volume_attachments)


class RequestId:
    """Outermost: the request id, its response headers, the access log."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        request_id = 'req-%s' % uuidutils.generate_uuid()
        req.environ[auth.REQUEST_ID_KEY] = request_id
        incoming = req.headers.get('X-OpenStack-Request-ID', '')
        if _REQUEST_ID_RE.match(incoming):
            # A caller's own id ties our request to its (as Nova does).
            req.environ[auth.GLOBAL_REQUEST_ID_KEY] = incoming
        # Until auth knows who asks, a bare context: every log line of the
        # request carries its id, and none the previous request's.
        nova_context.RequestContext(
            request_id=request_id,
            global_request_id=req.environ.get(auth.GLOBAL_REQUEST_ID_KEY),
            overwrite=True)
        started = time.monotonic()
        resp = req.get_response(self.application)
        for header in REQUEST_ID_HEADERS:
            resp.headers[header] = request_id
        LOG.info('%s "%s %s" status: %s len: %s time: %.4f',
                 req.remote_addr, req.method, req.path_qs, resp.status_int,
                 resp.content_length or 0, time.monotonic() - started)
        return resp


class BodySizeLimit:
    """413 for a body over ``[api] max_request_body_size``, before the
    body is read (a chunked one is read only up to the limit)."""

    def __init__(self, application, limit):
        self.application = application
        self.limit = limit

    @webob.dec.wsgify
    def __call__(self, req):
        length = req.content_length
        if length is not None and length > self.limit:
            return self._too_large()
        if length is None and req.is_body_readable:
            body = req.body_file_raw.read(self.limit + 1)
            if len(body) > self.limit:
                return self._too_large()
            req.body = body
        return req.get_response(self.application)

    def _too_large(self):
        return faults.response(413, 'Request is too large: the limit is %d '
                               'bytes' % self.limit)


class VersionDiscovery:
    """``GET /`` and ``GET /v2.1`` answer without authentication."""

    PATHS = ('', '/', common.API_PREFIX, common.API_PREFIX + '/')

    def __init__(self, authenticated):
        self.authenticated = authenticated

    @webob.dec.wsgify
    def __call__(self, req):
        if req.path_info in self.PATHS:
            if req.method not in ('GET', 'HEAD'):
                return faults.response(405, 'Method not allowed')
            if req.path_info in ('', '/'):
                return versions.index(req)
            return versions.show(req)
        return req.get_response(self.authenticated)


def _check_microversion(req):
    """The one microversion served, 2.1; 'latest' means it too."""
    requested = None
    header = req.headers.get('OpenStack-API-Version', '')
    for item in header.split(','):
        service, _sep, version = item.strip().partition(' ')
        if service.lower() == 'compute':
            requested = version.strip()
    if requested is None:
        requested = req.headers.get('X-OpenStack-Nova-API-Version')
    if not requested or requested.lower() == 'latest':
        return
    match = _VERSION_RE.match(requested.strip())
    if not match:
        raise faults.Fault(400, 'API Version String %s is of invalid format. '
                           'Must be of format MajorNum.MinorNum.' % requested)
    if (int(match.group(1)), int(match.group(2))) != (2, 1):
        raise faults.Fault(406, 'Version %s is not supported by the API. '
                           'Minimum is %s and maximum is %s.' % (
                               requested, VERSION, VERSION))


class Router:
    """Routes a path and method to a controller method."""

    def __init__(self, deps):
        self._mapper = routes.Mapper()
        self._any_method = routes.Mapper()
        for module in RESOURCES:
            for method, path, handler in module.routes(deps):
                for prefix in (common.API_PREFIX,
                               common.API_PREFIX + '/{project_id}'):
                    self._mapper.connect(prefix + path, handler=handler,
                                         conditions={'method': [method]})
                    self._any_method.connect(prefix + path, handler=None)

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            resp = self._dispatch(req)
        except Exception as exc:  # noqa: BLE001 - the rest to FaultWrapper
            fault = faults.from_exception(exc)
            if fault is None:
                raise
            if fault.code >= 500:
                LOG.warning('%s %s: %s', req.method, req.path, exc)
            resp = faults.response(fault.code, fault.message, fault.headers)
        resp.headers.update(_VERSION_HEADERS)
        return resp

    def _dispatch(self, req):
        match = self._mapper.match(req.path_info, environ=req.environ)
        if match is None:
            if self._any_method.match(req.path_info) is not None:
                raise faults.Fault(405, 'Method %s is not allowed on %s' % (
                    req.method, req.path))
            raise faults.Fault(404, 'The resource could not be found.')
        _check_microversion(req)
        kwargs = {key: value for key, value in match.items()
                  if key not in ('handler', 'project_id')}
        project_id = match.get('project_id')
        context = common.context_of(req)
        if project_id is not None and project_id != context.project_id:
            raise faults.Fault(400, "Malformed request URL: URL's project_id "
                               "'%s' doesn't match Context's project_id "
                               "'%s'" % (project_id, context.project_id))
        return match['handler'](req, **kwargs)


def build_app(conf, db, conductor=None, policy=None, coordinator=None):
    """The whole WSGI app for this config.

    ``coordinator``: a started ``coordination.Coordinator`` (the API
    service's); without one, a change of a volume answers 503.
    """
    deps = common.Deps(
        conf, db, policy or policies.Policy(conf),
        conductor or conductor_rpcapi.ConductorRPCAPI(conf, db=db),
        coordinator)
    app = auth.wrap(conf, Router(deps))
    app = VersionDiscovery(app)
    app = BodySizeLimit(app, conf.api.max_request_body_size)
    return RequestId(faults.FaultWrapper(app))
