"""A compute host's capacity, as os-hypervisors shows it.

Written to ``compute_nodes`` once at start-up: ``[compute] vcpus``,
``memory_mb`` and ``disk_gb``, or what the machine has where they are 0.
What the instances use is summed from their flavors when asked.
"""

import os

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def _host_memory_mb():
    try:
        return (os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
                // (1024 * 1024))
    except (ValueError, OSError):
        return 0


def _disk_gb(path):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        stat = os.statvfs(path or '/')
    except OSError:
        return 0
    return stat.f_blocks * stat.f_frsize // (1024 ** 3)


def capacity(conf):
    """``{'vcpus', 'memory_mb', 'local_gb'}`` of this host."""
    return {
        'vcpus': conf.compute.vcpus or os.cpu_count() or 1,
        'memory_mb': conf.compute.memory_mb or _host_memory_mb(),
        'local_gb': conf.compute.disk_gb or _disk_gb(conf.state_path),
    }


def report_capacity(conf, db, host):
    """Record this host's capacity and hypervisor type."""
    values = capacity(conf)
    db.compute_node_update(host, hypervisor_type=conf.compute.driver,
                           **values)
    LOG.info('Capacity of %s: %d vCPUs, %d MB, %d GB', host,
             values['vcpus'], values['memory_mb'], values['local_gb'])
