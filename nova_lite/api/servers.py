"""``/servers``: list, show, create, delete (Nova's 2.1 shapes).

Create records the instance and its build work in one transaction (the
``UNASSIGNED`` owner; status BUILD at once, so a GET right after the POST
finds it) and casts ``build_instance(work_id)`` to a conductor.  Should the
cast be lost or refused, a conductor's takeover task picks the work up
after ``service_down_time``.  Delete is the conductor's guarded destroy:
409 while another action holds the server.
"""

import re
import urllib.parse

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_utils import uuidutils

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import policies
from nova_lite.compute import task_states
from nova_lite.db import api as db_api
from nova_lite import exception

LOG = logging.getLogger(__name__)

COLLECTION = 'servers'

# vm_state -> status, and the task states that override it for an active
# server (Nova's nova.api.openstack.common._STATE_MAP).
_VM_STATUS = {
    'building': 'BUILD', 'active': 'ACTIVE', 'error': 'ERROR',
    'deleted': 'DELETED', 'resized': 'VERIFY_RESIZE', 'stopped': 'SHUTOFF',
}
_TASK_STATUS = {
    'reboot_pending': 'REBOOT', 'rebooting': 'REBOOT',
    'migrate_pending': 'MIGRATING', 'migrating': 'MIGRATING',
    'resize_prep': 'RESIZE', 'resize_migrating': 'RESIZE',
    'resize_migrated': 'RESIZE', 'resize_finish': 'RESIZE',
}
# Our task states under the names Nova's clients know.
_TASK_NAMES = {'destroy_pending': 'deleting', 'destroying': 'deleting',
               'migrate_pending': 'migrating'}
# Nova's power_state numbers.
_POWER_STATES = {'nostate': 0, 'running': 1, 'paused': 3, 'shutdown': 4,
                 'crashed': 6, 'suspended': 7}
_PROGRESS_STATUSES = ('ACTIVE', 'BUILD', 'REBUILD', 'RESIZE',
                      'VERIFY_RESIZE', 'REVERT_RESIZE', 'MIGRATING')

# Create: what is used, and what a 2.1 client may send that nova_lite
# accepts and ignores (no networks, key pairs, metadata, config drives).
_CREATE_USED = ('name', 'imageRef', 'flavorRef', 'min_count', 'max_count')
_CREATE_IGNORED = ('networks', 'security_groups', 'availability_zone',
                   'OS-DCF:diskConfig', 'config_drive', 'key_name',
                   'metadata', 'user_data')


def status(instance):
    vm_state = instance['vm_state']
    if vm_state == 'active' and instance['task_state'] in _TASK_STATUS:
        return _TASK_STATUS[instance['task_state']]
    if vm_state == 'resized' and instance['task_state'] == 'resize_reverting':
        return 'REVERT_RESIZE'
    return _VM_STATUS.get(vm_state, 'UNKNOWN')


def task_state(instance):
    value = instance['task_state']
    return _TASK_NAMES.get(value, value)


def _ref(req, collection, ref):
    if not ref:
        return ''
    return {'id': ref, 'links': common.links(req, collection, ref)[1:]}


def basic_view(req, instance):
    return {'id': instance['uuid'], 'name': instance['display_name'] or '',
            'links': common.links(req, COLLECTION, instance['uuid'])}


