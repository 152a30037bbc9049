"""Client side of the compute RPC API."""

from nova_lite import rpc


class ComputeRPCAPI(rpc.RPCAPIBase):
    """Client side of the compute RPC API.

    1.0 - Initial version: spawn(instance_uuid), get_info(instance_uuid).
    """

    TOPIC = 'compute'

    def spawn(self, ctxt, host, instance_uuid):
        """Cast: boot ``instance_uuid`` on ``host``."""
        cctxt = self._require('spawn', '1.0', server=host)
        cctxt.cast(ctxt, 'spawn', instance_uuid=instance_uuid)

    def get_info(self, ctxt, host, instance_uuid):
        """Call: a dict with the instance's ``state`` on ``host``."""
        cctxt = self._require('get_info', '1.0', server=host)
        return cctxt.call(ctxt, 'get_info', instance_uuid=instance_uuid)
