"""Client side of the inflight RPC API."""

from nova_lite import rpc


class InflightRPCAPI(rpc.RPCAPIBase):
    """Client side of the inflight RPC API.

    1.0 - Initial version: probe_now().
    """

    TOPIC = 'inflight'

    def probe_now(self, ctxt, host=None, timeout=None):
        """Call: run a probe round now; returns the round's summary."""
        cctxt = self._require('probe_now', '1.0', server=host,
                              timeout=timeout)
        return cctxt.call(ctxt, 'probe_now')
