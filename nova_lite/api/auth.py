"""Who is asking: ``[api] auth_strategy``.

- ``noauth2`` (development, as Nova's): ``X-Auth-Token: user:project``;
  the user ``admin`` has the admin role.  Nothing is checked.
- ``keystone``: keystonemiddleware's ``auth_token`` validates the token
  (configured in ``[keystone_authtoken]``) and passes the identity on in
  ``X-User-Id``, ``X-Project-Id`` and ``X-Roles``.

Either way the request gets a ``RequestContext`` with the request id
(``wsgi.RequestId`` set it), and never the token: the context travels in
every RPC message and shows in log lines.
"""

import webob.dec

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite import context as nova_context
from nova_lite import exception

REQUEST_ID_KEY = 'openstack.request_id'
GLOBAL_REQUEST_ID_KEY = 'openstack.global_request_id'


def make_context(req, user_id, project_id, roles):
    """The request's context; it becomes the thread's current one, so the
    API's own log lines carry the request id too."""
    return nova_context.RequestContext(
        user_id=user_id, project_id=project_id, roles=roles,
        is_admin='admin' in roles,
        request_id=req.environ.get(REQUEST_ID_KEY),
        global_request_id=req.environ.get(GLOBAL_REQUEST_ID_KEY),
        overwrite=True)


def _unauthorized():
    return faults.response(401, 'Authentication required',
                           {'WWW-Authenticate': 'Keystone uri="none"'})


class NoAuth2:
    """``X-Auth-Token: user:project`` (a bare ``user`` means project
    ``user``); 401 without a token."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        token = req.headers.get('X-Auth-Token', '').strip()
        if not token:
            return _unauthorized()
        user_id, _sep, project_id = token.partition(':')
        roles = (['admin', 'member', 'reader'] if user_id == 'admin'
                 else ['member', 'reader'])
        req.environ[common.CONTEXT_KEY] = make_context(
            req, user_id, project_id or user_id, roles)
        return req.get_response(self.application)


class KeystoneContext:
    """Behind auth_token: the context from the identity headers it set."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        if req.headers.get('X-Identity-Status') != 'Confirmed':
            return _unauthorized()
        user_id = req.headers.get('X-User-Id') or req.headers.get('X-User')
        project_id = (req.headers.get('X-Project-Id') or
                      req.headers.get('X-Tenant-Id'))
        roles = [role.strip() for role in
                 req.headers.get('X-Roles', '').split(',') if role.strip()]
        req.environ[common.CONTEXT_KEY] = make_context(req, user_id,
                                                       project_id, roles)
        return req.get_response(self.application)


def wrap(conf, application):
    """``application`` behind the configured authentication."""
    if conf.api.auth_strategy == 'noauth2':
        return NoAuth2(application)
    # Imported here: noauth2 deployments (and the tests) never load it.
    from keystonemiddleware import auth_token
    protocol = auth_token.AuthProtocol(KeystoneContext(application),
                                       {'oslo_config_config': conf})
    group = getattr(conf, auth_token._base.AUTHTOKEN_GROUP)
    if not (group.auth_type or group.auth_section):
        # Without it every request would fail deep in keystoneauth.
        raise exception.ConfigError(
            reason='[api] auth_strategy = keystone needs [%s] auth_type '
                   '(and its options: auth_url, username, password, ...); '
                   'for development, auth_strategy = noauth2' %
                   auth_token._base.AUTHTOKEN_GROUP)
    return protocol
