"""[scheduler] options: how far a host's capacity may be overcommitted."""

from oslo_config import cfg

scheduler_group = cfg.OptGroup('scheduler', title='Scheduler options')

# Nova's historical defaults (its Core, Ram and Disk filters).
_opts = [
    cfg.FloatOpt('cpu_allocation_ratio', default=16.0, min=0.0,
                 help='Virtual CPUs the scheduler may claim per physical '
                      'one a compute host reports.'),
    cfg.FloatOpt('ram_allocation_ratio', default=1.5, min=0.0,
                 help='MB of RAM the scheduler may claim per MB a compute '
                      'host reports.'),
    cfg.FloatOpt('disk_allocation_ratio', default=1.0, min=0.0,
                 help='GB of disk the scheduler may claim per GB a compute '
                      'host reports.'),
]


def register_opts(conf):
    conf.register_group(scheduler_group)
    conf.register_opts(_opts, group=scheduler_group)


def list_opts():
    return [(scheduler_group.name, _opts)]
