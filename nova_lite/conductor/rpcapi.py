"""Client side of the conductor RPC API."""

from nova_lite import rpc


class ConductorRPCAPI(rpc.RPCAPIBase):
    """Client side of the conductor RPC API.

    1.0 - Initial version: build_instance(instance_uuid).
    1.1 - Add reboot_instance, destroy_instance, migrate_instance: calls
          that claim the instance or raise InstanceActionInProgress.
    1.2 - build_instance(work_id): carry on a build whose instance and
          work the caller (nova-lite-api) recorded.
    1.3 - Add resize_instance(flavorid), confirm_resize, revert_resize:
          calls that claim the instance and return once the work is
          recorded.
    """

    TOPIC = 'conductor'

    def build_instance(self, ctxt, instance_uuid, work_id=None):
        """Cast: create, schedule and spawn an instance.

        With ``work_id`` (1.2) the instance and its build work exist
        already (``db.instance_create_with_work`` with the ``UNASSIGNED``
        owner) and the conductor claims and runs that work;
        ``VersionCapTooLow`` under a lower cap (the work is then left to
        the conductors' takeover task).
        """
        if work_id is None:
            cctxt = self._require('build_instance', '1.0')
            cctxt.cast(ctxt, 'build_instance', instance_uuid=instance_uuid)
            return
        cctxt = self._require('build_instance', '1.2')
        cctxt.cast(ctxt, 'build_instance', instance_uuid=instance_uuid,
                   work_id=work_id)

    def reboot_instance(self, ctxt, instance_uuid):
        """Call: reboot; returns the accepted action (a dict)."""
        cctxt = self._require('reboot_instance', '1.1')
        return cctxt.call(ctxt, 'reboot_instance',
                          instance_uuid=instance_uuid)

    def destroy_instance(self, ctxt, instance_uuid):
        """Call: destroy; returns the accepted action (a dict)."""
        cctxt = self._require('destroy_instance', '1.1')
        return cctxt.call(ctxt, 'destroy_instance',
                          instance_uuid=instance_uuid)

    def migrate_instance(self, ctxt, instance_uuid, dest=None):
        """Call: live-migrate to ``dest`` (None: the scheduler picks)."""
        cctxt = self._require('migrate_instance', '1.1')
        return cctxt.call(ctxt, 'migrate_instance',
                          instance_uuid=instance_uuid, dest=dest)

    def resize_instance(self, ctxt, instance_uuid, flavorid):
        """Call: resize to ``flavorid``; returns the accepted action (a
        dict with the ``migration_uuid``) before the resize is done."""
        cctxt = self._require('resize_instance', '1.3')
        return cctxt.call(ctxt, 'resize_instance',
                          instance_uuid=instance_uuid, flavorid=flavorid)

    def confirm_resize(self, ctxt, instance_uuid):
        """Call: confirm a resize that waits in VERIFY_RESIZE."""
        cctxt = self._require('confirm_resize', '1.3')
        return cctxt.call(ctxt, 'confirm_resize', instance_uuid=instance_uuid)

    def revert_resize(self, ctxt, instance_uuid):
        """Call: revert a resize that waits in VERIFY_RESIZE."""
        cctxt = self._require('revert_resize', '1.3')
        return cctxt.call(ctxt, 'revert_resize', instance_uuid=instance_uuid)
