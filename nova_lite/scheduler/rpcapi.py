"""Client side of the scheduler RPC API."""

from nova_lite import rpc


class SchedulerRPCAPI(rpc.RPCAPIBase):
    """Client side of the scheduler RPC API.

    1.0 - Initial version: select_host().
    1.1 - Add select_host(exclude_hosts).
    1.2 - Add select_host(instance_uuid): filter on free capacity, claim.
    1.3 - Add select_host(migration_uuid): claim a resize's new flavor
          under the migration's uuid.
    """

    TOPIC = 'scheduler'

    def select_host(self, ctxt, exclude_hosts=None, instance_uuid=None,
                    migration_uuid=None):
        """Call: the compute host a new instance should go to.

        With ``instance_uuid`` (1.2) the scheduler claims the instance's
        flavor on that host; an older scheduler places it without a claim.
        With ``migration_uuid`` (1.3; ``VersionCapTooLow`` under a lower
        cap) it claims the resize's new flavor for the migration.
        """
        if migration_uuid:
            cctxt = self._require('select_host', '1.3')
            return cctxt.call(ctxt, 'select_host',
                              exclude_hosts=list(exclude_hosts or ()),
                              migration_uuid=migration_uuid)
        if instance_uuid and self.can_send_version('1.2'):
            cctxt = self.client.prepare(version='1.2')
            return cctxt.call(ctxt, 'select_host',
                              exclude_hosts=list(exclude_hosts or ()),
                              instance_uuid=instance_uuid)
        if not exclude_hosts and not self.can_send_version('1.1'):
            # An old scheduler answers the same question without the filter.
            return self.client.prepare(version='1.0').call(ctxt,
                                                           'select_host')
        cctxt = self._require('select_host', '1.1')
        return cctxt.call(ctxt, 'select_host',
                          exclude_hosts=list(exclude_hosts or ()))
