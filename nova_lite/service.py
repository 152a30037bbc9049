"""A service: one manager served over RPC, registered and heartbeating.

    svc = service.Service(conf, binary='nova-lite-compute', topic='compute')
    service.serve([svc])          # until SIGTERM / SIGINT

A service listens on ``topic``, ``topic.host`` and the topic's fanout, and
serves both its manager and the ``baseapi`` namespace.  Its heartbeat runs in
a greenthread of its own, so periodic tasks and slow RPC handlers never delay
it, and an exception in it is logged and never ends the loop.
"""

import gc
import importlib
import random
import signal

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import baserpc
from nova_lite import context as nova_context
from nova_lite.db import api as db_api
from nova_lite import exception
from nova_lite import rpc
from nova_lite import utils

LOG = logging.getLogger(__name__)

# The manager class of each topic, as "module:Class".  [DEFAULT]
# <topic>_manager overrides an entry; nothing else picks a manager.
SERVICE_MANAGERS = {
    'conductor': 'nova_lite.conductor.manager:ConductorManager',
    'scheduler': 'nova_lite.scheduler.manager:SchedulerManager',
    'compute': 'nova_lite.compute.manager:ComputeManager',
    'inflight': 'nova_lite.inflight.manager:InflightManager',
}


def manager_class(conf, topic):
    """The manager class for ``topic``: the override, else the table."""
    path = getattr(conf, '%s_manager' % topic, None) or SERVICE_MANAGERS.get(
        topic)
    if not path:
        raise exception.ManagerClassError(path=path, topic=topic,
                                          reason='no manager for topic')
    module_name, _, class_name = path.replace(':', '.').rpartition('.')
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise exception.ManagerClassError(path=path, topic=topic,
                                          reason=str(exc))


class Service:
    """Runs one manager: RPC server, heartbeat and periodic tasks."""

    def __init__(self, conf, binary, topic, manager=None, host=None,
                 db=None):
        self.conf = conf
        self.binary = binary
        self.topic = topic
        self.host = host or conf.host
        self.db = db or db_api.API(conf)
        manager_cls = manager or manager_class(conf, topic)
        self.manager = manager_cls(conf=conf, host=self.host, db=self.db,
                                   binary=binary)
        self.service_id = None
        self.rpcserver = None
        self._stopping = utils.Event()
        self._threads = []

    def __repr__(self):
        return '<Service %s on %s (topic %s)>' % (self.binary, self.host,
                                                  self.topic)

    @property
    def version(self):
        return self.manager.rpc_version

    def start(self):
        """Start consuming, then register; then heartbeats and periodics.

        The row is written once the RPC server consumes, so a service
        listed as up can be called.
        """
        self.manager.init_host()
        LOG.info('Connecting to message broker %s; oslo.messaging retries '
                 'until it answers', utils.mask_url(self.conf.transport_url))
        target = messaging.Target(topic=self.topic, server=self.host)
        endpoints = [self.manager,
                     baserpc.BaseAPI(self.host, self.binary, self.version)]
        server = rpc.get_server(target, endpoints)
        server.start()
        # Set only once started: stop() must not wait on a half-started one.
        self.rpcserver = server
        row = self.db.service_register(self.host, self.binary, self.topic,
                                       self.version)
        self.service_id = row['id']
        self._threads = [utils.spawn(self._heartbeat_loop),
                         utils.spawn(self._periodic_loop)]
        self.manager.post_start_hook()
        LOG.info('Started %s version %s on topic %s', self.binary,
                 self.version, self.topic)

    def report_state(self):
        """Write one heartbeat row update."""
        self.db.service_heartbeat(self.service_id)

    def _heartbeat_loop(self):
        interval = self.conf.report_interval
        while not self._stopping.wait(interval):
            try:
                self.report_state()
            except Exception:
                # A DB blip must not end liveness reporting for good.
                LOG.exception('Heartbeat of %s failed; retrying in %ss',
                              self.binary, interval)

    def _periodic_loop(self):
        delay = random.uniform(0, self.conf.periodic_fuzzy_delay)
        while not self._stopping.wait(delay):
            # A fresh request_id per pass, so each pass's RPC and log lines
            # can be told apart.
            idle = self.manager.run_periodic_tasks(
                nova_context.get_admin_context())
            delay = self.conf.periodic_interval if idle is None else idle

    def stop(self, graceful_timeout=None):
        """Stop consuming, let handlers finish (bounded), stop the loops."""
        if graceful_timeout is None:
            graceful_timeout = self.conf.graceful_shutdown_timeout
        self._stopping.set()
        if self.rpcserver is not None:
            self.rpcserver.stop()
            waiter = utils.spawn(self.rpcserver.wait)
            with utils.timeout(graceful_timeout, raise_error=False):
                waiter.wait()
            if not waiter.dead:
                LOG.warning('%s: RPC handlers still running after %ss; '
                            'exiting anyway', self.binary, graceful_timeout)
                waiter.kill()
        for thread in self._threads:
            thread.wait()
        self.manager.cleanup_host()
        LOG.info('Stopped %s', self.binary)


def serve(services):
    """Start ``services`` and run until SIGTERM or SIGINT; then stop them.

    Start-up runs in its own greenthread so that a signal always wins, even
    while oslo.messaging is still retrying an unreachable broker.
    """
    stop = utils.Event()
    started = []
    errors = []

    def _request_stop(signum, _frame):
        LOG.info('Caught %s, stopping', signal.Signals(signum).name)
        stop.set()

    def _start_all():
        try:
            for svc in services:
                # Listed first: a signal during start() still stops it.
                started.append(svc)
                svc.start()
        except Exception as exc:
            errors.append(exc)
            stop.set()
            return
        # Objects made during start-up live as long as the process; moving
        # them out of the collector's view removes most GC pauses from RPC
        # latency (oslo.messaging's 25-40 ms outliers).
        gc.collect()
        gc.freeze()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    starter = utils.spawn(_start_all)
    stop.wait()
    starter.kill()
    # Each stop mostly waits on the broker; overlap them.
    for stopper in [utils.spawn(svc.stop) for svc in reversed(started)]:
        stopper.wait()
    if errors:
        raise errors[0]
