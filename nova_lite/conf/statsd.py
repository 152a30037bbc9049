"""[statsd] options of the metrics sink."""

from oslo_config import cfg

statsd_group = cfg.OptGroup('statsd', title='statsd sink options')

_opts = [
    cfg.BoolOpt('enabled', default=False,
                help='Send inflight timings, queue gauges and every RPC\'s '
                     'timings to statsd.'),
    cfg.HostAddressOpt('host', default='127.0.0.1',
                       help='statsd server address.'),
    cfg.PortOpt('port', default=8125, help='statsd UDP port.'),
    cfg.StrOpt('prefix', default='nova_lite',
               help='Prefix of every metric name.'),
    cfg.FloatOpt('rpc_sample_rate', default=1.0, min=0.0, max=1.0,
                 help='Fraction of RPC messages whose timings '
                      '(PREFIX.rpc.server.* and PREFIX.rpc.client.*) are '
                      'sent to statsd, with the statsd sample rate so '
                      'that counts stay right. Prometheus always sees '
                      'every message.'),
]


def register_opts(conf):
    conf.register_group(statsd_group)
    conf.register_opts(_opts, group=statsd_group)


def list_opts():
    return [(statsd_group.name, _opts)]
