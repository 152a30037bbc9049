"""The ``baseapi`` namespace every nova_lite service serves.

It answers whatever the service's role: operators and the inflight manager
use it to reach any registered service by topic or topic.host.
"""

import oslo_messaging as messaging

from nova_lite import rpc

NAMESPACE = 'baseapi'


class BaseAPI:
    """Server side of the base RPC API (an endpoint of every service)."""

    target = messaging.Target(namespace=NAMESPACE, version='1.0')

    def __init__(self, host, binary, version):
        self.host = host
        self.binary = binary
        self.version = version

    def ping(self, context, arg):
        """Echo ``arg`` back with who answered."""
        return {'host': self.host, 'binary': self.binary,
                'version': self.version, 'arg': arg}


class BaseRPCAPI(rpc.RPCAPIBase):
    """Client side of the base RPC API, for any topic.

    1.0 - Initial version: ping(arg).
    """

    NAMESPACE = NAMESPACE

    def __init__(self, conf, topic, timeout=None):
        self.TOPIC = topic
        super().__init__(conf, timeout=timeout)

    def _version_cap(self):
        # [upgrade_levels] caps the role APIs; baseapi is versioned apart.
        return None

    def ping(self, ctxt, arg, host=None, timeout=None):
        """Call ``ping`` on ``host`` (or any service of the topic)."""
        cctxt = self.client.prepare(server=host, timeout=timeout)
        return cctxt.call(ctxt, 'ping', arg=arg)
