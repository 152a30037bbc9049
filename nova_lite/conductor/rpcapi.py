"""Client side of the conductor RPC API."""

from nova_lite import rpc


class ConductorRPCAPI(rpc.RPCAPIBase):
    """Client side of the conductor RPC API.

    1.0 - Initial version: build_instance(instance_uuid).
    1.1 - Add reboot_instance, destroy_instance, migrate_instance: calls
          that claim the instance or raise InstanceActionInProgress.
    """

    TOPIC = 'conductor'

    def build_instance(self, ctxt, instance_uuid):
        """Cast: create, schedule and spawn an instance."""
        cctxt = self._require('build_instance', '1.0')
        cctxt.cast(ctxt, 'build_instance', instance_uuid=instance_uuid)

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
