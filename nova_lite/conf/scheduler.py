"""[scheduler] options: how far a host's capacity may be overcommitted,
and how often a resize asks again."""

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
    cfg.IntOpt('max_attempts', default=3, min=1,
               help='Targets a resize tries: when a target fails (refuses, '
                    'is down or does not answer) the scheduler is asked '
                    'again, without the hosts that failed, up to this many '
                    'times in all.'),
]


def register_opts(conf):
    conf.register_group(scheduler_group)
    conf.register_opts(_opts, group=scheduler_group)


def list_opts():
    return [(scheduler_group.name, _opts)]
