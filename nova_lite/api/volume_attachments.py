"""``/servers/{server_id}/os-volume_attachments``: list, show, attach,
detach (Nova's 2.1 shapes).

Attach and detach try the locks of the server and the volume without
waiting (409 while a conductor workflow holds either), then change the
volume in one transaction that also guards the server: 409 while it has a
task (as Nova's ``check_instance_state``), or in a state that takes no
volume.  An attach without a device name gets the first free of
/dev/vdb ... /dev/vdz; one the server already uses is 409.
"""

from oslo_utils import uuidutils

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import policies
from nova_lite.api import servers
from nova_lite.api import volumes
from nova_lite.db import volumes as db_volumes

_RULE = policies.VOLUME_ATTACHMENTS


def _attached(deps, req, server_id, volume_id):
    """The volume attached to the server; 404 when it is not."""
    volume = volumes.get_volume(deps, req, volume_id)
    if volume['instance_uuid'] != server_id:
        raise faults.Fault(404, 'Volume %s is not attached to server %s.'
                           % (volume_id, server_id))
    return volume


class Controller:
    def __init__(self, deps):
        self.deps = deps

    def index(self, req, server_id):
        """``GET``: the volumes attached to the server."""
        servers.get_instance(self.deps, req, server_id, _RULE % 'index')
        attached = self.deps.db.volume_get_all(instance_uuid=server_id)
        return common.json_response({'volumeAttachments': [
            volumes.attachment_view(v) for v in attached]})

    def show(self, req, server_id, volume_id):
        """``GET .../{volume_id}``."""
        servers.get_instance(self.deps, req, server_id, _RULE % 'show')
        volume = _attached(self.deps, req, server_id, volume_id)
        return common.json_response(
            {'volumeAttachment': volumes.attachment_view(volume)})

    def create(self, req, server_id):
        """``POST {"volumeAttachment": {"volumeId": V, "device"?: D}}``:
        200 with the attachment."""
        body = common.check_object(common.json_body(req), 'request body',
                                   ('volumeAttachment',),
                                   required=('volumeAttachment',))
        attachment = common.check_object(
            body['volumeAttachment'], 'volumeAttachment',
            ('volumeId', 'device'), required=('volumeId',))
        volume_id = attachment['volumeId']
        if not (isinstance(volume_id, str) and
                uuidutils.is_uuid_like(volume_id)):
            raise faults.Fault(400, 'Invalid input for field/attribute '
                               'volumeId: %r is not a uuid' % (volume_id,))
        device = attachment.get('device')
        if device is not None:
            db_volumes.check_device(device)
        servers.get_instance(self.deps, req, server_id, _RULE % 'create')
        volume = volumes.get_volume(self.deps, req, volume_id)
        with volumes.locked(self.deps, volume, server_id):
            attached = self.deps.db.volume_attach(volume_id, server_id,
                                                  device=device)
        return common.json_response(
            {'volumeAttachment': volumes.attachment_view(attached)})

    def delete(self, req, server_id, volume_id):
        """``DELETE .../{volume_id}``: 202."""
        servers.get_instance(self.deps, req, server_id, _RULE % 'delete')
        volume = _attached(self.deps, req, server_id, volume_id)
        with volumes.locked(self.deps, volume, server_id):
            self.deps.db.volume_detach(volume_id, server_id)
        return common.json_response(None, status=202)


def routes(deps):
    controller = Controller(deps)
    path = '/servers/{server_id}/os-volume_attachments'
    return [
        ('GET', path, controller.index),
        ('POST', path, controller.create),
        ('GET', path + '/{volume_id}', controller.show),
        ('DELETE', path + '/{volume_id}', controller.delete),
    ]
