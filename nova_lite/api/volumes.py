"""``/os-volumes``: Nova's old volume proxy API (2.1 shapes): create, list,
detail, show, delete.

There is no block storage behind it: a volume is a row of the ``volumes``
table, with a size and, once attached (``os-volume_attachments``), the
server and the device name it is attached as.  Created ``available``.

A conductor workflow on a server (a resize, a migration) holds the tooz
lock of the server and of each volume attached to it until it ends.  A
delete tries the volume's lock without waiting, before it looks at the
volume's state: while a workflow holds it, 409 ``conflictingRequest``
naming the volume and the server whose action holds it; else 400 for a
volume still in-use, 202 for an available one.
"""

import contextlib

from oslo_utils import uuidutils

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import policies
from nova_lite import coordination
from nova_lite import exception

AVAILABILITY_ZONE = 'nova'
# Volume sizes in GiB: what the (32-bit) column holds.
MAX_SIZE = 2 ** 31 - 1

_CREATE_KEYS = ('size', 'display_name', 'display_description',
                'availability_zone', 'volume_type', 'metadata',
                'snapshot_id')


def attachment_view(volume):
    """One attachment, as in Nova: the volume's id is the attachment's."""
    return {'id': volume['id'], 'volumeId': volume['id'],
            'serverId': volume['instance_uuid'], 'device': volume['device']}


def volume_view(volume):
    """One volume as Nova's proxy shows it (``attachments`` is ``[{}]``
    for a volume attached nowhere, as in Nova)."""
    created = volume['created_at']
    return {
        'id': volume['id'],
        'status': volume['status'],
        'size': volume['size'],
        'availabilityZone': AVAILABILITY_ZONE,
        # Cinder's timestamps, as Nova passes them on.
        'createdAt': created and created.strftime('%Y-%m-%dT%H:%M:%S.%f'),
        'displayName': volume['display_name'],
        'displayDescription': volume['display_description'],
        'volumeType': None,
        'snapshotId': None,
        'metadata': {},
        'attachments': ([attachment_view(volume)]
                        if volume['instance_uuid'] else [{}]),
    }


def get_volume(deps, req, volume_id):
    """The volume; 404 for an unknown one, and for another project's when
    the caller is not an admin."""
    context = common.context_of(req)
    try:
        volume = deps.db.volume_get(volume_id)
    except exception.VolumeNotFound:
        volume = None
    if volume is None or (not context.is_admin and
                          volume['project_id'] != context.project_id):
        raise faults.Fault(404, 'Volume %s could not be found.' % volume_id)
    return volume


@contextlib.contextmanager
def locked(deps, volume, instance_uuid=None):
    """Hold the locks of ``instance_uuid`` (if given) and ``volume`` for
    the block, or raise ``ResourceLocked`` (409) at once, naming the
    server whose action holds the lock that was not free."""
    if deps.coordinator is None:
        raise exception.CoordinationError(url='-', reason='nova-lite-api '
                                          'has no coordination backend')
    names = coordination.lock_names(instance_uuid, [volume['id']])
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(deps.coordinator.locked(names, timeout=0))
        except exception.ResourceLocked as exc:
            resource = exc.kwargs['resource']
            holder = instance_uuid
            if resource.startswith('Volume ') and volume['instance_uuid']:
                holder = volume['instance_uuid']
            reason = ('an action on server %s holds it' % holder if holder
                      else 'another action holds it')
            raise exception.ResourceLocked(resource=resource,
                                           reason=reason) from None
        yield


