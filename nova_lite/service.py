"""A service: one manager served over RPC, registered and heartbeating.

    svc = service.Service(conf, binary='nova-lite-compute', topic='compute')
    service.serve([svc])          # until SIGTERM / SIGINT

A service listens on ``topic``, ``topic.host`` and the topic's fanout, and
serves both its manager and the ``baseapi`` namespace.  Its heartbeat runs in
a thread of its own (green or native, per the backend), so periodic tasks
and slow RPC handlers never delay it, and an exception in it is logged and
never ends the loop.  Every DB call goes through ``db.api``, which keeps it
off the hub.

Lifecycle (``serve``): SIGTERM or SIGINT stops consuming, gives handlers and
loops what is left of ``graceful_shutdown_timeout``, and the process exits
within that timeout even when one of them is stuck.  SIGHUP reloads the
mutable options of the config files (the log level, ``[upgrade_levels]``,
whose caps are then resolved again) and calls each manager's ``reset``.

Why not oslo.service's launcher: its threading backend runs a service in a
child process (cotyledon) and, without the fork, handles neither SIGHUP nor
a graceful SIGINT; one small loop here behaves the same on both backends.
Periodic tasks are oslo.service's (``nova_lite.manager``).
"""

import gc
import importlib
import os
import random
import signal
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from nova_lite import baserpc
from nova_lite import concurrency
from nova_lite import context as nova_context
from nova_lite.db import api as db_api
from nova_lite import exception
from nova_lite.metrics import endpoint as metrics_endpoint
from nova_lite.metrics import stamps
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
    'api': 'nova_lite.api.manager:APIManager',
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
        # The process's /metrics address (set by serve() before start),
        # written to the service's row.
        self.metrics_address = None
        # Wall clock of the last heartbeat that succeeded, and of the first
        # of the attempts failing since (None while they succeed): the
        # database:heartbeat health check.
        self.heartbeat_ok_at = None
        self.heartbeat_failed_at = None
        self._stopping = concurrency.Event()
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
                     baserpc.BaseAPI(self.host, self.binary, self.version,
                                     topic=self.topic)]
        server = rpc.get_server(target, endpoints)
        server.start()
        # Set only once started: stop() must not wait on a half-started one.
        self.rpcserver = server
        row = self.db.service_register(self.host, self.binary, self.topic,
                                       self.version,
                                       metrics_address=self.metrics_address)
        self.service_id = row['id']
        self.heartbeat_ok_at = time.time()
        self.learn_clock_offset()
        self._threads = [concurrency.spawn(self._heartbeat_loop),
                         concurrency.spawn(self._periodic_loop)]
        self.manager.post_start_hook()
        LOG.info('Started %s version %s on topic %s (%s backend)',
                 self.binary, self.version, self.topic, concurrency.BACKEND)

    def report_state(self):
        """Write one heartbeat row update."""
        self.db.service_heartbeat(self.service_id)

    def learn_clock_offset(self):
        """Take this host's clock offset to the reference (the database
        server's clock) from ``host_clocks``, where the inflight daemons
        keep it, for the queue times of the RPC stamps
        (``nova_lite.metrics.stamps``).  Until a row exists, None: no
        correction.  A DB error keeps the offset known so far."""
        try:
            row = self.db.host_clock_get(self.host)
        except Exception as exc:  # noqa: BLE001 - never the heartbeat's
            LOG.warning('Could not read the clock offset of %s (%s); keeping '
                        '%s s', self.host, utils.mask_url(str(exc)),
                        stamps.own_offset())
            return
        if row is not None and stamps.own_offset() is None:
            LOG.info('Clock offset of %s to the database server\'s clock: '
                     '%+.2f ms ± %.2f ms (measured by %s)', self.host,
                     row['offset_ms'], row['bound_ms'], row['measured_by'])
        stamps.set_own_offset(None if row is None
                              else row['offset_ms'] / 1000.0)

    def _heartbeat_loop(self):
        interval = self.conf.report_interval
        while not self._stopping.wait(interval):
            try:
                self.report_state()
            except Exception:
                # A DB blip must not end liveness reporting for good.
                LOG.exception('Heartbeat of %s failed; retrying in %ss',
                              self.binary, interval)
                if self.heartbeat_failed_at is None:
                    self.heartbeat_failed_at = time.time()
            else:
                self.heartbeat_ok_at = time.time()
                self.heartbeat_failed_at = None
            if not self._stopping.is_set():
                self.learn_clock_offset()

    def _periodic_loop(self):
        delay = random.uniform(0, self.conf.periodic_fuzzy_delay)
        while not self._stopping.wait(delay):
            # A fresh request_id per pass, so each pass's RPC and log lines
            # can be told apart.
            delay = self.manager.run_periodic_tasks(
                nova_context.get_admin_context())

    def reset(self):
        """After SIGHUP: let the manager pick up reloaded options."""
        self.manager.reset()

    def stop(self, graceful_timeout=None):
        """Stop consuming, then give handlers and loops at most
        ``graceful_timeout`` seconds in all; returns whether all ended."""
        if graceful_timeout is None:
            graceful_timeout = self.conf.graceful_shutdown_timeout
        deadline = time.monotonic() + graceful_timeout
        self._stopping.set()
        waiting = list(zip(('heartbeat', 'periodic tasks'), self._threads))
        if self.rpcserver is not None:
            self.rpcserver.stop()
            waiting.insert(0, ('RPC handlers',
                               concurrency.spawn(self.rpcserver.wait)))
        stuck = [(name, thread) for name, thread in waiting
                 if not thread.join(max(0.0, deadline - time.monotonic()))]
        if stuck:
            LOG.warning('%s: still running after %ss (%s); exiting anyway',
                        self.binary, graceful_timeout,
                        ', '.join(name for name, _ in stuck))
            for _, thread in stuck:
                thread.kill()
        self.manager.cleanup_host()
        LOG.info('Stopped %s', self.binary)
        return not stuck


