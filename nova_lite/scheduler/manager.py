"""Scheduler manager: chooses the least-loaded live compute host."""

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import exception
from nova_lite import manager
from nova_lite import servicegroup

LOG = logging.getLogger(__name__)


class SchedulerManager(manager.Manager):
    """Server side of the scheduler RPC API (see ``SchedulerRPCAPI``)."""

    target = messaging.Target(version='1.1')

    @messaging.expected_exceptions(exception.NoValidHost)
    def select_host(self, context, exclude_hosts=None):
        """Return the up, enabled compute host with the fewest instances
        (deleted ones are no load).

        1.1 added ``exclude_hosts``.  Raises ``NoValidHost`` when none is
        left.
        """
        excluded = set(exclude_hosts or ())
        candidates = [
            svc['host'] for svc in self.db.service_get_all(topic='compute')
            if not svc['disabled'] and svc['host'] not in excluded
            and servicegroup.is_up(svc, self.conf.service_down_time)]
        if not candidates:
            raise exception.NoValidHost(
                reason='no up and enabled compute service')
        load = self.db.instance_count_by_host()
        host = min(sorted(candidates), key=lambda h: load.get(h, 0))
        LOG.info('Selected %s out of %s', host, candidates)
        return host
