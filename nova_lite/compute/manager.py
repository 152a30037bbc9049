"""Compute manager: owns the instances of one host."""

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import exception
from nova_lite import manager

LOG = logging.getLogger(__name__)


class ComputeManager(manager.Manager):
    """Server side of the compute RPC API (see ``ComputeRPCAPI``)."""

    target = messaging.Target(version='1.0')

    def _get_own_instance(self, instance_uuid):
        instance = self.db.instance_get(instance_uuid)
        if instance['host'] != self.host:
            # Never act on another host's instance, even if a stale message
            # reached this one.
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        return instance

    def spawn(self, context, instance_uuid):
        """Cast: boot ``instance_uuid`` on this host."""
        try:
            self._get_own_instance(instance_uuid)
        except exception.InstanceNotFound:
            LOG.warning('spawn: instance %s is not on %s; ignored',
                        instance_uuid, self.host)
            return
        self.db.instance_update(instance_uuid, vm_state='active',
                                power_state='running', task_state=None)
        LOG.info('Spawned instance %s', instance_uuid)

    @messaging.expected_exceptions(exception.InstanceNotFound)
    def get_info(self, context, instance_uuid):
        """Call: the instance's state on this host, e.g. ``running``."""
        instance = self._get_own_instance(instance_uuid)
        return {'uuid': instance_uuid, 'host': self.host,
                'state': instance['power_state'],
                'vm_state': instance['vm_state']}
