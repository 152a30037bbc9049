"""``/flavors``: list, detail and show (Nova's 2.1 shapes).

The table is seeded with Nova's historical m1.* flavors by ``db sync``;
``nova-lite-manage flavor create`` adds more.  Any authenticated user may
read them.
"""

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite import exception

COLLECTION = 'flavors'


def basic_view(req, flavor):
    return {'id': flavor['flavorid'], 'name': flavor['name'],
            'links': common.links(req, COLLECTION, flavor['flavorid'])}


def detail_view(req, flavor):
    view = basic_view(req, flavor)
    view.update({
        'ram': flavor['memory_mb'],
        'disk': flavor['root_gb'],
        'vcpus': flavor['vcpus'],
        'OS-FLV-EXT-DATA:ephemeral': 0,
        'OS-FLV-DISABLED:disabled': False,
        'swap': '',
        'rxtx_factor': 1.0,
        'os-flavor-access:is_public': True,
    })
    return view


class Controller:
    def __init__(self, deps):
        self.deps = deps

    def index(self, req):
        return common.json_response({'flavors': [
            basic_view(req, f) for f in self.deps.db.flavor_get_all()]})

    def detail(self, req):
        return common.json_response({'flavors': [
            detail_view(req, f) for f in self.deps.db.flavor_get_all()]})

    def show(self, req, flavor_id):
        try:
            flavor = self.deps.db.flavor_get(flavor_id)
        except exception.FlavorNotFound as exc:
            raise faults.Fault(404, '%s.' % exc)
        return common.json_response({'flavor': detail_view(req, flavor)})


def routes(deps):
    controller = Controller(deps)
    return [
        ('GET', '/flavors', controller.index),
        ('GET', '/flavors/detail', controller.detail),
        ('GET', '/flavors/{flavor_id}', controller.show),
    ]
