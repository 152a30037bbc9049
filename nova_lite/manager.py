"""Base class of every manager: the server side of a role's RPC API.

A manager is the endpoint a ``Service`` serves on its topic.  Public methods
are RPC methods (they take ``context`` first); methods starting with ``_``
are never reachable remotely.
"""

import oslo_messaging as messaging

from nova_lite import periodic


class Manager(periodic.PeriodicTasks):
    """Holds what every manager needs: conf, host, the DB API."""

    target = messaging.Target(version='1.0')

    def __init__(self, conf, host, db, binary=None):
        self.conf = conf
        self.host = host
        self.db = db
        self.binary = binary

    @property
    def rpc_version(self):
        return self.target.version

    def init_host(self):
        """Hook before the service starts consuming RPC messages."""

    def post_start_hook(self):
        """Hook after the RPC server started consuming."""

    def cleanup_host(self):
        """Hook after the service stopped consuming, before exit."""