def _size(value):
    """Nova's schema: an integer, or a string of digits, at least 1."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if (not isinstance(value, int) or isinstance(value, bool) or
            not 1 <= value <= MAX_SIZE):
        raise faults.Fault(400, 'Invalid input for field/attribute size: '
                           'expected a whole number of GiB from 1 to %d, '
                           'got %r' % (MAX_SIZE, value))
    return value


def _optional_string(volume, key):
    value = volume.get(key)
    if value is None:
        return None
    return common.string(value, key, allow_empty=True)


def _check_unsupported(volume):
    """What the proxy API takes that nova_lite has not: said, not
    silently dropped."""
    zone = _optional_string(volume, 'availability_zone')
    if zone not in (None, AVAILABILITY_ZONE):
        raise faults.Fault(400, 'Invalid input for field/attribute '
                           'availability_zone: %r is not an availability '
                           'zone; the only one is %s' % (
                               zone, AVAILABILITY_ZONE))
    if _optional_string(volume, 'volume_type') is not None:
        raise faults.Fault(400, 'Invalid input for field/attribute '
                           'volume_type: nova_lite has no volume types')
    metadata = volume.get('metadata')
    if metadata is not None and not isinstance(metadata, dict):
        raise faults.Fault(400, 'Invalid input for field/attribute '
                           'metadata: expected an object')
    if metadata:
        raise faults.Fault(400, 'Invalid input for field/attribute '
                           'metadata: nova_lite volumes have no metadata')
    snapshot_id = _optional_string(volume, 'snapshot_id')
    if snapshot_id is not None:
        # Nova's answer for a snapshot Cinder does not have.
        raise faults.Fault(404, 'Snapshot %s could not be found.' %
                           snapshot_id)


class Controller:
    def __init__(self, deps):
        self.deps = deps

    def _authorize(self, req, project_id=None):
        context = common.context_of(req)
        target = None
        if project_id is not None:
            target = {'project_id': project_id, 'user_id': context.user_id}
        self.deps.policy.authorize(context, policies.VOLUMES, target)
        return context

    def _list(self, req):
        context = self._authorize(req)
        project_id = context.project_id
        if req.GET.get('all_tenants') not in (None, '0', 'false', 'False'):
            self.deps.policy.authorize(context,
                                       policies.VOLUMES_ALL_PROJECTS)
            project_id = None
        return {'volumes': [volume_view(v) for v in
                            self.deps.db.volume_get_all(
                                project_id=project_id)]}

    def index(self, req):
        """``GET /os-volumes``: the caller's project's volumes (every
        project's for an admin with ``all_tenants``)."""
        return common.json_response(self._list(req))

    def detail(self, req):
        """``GET /os-volumes/detail``: the same, as Nova shows both."""
        return common.json_response(self._list(req))

    def show(self, req, volume_id):
        """``GET /os-volumes/{volume_id}``."""
        volume = get_volume(self.deps, req, volume_id)
        self._authorize(req, volume['project_id'])
        return common.json_response({'volume': volume_view(volume)})

    def create(self, req):
        """``POST /os-volumes``: 200 with the new, available volume."""
        context = self._authorize(req)
        body = common.check_object(common.json_body(req), 'request body',
                                   ('volume',), required=('volume',))
        volume = common.check_object(body['volume'], 'volume', _CREATE_KEYS,
                                     required=('size',))
        size = _size(volume['size'])
        name = _optional_string(volume, 'display_name')
        description = _optional_string(volume, 'display_description')
        _check_unsupported(volume)
        created = self.deps.db.volume_create(
            uuidutils.generate_uuid(), size, project_id=context.project_id,
            display_name=name, display_description=description)
        return common.json_response({'volume': volume_view(created)})

    def delete(self, req, volume_id):
        """``DELETE /os-volumes/{volume_id}``: 202; 409 while a workflow
        holds the volume, 400 while it is attached."""
        volume = get_volume(self.deps, req, volume_id)
        self._authorize(req, volume['project_id'])
        with locked(self.deps, volume):
            self.deps.db.volume_delete(volume_id)
        return common.json_response(None, status=202)


def routes(deps):
    controller = Controller(deps)
    return [
        ('GET', '/os-volumes', controller.index),
        ('GET', '/os-volumes/detail', controller.detail),
        ('GET', '/os-volumes/{volume_id}', controller.show),
        ('POST', '/os-volumes', controller.create),
        ('DELETE', '/os-volumes/{volume_id}', controller.delete),
    ]
