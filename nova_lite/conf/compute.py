"""[compute] options."""

from oslo_config import cfg

compute_group = cfg.OptGroup('compute', title='Compute options')

_opts = [
    cfg.StrOpt('driver', default='fake',
               help='Name of the virt driver (from nova_lite.virt.DRIVERS): '
                    'fake, a simulated hypervisor; qemu, real QEMU '
                    'processes over QMP (see [qemu]).'),
    cfg.FloatOpt('task_poll_interval', default=0.5, min=0.01,
                 help='Seconds between polls of a running driver task.'),
    cfg.FloatOpt('block_job_abort_timeout', default=30.0, min=0.1,
                 help='Seconds a synchronous block job abort waits for the '
                      'job to go away.'),
    cfg.FloatOpt('job_acquire_timeout', default=30.0, min=0.0,
                 help='Seconds to wait to start a job on an instance that '
                      'another job holds.'),
    cfg.IntOpt('vcpus', default=0, min=0,
               help='vCPUs this host offers (os-hypervisors). 0: the '
                    'host\'s CPU count, read at start-up.'),
    cfg.IntOpt('memory_mb', default=0, min=0,
               help='Memory in MB this host offers (os-hypervisors). 0: '
                    'the host\'s physical memory, read at start-up.'),
    cfg.IntOpt('disk_gb', default=0, min=0,
               help='Disk in GB this host offers (os-hypervisors). 0: the '
                    'size of the file system holding state_path, read at '
                    'start-up.'),
]


def register_opts(conf):
    conf.register_group(compute_group)
    conf.register_opts(_opts, group=compute_group)


def list_opts():
    return [(compute_group.name, _opts)]
