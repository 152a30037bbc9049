"""[fake_driver] options: the simulated hypervisor's latencies."""

from oslo_config import cfg

fake_driver_group = cfg.OptGroup(
    'fake_driver', title='Fake virt driver',
    help='The fake driver blocks for real (plain sleeps in driver threads), '
         'the way a remote hypervisor API does.')

_opts = [
    cfg.FloatOpt('call_latency_seconds', default=0.01, min=0.0,
                 help='How long every driver call blocks.'),
    cfg.FloatOpt('operation_seconds', default=2.0, min=0.0,
                 help='How long spawn, reboot, destroy, migrate and each '
                      'resize operation take.'),
    cfg.FloatOpt('block_job_seconds', default=2.0, min=0.0,
                 help='How long a block job takes to reach 100%.'),
    cfg.FloatOpt('block_job_abort_seconds', default=0.2, min=0.0,
                 help='How long the hypervisor takes to end an aborted '
                      'block job.'),
    cfg.ListOpt('fail_operations', default=[],
                help='Operations (spawn, reboot, destroy, migrate, '
                     'prep_resize, resize_instance, finish_resize) that '
                     "this host's fake driver always fails, for demos and "
                     'tests of rollback and retry.'),
    cfg.BoolOpt('emit_events', default=True,
                help='Emit completion events (waiters then poll only as a '
                     'fallback).'),
]


def register_opts(conf):
    conf.register_group(fake_driver_group)
    conf.register_opts(_opts, group=fake_driver_group)


def list_opts():
    return [(fake_driver_group.name, _opts)]