def detail_view(req, instance, admin_attributes):
    """One server as Nova 2.1 shows it; ``admin_attributes`` adds
    OS-EXT-SRV-ATTR:* and OS-EXT-STS:*."""
    server = dict(basic_view(req, instance))
    server.update({
        'status': status(instance),
        'tenant_id': instance['project_id'] or '',
        'user_id': instance['user_id'] or '',
        'metadata': {},
        'hostId': common.host_id(instance['host'], instance['project_id']),
        'image': _ref(req, 'images', instance['image_ref']),
        'flavor': _ref(req, 'flavors', instance['flavorid']),
        'created': common.isotime(instance['created_at']),
        'updated': common.isotime(instance['updated_at'] or
                                  instance['created_at']),
        'addresses': {},
        'accessIPv4': '',
        'accessIPv6': '',
        'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': 'nova',
        'config_drive': '',
        'key_name': None,
        'OS-SRV-USG:launched_at': None,
        'OS-SRV-USG:terminated_at': None,
        'os-extended-volumes:volumes_attached': [],
    })
    if server['status'] in _PROGRESS_STATUSES:
        server['progress'] = 0
    if server['status'] in ('ERROR', 'DELETED') and instance['fault']:
        server['fault'] = {'code': 500, 'message': instance['fault'],
                           'created': server['updated']}
    if admin_attributes:
        server.update({
            'OS-EXT-SRV-ATTR:host': instance['host'],
            'OS-EXT-SRV-ATTR:hypervisor_hostname': instance['host'],
            'OS-EXT-SRV-ATTR:instance_name': 'instance-%s' %
                                             instance['uuid'],
            'OS-EXT-STS:task_state': task_state(instance),
            'OS-EXT-STS:vm_state': instance['vm_state'],
            'OS-EXT-STS:power_state': _POWER_STATES.get(
                instance['power_state'], 0),
        })
    return server


def get_instance(deps, req, server_id, rule):
    """The server, if ``rule`` allows the caller; 404 for an unknown or
    deleted one, and (as Nova's project-only queries) for another
    project's when the caller is not an admin."""
    context = common.context_of(req)
    try:
        instance = deps.db.instance_get(server_id)
    except exception.InstanceNotFound:
        instance = None
    if (instance is None or instance['vm_state'] == db_api.DELETED or
            (not context.is_admin and
             instance['project_id'] != context.project_id)):
        raise faults.Fault(404, 'Instance %s could not be found.' %
                           server_id)
    deps.policy.authorize(context, rule,
                          {'project_id': instance['project_id'],
                           'user_id': instance['user_id']})
    return instance


