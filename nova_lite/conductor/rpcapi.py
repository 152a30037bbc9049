"""Client side of the conductor RPC API."""

from nova_lite import rpc


class ConductorRPCAPI(rpc.RPCAPIBase):
    """Client side of the conductor RPC API.

    1.0 - Initial version: build_instance(instance_uuid).
    """

    TOPIC = 'conductor'

    def build_instance(self, ctxt, instance_uuid):
        """Cast: create, schedule and spawn an instance."""
        cctxt = self._require('build_instance', '1.0')
        cctxt.cast(ctxt, 'build_instance', instance_uuid=instance_uuid)
