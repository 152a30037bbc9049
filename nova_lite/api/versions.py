"""Version discovery: ``GET /`` and ``GET /v2.1``, with no token.

One version, v2.1, whose only microversion is 2.1 (``min_version`` and
``version`` both 2.1): clients that negotiate settle on 2.1.
"""

from nova_lite.api import common

UPDATED = '2013-07-23T11:33:21Z'


def _v21(req):
    return {
        'id': 'v2.1',
        'status': 'CURRENT',
        'version': '2.1',
        'min_version': '2.1',
        'updated': UPDATED,
        'links': [{'rel': 'self',
                   'href': '%s%s/' % (req.host_url, common.API_PREFIX)}],
    }


def index(req):
    """``GET /``: every version (there is one)."""
    return common.json_response({'versions': [_v21(req)]})


def show(req):
    """``GET /v2.1``: the version with its media types."""
    version = _v21(req)
    version['links'].append({
        'rel': 'describedby', 'type': 'text/html',
        'href': 'https://docs.openstack.org/api-ref/compute/'})
    version['media-types'] = [{
        'base': 'application/json',
        'type': 'application/vnd.openstack.compute+json;version=2.1'}]
    return common.json_response({'version': version})
