"""[statsd] options of the metrics sink."""

from oslo_config import cfg

statsd_group = cfg.OptGroup('statsd', title='statsd sink options')

_opts = [
    cfg.BoolOpt('enabled', default=False,
                help='Send inflight timings and queue gauges to statsd.'),
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='statsd server address.'),
    cfg.PortOpt('port', default=8125, help='statsd UDP port.'),
    cfg.StrOpt('prefix', default='nova_lite',
               help='Prefix of every metric name.'),
]


def register_opts(conf):
    conf.register_group(statsd_group)
    conf.register_opts(_opts, group=statsd_group)


def list_opts():
    return [(statsd_group.name, _opts)]
