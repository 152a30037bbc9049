"""[conductor] options."""

from oslo_config import cfg

conductor_group = cfg.OptGroup('conductor', title='Conductor options')

_opts = [
    cfg.FloatOpt('takeover_interval', default=10.0, min=0.1,
                 help='Seconds between looks for unfinished conductor work '
                      'whose conductor is down (per service_down_time); '
                      'such work is claimed and finished by this '
                      'conductor.'),
    cfg.IntOpt('work_retention', default=7 * 24 * 3600, min=60,
               help='Seconds finished conductor work records and deleted '
                    'instances are kept; a periodic task of the conductor '
                    'deletes older ones.'),
]


def register_opts(conf):
    conf.register_group(conductor_group)
    conf.register_opts(_opts, group=conductor_group)


def list_opts():
    return [(conductor_group.name, _opts)]