class Controller:
    def __init__(self, deps):
        self.deps = deps

    def _can_see_attributes(self, context):
        return self.deps.policy.authorize(
            context, policies.EXTENDED_ATTRIBUTES, fatal=False)

    def _list(self, req, action):
        context = common.context_of(req)
        self.deps.policy.authorize(context, policies.SERVERS % action)
        params = req.GET
        all_projects = False
        deleted = False
        if _flag(params.get('all_tenants')) or 'deleted' in params:
            self.deps.policy.authorize(
                context, policies.SERVERS % (action + ':get_all_tenants'))
            all_projects = _flag(params.get('all_tenants'))
            deleted = _flag(params.get('deleted')) if 'deleted' in params \
                else False
        instances = self.deps.db.instance_get_all(
            project_id=None if all_projects else context.project_id,
            deleted=deleted)
        # Newest first, as Nova sorts.
        instances.reverse()
        if params.get('name'):
            try:
                pattern = re.compile(params['name'])
            except re.error:
                raise faults.Fault(400, 'Invalid name filter: %s' %
                                   params['name'])
            instances = [i for i in instances
                         if pattern.search(i['display_name'] or '')]
        if params.get('status'):
            wanted = params['status'].upper()
            instances = [i for i in instances if status(i) == wanted]
        return _paginate(req, instances, action)

    def index(self, req):
        """``GET /servers``: id, name and links of each server."""
        page, next_links = self._list(req, 'index')
        body = {'servers': [basic_view(req, i) for i in page]}
        if next_links:
            body['servers_links'] = next_links
        return common.json_response(body)

    def detail(self, req):
        """``GET /servers/detail``."""
        page, next_links = self._list(req, 'detail')
        admin = self._can_see_attributes(common.context_of(req))
        body = {'servers': [detail_view(req, i, admin) for i in page]}
        if next_links:
            body['servers_links'] = next_links
        return common.json_response(body)

    def show(self, req, server_id):
        """``GET /servers/{server_id}``."""
        instance = get_instance(self.deps, req, server_id,
                                policies.SERVERS % 'show')
        admin = self._can_see_attributes(common.context_of(req))
        return common.json_response(
            {'server': detail_view(req, instance, admin)})

    def create(self, req):
        """``POST /servers``: 202 with the new server's id and links."""
        context = common.context_of(req)
        self.deps.policy.authorize(context, policies.SERVERS % 'create')
        body = common.check_object(common.json_body(req), 'request body',
                                   ('server', 'os:scheduler_hints'),
                                   required=('server',))
        server = common.check_object(
            body['server'], 'server', _CREATE_USED + _CREATE_IGNORED,
            required=('name', 'imageRef', 'flavorRef'))
        for count in ('min_count', 'max_count'):
            if count in server and common.positive_int(
                    server[count], count) != 1:
                raise faults.Fault(400, 'Invalid input for %s: nova_lite '
                                   'builds one server per request' % count)
        name = common.string(server['name'], 'name')
        image_ref = common.ref_id(server['imageRef'], 'imageRef')
        flavor_id = common.ref_id(server['flavorRef'], 'flavorRef')
        try:
            flavor = self.deps.db.flavor_get(flavor_id)
        except exception.FlavorNotFound as exc:
            raise faults.Fault(400, '%s.' % exc)
        instance_uuid = uuidutils.generate_uuid()
        work = self.deps.db.instance_create_with_work(
            instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
            task_state=task_states.SCHEDULING, display_name=name,
            project_id=context.project_id, user_id=context.user_id,
            image_ref=image_ref, **db_api.flavor_columns(flavor))
        self._cast_build(context, instance_uuid, work['id'])
        links = common.links(req, COLLECTION, instance_uuid)
        return common.json_response(
            {'server': {'id': instance_uuid, 'links': links,
                        'OS-DCF:diskConfig': 'MANUAL',
                        'security_groups': [{'name': 'default'}]}},
            status=202, headers={'Location': links[0]['href']})

    def _cast_build(self, context, instance_uuid, work_id):
        try:
            self.deps.conductor.build_instance(context, instance_uuid,
                                               work_id=work_id)
        except (exception.VersionCapTooLow,
                messaging.MessagingException) as exc:
            # Recorded all the same: a conductor's takeover task builds it.
            LOG.warning('Build of instance %s not cast (%s); a conductor '
                        'will take it over after service_down_time',
                        instance_uuid, exc)

    def delete(self, req, server_id):
        """``DELETE /servers/{server_id}``: 204, or 409 while another
        action holds it."""
        get_instance(self.deps, req, server_id, policies.SERVERS % 'delete')
        self.deps.conductor.destroy_instance(common.context_of(req),
                                             server_id)
        return common.json_response(None, status=204)


def _flag(value):
    return value is not None and str(value).lower() in (
        '1', 'true', 'yes', 'on', '')


def _paginate(req, instances, action):
    """Nova's ``limit`` and ``marker``: one page, and the next link when
    the page is full."""
    marker = req.GET.get('marker')
    if marker:
        uuids = [i['uuid'] for i in instances]
        if marker not in uuids:
            raise faults.Fault(400, 'marker [%s] not found' % marker)
        instances = instances[uuids.index(marker) + 1:]
    if 'limit' not in req.GET:
        return instances, None
    limit = _limit(req.GET['limit'])
    page = instances[:limit]
    if len(page) < limit or not page:
        return page, None
    path = COLLECTION + ('/detail' if action == 'detail' else '')
    query = dict(req.GET, limit=str(limit), marker=page[-1]['uuid'])
    href = '%s%s/%s?%s' % (req.host_url, common.API_PREFIX, path,
                           urllib.parse.urlencode(sorted(query.items())))
    return page, [{'rel': 'next', 'href': href}]


def _limit(value):
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise faults.Fault(400, 'limit param must be an integer >= 0')
    return limit


def routes(deps):
    controller = Controller(deps)
    return [
        ('GET', '/servers', controller.index),
        ('GET', '/servers/detail', controller.detail),
        ('POST', '/servers', controller.create),
        ('GET', '/servers/{server_id}', controller.show),
        ('DELETE', '/servers/{server_id}', controller.delete),
    ]
