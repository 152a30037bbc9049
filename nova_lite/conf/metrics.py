"""[metrics] options: the per-process Prometheus and health listener."""

from oslo_config import cfg

metrics_group = cfg.OptGroup(
    'metrics', title='Prometheus /metrics and /health listener options')

_opts = [
    cfg.BoolOpt('enabled', default=True,
                help='Serve /metrics (Prometheus), /health, /livez and '
                     '/readyz on an HTTP listener of this process. RPC '
                     'timings are measured either way; this only decides '
                     'whether they are served.'),
    cfg.HostAddressOpt('bind_host', default='127.0.0.1',
                       help='Address the listener binds. Loopback by '
                            'default: the listener is not meant to face '
                            'the outside; bind a management address for '
                            'a scraper on another host.'),
    cfg.PortOpt('port', default=0,
                help='Port of the listener; 0 takes any free port. The '
                     'address actually bound is logged and written to '
                     'the service\'s row (nova-lite-manage service list, '
                     'metrics targets).'),
    cfg.FloatOpt('health_interval', default=10.0, min=0.5,
                 help='Seconds between the self round trips through the '
                      'broker behind the rpc:self health check; also '
                      'each round trip\'s timeout and /health\'s '
                      'Cache-Control max-age. /health fails once no '
                      'round trip has succeeded for two intervals.'),
    cfg.FloatOpt('lag_warn_ms', default=100.0, min=0.0,
                 help='hub:lag turns warn when the watchdog\'s 0.1 s '
                      'sleep woke up later than this (worst of the last '
                      'health interval).'),
    cfg.BoolOpt('per_service_series', default=True,
                help='On the inflight daemon, export '
                     'nova_lite_inflight_last_seconds{topic,host,phase} '
                     '(one series per service and phase). Turn off for '
                     'very large clouds; the per-topic histograms stay.'),
    cfg.IntOpt('max_connections', default=256, min=1,
               help='Most connections the listener serves at once; more '
                    'wait in the listen backlog (eventlet) or are closed '
                    '(threading).'),
    cfg.FloatOpt('read_timeout', default=10.0, min=0.1,
                 help='Seconds an idle connection to the listener is '
                      'kept before it is closed.'),
]


def register_opts(conf):
    conf.register_group(metrics_group)
    conf.register_opts(_opts, group=metrics_group)


def list_opts():
    return [(metrics_group.name, _opts)]
