"""A process's metrics endpoint: the watchdog, the listener, the health.

``service.serve`` makes one per process (nova-lite-all's services share
it) and starts it in three steps::

    endpoint = ProcessEndpoint(conf, version)
    endpoint.start()                 # watchdog, gauges, the listener
    svc.metrics_address = endpoint.address     # written to the row
    svc.start(); endpoint.watch(svc)           # its rpc:self checks begin

The watchdog and the gauges run with ``[metrics] enabled = false`` too;
only the listener is left out.
"""

from oslo_log import log as logging

from nova_lite import concurrency
from nova_lite import exception
from nova_lite.metrics import health as health_mod
from nova_lite.metrics import http
from nova_lite.metrics import registry
from nova_lite.metrics import watchdog as watchdog_mod
from nova_lite import rpc

LOG = logging.getLogger(__name__)


class ProcessEndpoint:
    """Everything a process exports about itself, started once."""

    def __init__(self, conf, version=None):
        self.conf = conf
        self.watchdog = watchdog_mod.HubWatchdog()
        self.health = health_mod.HealthState(conf, self.watchdog, version)
        self.server = None
        self.address = None

    def start(self):
        """Start the watchdog and gauges, then listen (if enabled).

        Raises ``MetricsListenError`` when the address cannot be bound.
        """
        self.watchdog.start()
        _set_gauges(self.conf)
        opts = self.conf.metrics
        if not opts.enabled:
            return
        app = http.make_app(self.health, opts.health_interval)
        try:
            self.server = concurrency.serve_wsgi(
                app, opts.bind_host, opts.port, opts.max_connections,
                read_timeout=opts.read_timeout, bounded=True)
        except OSError as exc:
            raise exception.MetricsListenError(
                host=opts.bind_host, port=opts.port,
                reason=exc.strerror or exc)
        host = opts.bind_host
        self.address = '%s:%d' % (
            '[%s]' % host if ':' in host else host, self.server.port)
        LOG.info('Metrics and health on http://%s/metrics (/health, '
                 '/livez, /readyz)', self.address)

    def watch(self, service):
        """Add a started service's checks to the health."""
        self.health.add_service(service)

    def stop_checks(self):
        """Stop the health checks' self round trips (on shutdown, before
        the services stop)."""
        self.health.stop()

    def stop(self, timeout=1.0):
        self.health.stop()
        self.watchdog.stop()
        if self.server is not None:
            self.server.stop(timeout)
            self.server = None


def _set_gauges(conf):
    pool = conf.executor_thread_pool_size
    registry.EXECUTOR_WORKERS.labels('busy').set_function(rpc.busy_workers)
    registry.EXECUTOR_WORKERS.labels('idle').set_function(
        lambda: max(0, pool - rpc.busy_workers()))
    registry.THREADS.set_function(concurrency.live_threads)
