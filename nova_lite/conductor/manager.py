"""Conductor manager: orchestrates operations across roles."""

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite import exception
from nova_lite import manager
from nova_lite.scheduler import rpcapi as scheduler_rpcapi

LOG = logging.getLogger(__name__)


class ConductorManager(manager.Manager):
    """Server side of the conductor RPC API (see ``ConductorRPCAPI``)."""

    target = messaging.Target(version='1.0')

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scheduler_rpcapi = None
        self._compute_rpcapi = None

    @property
    def scheduler_rpcapi(self):
        # Built on first use: rpc.init() runs after managers are created.
        if self._scheduler_rpcapi is None:
            self._scheduler_rpcapi = scheduler_rpcapi.SchedulerRPCAPI(
                self.conf, db=self.db)
        return self._scheduler_rpcapi

    @property
    def compute_rpcapi(self):
        if self._compute_rpcapi is None:
            self._compute_rpcapi = compute_rpcapi.ComputeRPCAPI(
                self.conf, db=self.db)
        return self._compute_rpcapi

    def build_instance(self, context, instance_uuid):
        """Cast: schedule ``instance_uuid`` and have its compute spawn it.

        A scheduling failure leaves the instance in ERROR with the reason,
        so the cast's outcome can be read from the instances table.
        """
        self.db.instance_create(instance_uuid, vm_state='building',
                                task_state='scheduling')
        try:
            host = self.scheduler_rpcapi.select_host(context)
        except (exception.NoValidHost, messaging.MessagingTimeout) as exc:
            LOG.warning('Cannot schedule %s: %s', instance_uuid, exc)
            self.db.instance_update(instance_uuid, vm_state='error',
                                    task_state=None, fault=str(exc))
            return
        self.db.instance_update(instance_uuid, host=host,
                                task_state='spawning')
        self.compute_rpcapi.spawn(context, host, instance_uuid)