# Seconds kept back from graceful_shutdown_timeout for what follows the
# services' own stop (closing the transports) before the watchdog fires.
_EXIT_MARGIN = 1.0


def _arm_exit_watchdog(timeout):
    """Exit the process ``timeout`` seconds from now, whatever is stuck.

    A native timer, so that neither a blocked hub nor a busy thread can
    hold the process past its graceful shutdown timeout.
    """
    def _expired():
        LOG.error('Graceful shutdown did not finish within %ss; exiting',
                  timeout)
        os._exit(1)
    return concurrency.native_timer(timeout, _expired)


def _reload(conf, services):
    """SIGHUP: reload mutable options, re-resolve version caps."""
    LOG.info('Caught SIGHUP: reloading mutable options of %s',
             ', '.join(conf.config_file) or 'no config file')
    try:
        conf.mutate_config_files()
        rpc.refresh_version_caps()
        for svc in services:
            svc.reset()
    except Exception:  # noqa: BLE001 - a bad reload never stops a service
        LOG.exception('Reload after SIGHUP failed; running on')


def serve(services):
    """Start ``services`` and run until SIGTERM or SIGINT; then stop them.

    Start-up runs in its own thread so that a signal always wins, even
    while oslo.messaging is still retrying an unreachable broker.  Returns
    True when every handler and loop ended within the graceful timeout.
    """
    conf = services[0].conf
    wake = concurrency.Event()
    requests = []
    started = []
    errors = []
    # One per process: nova-lite-all's services share its listener.
    endpoint = metrics_endpoint.ProcessEndpoint(conf, services[0].version)

    def _on_signal(signum, _frame):
        requests.append(signum)
        wake.set()

    def _start_all():
        try:
            endpoint.start()
            for svc in services:
                svc.metrics_address = endpoint.address
                # Listed first: a signal during start() still stops it.
                started.append(svc)
                svc.start()
                endpoint.watch(svc)
        except Exception as exc:
            errors.append(exc)
            requests.append(None)
            wake.set()
            return
        # Objects made during start-up live as long as the process; moving
        # them out of the collector's view removes most GC pauses from RPC
        # latency (oslo.messaging's 25-40 ms outliers).
        gc.collect()
        gc.freeze()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    starter = concurrency.spawn(_start_all)
    while True:
        # A bounded wait: the threading backend runs signal handlers on the
        # main thread between waits.
        wake.wait(1.0)
        while requests and requests[0] == signal.SIGHUP:
            requests.pop(0)
            _reload(conf, started)
        if requests:
            break
        wake = concurrency.Event()
        if requests:
            break
    signum = requests[0]
    if signum is not None:
        LOG.info('Caught %s, stopping', signal.Signals(signum).name)
    timeout = conf.graceful_shutdown_timeout
    if timeout:
        _arm_exit_watchdog(timeout)
    starter.kill()
    # No more self round trips: the services are going away.
    endpoint.stop_checks()
    budget = max(0.0, timeout - _EXIT_MARGIN)
    # Each stop mostly waits on the broker; overlap them.
    stoppers = [concurrency.spawn(svc.stop, budget)
                for svc in reversed(started)]
    clean = all([stopper.wait() for stopper in stoppers])
    endpoint.stop()
    if errors:
        raise errors[0]
    return clean
