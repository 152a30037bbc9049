"""Client side of the scheduler RPC API."""

from nova_lite import rpc


class SchedulerRPCAPI(rpc.RPCAPIBase):
    """Client side of the scheduler RPC API.

    1.0 - Initial version: select_host().
    1.1 - Add select_host(exclude_hosts).
    """

    TOPIC = 'scheduler'

    def select_host(self, ctxt, exclude_hosts=None):
        """Call: the compute host a new instance should go to."""
        if not exclude_hosts and not self.can_send_version('1.1'):
            # An old scheduler answers the same question without the filter.
            return self.client.prepare(version='1.0').call(ctxt,
                                                           'select_host')
        cctxt = self._require('select_host', '1.1')
        return cctxt.call(ctxt, 'select_host',
                          exclude_hosts=list(exclude_hosts or ()))
