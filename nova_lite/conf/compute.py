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
]


def register_opts(conf):
    conf.register_group(compute_group)
    conf.register_opts(_opts, group=compute_group)


def list_opts():
    return [(compute_group.name, _opts)]
