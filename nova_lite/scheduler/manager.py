"""Scheduler manager: chooses the least-loaded live compute host.

Given an instance with a flavor snapshot (1.2), it also filters the hosts
on free capacity (RAM, vCPU and disk, from ``compute_nodes``) and claims
the instance's amounts on the chosen host (``allocations``) in the same
transaction as the choice: see ``db.api.API.allocation_claim``.  For a
resize (1.3) it claims the migration's new flavor, with the migration's
uuid as the consumer (the instance's own claim stays on its source).
"""

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import exception
from nova_lite import manager
from nova_lite import servicegroup

LOG = logging.getLogger(__name__)

# (filter name, capacity column, used column, the instance's column).
CAPACITY_FILTERS = (
    ('RamFilter', 'memory_mb', 'memory_mb_used', 'memory_mb'),
    ('CoreFilter', 'vcpus', 'vcpus_used', 'vcpus'),
    ('DiskFilter', 'local_gb', 'local_gb_used', 'root_gb'),
)


def requested_resources(instance):
    """``(vcpus, memory_mb, local_gb)`` of the instance's flavor snapshot,
    or None when it has none (it is placed without a claim)."""
    values = tuple(instance.get(column) for column in
                   ('vcpus', 'memory_mb', 'root_gb'))
    return None if None in values else values


def allocation_ratios(conf):
    """``(cpu, ram, disk)`` overcommit ratios, in CAPACITY_FILTERS'
    order of claim arguments (vCPU, RAM, disk)."""
    opts = conf.scheduler
    return (opts.cpu_allocation_ratio, opts.ram_allocation_ratio,
            opts.disk_allocation_ratio)


def filter_hosts(hosts, nodes, instance, ratios=(1.0, 1.0, 1.0)):
    """The ``hosts`` whose node has room for ``instance`` (capacity
    times ``ratios``), in order; a host that reported no capacity has
    none."""
    by_host = {node['host']: node for node in nodes}
    passed = [host for host in hosts if host in by_host]
    cpu, ram, disk = ratios
    ratio_of = {'vcpus': cpu, 'memory_mb': ram, 'local_gb': disk}
    for name, capacity, used, wanted in CAPACITY_FILTERS:
        passed = [host for host in passed
                  if by_host[host][capacity] * ratio_of[capacity]
                  - by_host[host][used] >= instance[wanted]]
        LOG.debug('%s: %s pass', name, passed)
    return passed


class SchedulerManager(manager.Manager):
    """Server side of the scheduler RPC API (see ``SchedulerRPCAPI``)."""

    target = messaging.Target(version='1.3')

    @messaging.expected_exceptions(exception.NoValidHost)
    def select_host(self, context, exclude_hosts=None, instance_uuid=None,
                    migration_uuid=None):
        """Return the up, enabled compute host with the fewest instances
        (deleted ones are no load).

        1.1 added ``exclude_hosts``.  1.2 added ``instance_uuid``: when
        that instance has a flavor snapshot, only hosts with room for it
        are candidates, and its claim is recorded on the host returned.
        Raises ``NoValidHost`` when none is left.

        1.3 added ``migration_uuid``: the hosts are filtered on the
        migration's new flavor, which is claimed under the migration's
        uuid (a claim it held before, on a target that failed, is
        released in the same transaction).
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
        ordered = sorted(sorted(candidates), key=lambda h: load.get(h, 0))
        if migration_uuid:
            migration = self.db.migration_get(migration_uuid)
            instance = dict(migration['new_flavor'], uuid=migration_uuid)
        elif instance_uuid:
            instance = self.db.instance_get(instance_uuid)
        else:
            instance = None
        wanted = requested_resources(instance) if instance else None
        if wanted is None:
            host = ordered[0]
        else:
            host = self._claim(instance, ordered, wanted,
                               for_resize=bool(migration_uuid))
        LOG.info('Selected %s out of %s', host, candidates)
        return host

    def _claim(self, instance, ordered, wanted, for_resize=False):
        ratios = allocation_ratios(self.conf)
        roomy = filter_hosts(ordered, self.db.compute_node_get_all(),
                             instance, ratios)
        # The filters read counters that a concurrent claim may change;
        # the claim itself re-checks them atomically.
        host = self.db.allocation_claim(instance['uuid'], roomy, *wanted,
                                        ratios=ratios, for_resize=for_resize)
        if host is None:
            vcpus, memory_mb, local_gb = wanted
            raise exception.NoValidHost(
                reason='no up and enabled compute host has room for '
                       '%d vCPUs, %d MB RAM and %d GB disk'
                       % (vcpus, memory_mb, local_gb))
        return host
