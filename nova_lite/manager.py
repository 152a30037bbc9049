"""Base class of every manager: the server side of a role's RPC API.

A manager is the endpoint a ``Service`` serves on its topic.  Public methods
are RPC methods (they take ``context`` first); methods starting with ``_``
are never reachable remotely.

Periodic tasks are oslo.service's (``oslo_service.periodic_task``), which
work under both concurrency backends; ``periodic_task`` here only adds a
spacing read from the config::

    @manager.periodic_task(spacing=lambda conf: conf.inflight.probe_interval,
                           run_immediately=True)
    def _probe(self, context):
        ...

A task that raises is logged and runs again at its next slot.
"""

import oslo_messaging as messaging
from oslo_service import periodic_task as oslo_periodic_task


def periodic_task(spacing=None, run_immediately=False):
    """Mark a manager method as a periodic task.

    ``spacing``: seconds, or ``spacing(conf)`` for a value from the config,
    or None for ``[DEFAULT] periodic_interval``.
    """
    def decorator(func):
        func = oslo_periodic_task.periodic_task(
            spacing=spacing if isinstance(spacing, (int, float)) else 0,
            run_immediately=run_immediately)(func)
        func._nova_lite_spacing = spacing
        return func
    return decorator


class Manager(oslo_periodic_task.PeriodicTasks):
    """Holds what every manager needs: conf, host, the DB API."""

    target = messaging.Target(version='1.0')

    # Public plumbing that is not RPC API: the RPC access policy refuses it.
    RPC_PRIVATE = frozenset([
        'run_periodic_tasks', 'run_periodic_tasks_in_parallel',
        'add_periodic_task', 'init_host', 'post_start_hook', 'reset',
        'cleanup_host', 'rpc_version'])

    def __init__(self, conf, host, db, binary=None):
        super().__init__(conf)
        self.conf = conf
        self.host = host
        self.db = db
        self.binary = binary
        self._resolve_spacing()

    def _resolve_spacing(self):
        # The class holds one spacing per task; an instance gets its own,
        # from its own config.
        self._periodic_spacing = dict(self._periodic_spacing)
        for name, task in self._periodic_tasks:
            spacing = getattr(task, '_nova_lite_spacing', 0)
            if spacing is None:
                self._periodic_spacing[name] = self.conf.periodic_interval
            elif callable(spacing):
                self._periodic_spacing[name] = spacing(self.conf)

    @property
    def rpc_version(self):
        return self.target.version

    def init_host(self):
        """Hook before the service starts consuming RPC messages."""

    def post_start_hook(self):
        """Hook after the RPC server started consuming."""

    def reset(self):
        """Hook after SIGHUP reloaded the mutable options."""
        self._resolve_spacing()

    def cleanup_host(self):
        """Hook after the service stopped consuming, before exit."""
