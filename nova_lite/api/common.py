"""What the resource modules share: links, timestamps, request bodies and
their checks, the request's context."""

import hashlib

from oslo_serialization import jsonutils
import webob

from nova_lite.api import faults

CONTEXT_KEY = 'nova_lite.context'
API_PREFIX = '/v2.1'

# Nova's parameter_types.boolean: what a 2.1 client may send for a flag.
_TRUE = (True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes',
         'yes')
_FALSE = (False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO',
          'No', 'no')


def context_of(req):
    return req.environ[CONTEXT_KEY]


def isotime(value):
    """Nova's timestamps: ``2026-11-24T09:38:55Z``, or None."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat() + 'Z'


def links(req, collection, item_id):
    """The ``self`` and ``bookmark`` links of one resource."""
    base = req.host_url
    return [
        {'rel': 'self',
         'href': '%s%s/%s/%s' % (base, API_PREFIX, collection, item_id)},
        {'rel': 'bookmark',
         'href': '%s/%s/%s' % (base, collection, item_id)},
    ]


def host_id(host, project_id):
    """Nova's hostId: the host hashed with the project, '' if none."""
    if not host:
        return ''
    return hashlib.sha224(('%s%s' % (project_id or '', host)).encode()
                          ).hexdigest()


def json_body(req):
    """The request body as a JSON object; 400 when it is not one."""
    try:
        body = jsonutils.loads(req.body.decode('utf-8') if req.body else '')
    except (ValueError, UnicodeDecodeError):
        raise faults.Fault(400, 'Malformed request body')
    if not isinstance(body, dict):
        raise faults.Fault(400, 'Malformed request body: expected a JSON '
                           'object')
    return body


def single_key(body, allowed):
    """``(key, value)`` of a body that holds exactly one of ``allowed``."""
    keys = [key for key in body if key in allowed]
    if len(body) != 1 or len(keys) != 1:
        raise faults.Fault(400, 'Invalid input: the body must hold exactly '
                           'one of %s' % ', '.join(sorted(allowed)))
    return keys[0], body[keys[0]]


def check_object(value, what, allowed, required=()):
    """``value`` must be a JSON object with only ``allowed`` keys, all of
    ``required`` among them."""
    if not isinstance(value, dict):
        raise faults.Fault(400, 'Invalid input for %s: expected an object'
                           % what)
    extra = sorted(set(value) - set(allowed))
    if extra:
        raise faults.Fault(400, 'Invalid input for %s: additional '
                           'properties are not allowed (%s)' % (
                               what, ', '.join(extra)))
    missing = [key for key in required if key not in value]
    if missing:
        raise faults.Fault(400, "Invalid input for %s: '%s' is a required "
                           'property' % (what, missing[0]))
    return value


def boolean(value, what):
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise faults.Fault(400, 'Invalid input for field/attribute %s: %r is '
                       'not a boolean' % (what, value))


def string(value, what, max_length=255, allow_empty=False):
    if not isinstance(value, str) or len(value) > max_length or (
            not allow_empty and not value.strip()):
        raise faults.Fault(400, 'Invalid input for field/attribute %s: '
                           'expected a non-blank string of at most %d '
                           'characters' % (what, max_length))
    return value


def ref_id(value, what):
    """An id, or the last path segment of an href (Nova accepts both for
    ``flavorRef`` and ``imageRef``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    value = string(value, what)
    return value.rstrip('/').rsplit('/', 1)[-1]


def positive_int(value, what):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 1:
        raise faults.Fault(400, 'Invalid input for %s: expected a positive '
                           'integer, got %r' % (what, value))
    return number


def json_response(body, status=200, headers=None):
    """A JSON webob response (no body for None, as for 202 and 204)."""
    resp = webob.Response(status=status, headers=headers or {})
    if body is not None:
        resp.content_type = 'application/json'
        resp.charset = 'UTF-8'
        resp.body = jsonutils.dump_as_bytes(body)
    else:
        resp.content_type = None
    return resp


class Deps:
    """What the controllers use: config, DB, policy, the conductor, and
    the process's ``coordination.Coordinator`` (the locks of servers and
    volumes)."""

    def __init__(self, conf, db, policy, conductor, coordinator=None):
        self.conf = conf
        self.db = db
        self.policy = policy
        self.conductor = conductor
        self.coordinator = coordinator
