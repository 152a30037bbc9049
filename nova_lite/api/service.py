"""``APIService``: the WSGI server beside an ordinary ``Service``.

It takes the process's one tooz ``Coordinator`` (member ``<host>-<pid>``;
``coordination.process_coordinator``, shared with nova-lite-all's
conductor; the volume endpoints try the locks of servers and volumes
through it),
then starts listening (a port in use fails the start with one line), then
starts the RPC side (topic ``api``: registration, heartbeats,
``baseapi``).  On stop it closes the listening socket, lets the requests
in flight finish within the graceful budget, stops the RPC side with what
is left, and stops the coordinator last.  The server is the backend's
(``concurrency.serve_wsgi``): eventlet's WSGI server, or a threaded
wsgiref server.
"""

import os
import time

from oslo_log import log as logging

from nova_lite.api import wsgi
from nova_lite import concurrency
from nova_lite import coordination
from nova_lite import exception
from nova_lite import service

LOG = logging.getLogger(__name__)

BINARY = 'nova-lite-api'
TOPIC = 'api'


class APIService(service.Service):
    """nova-lite-api: the Compute API over HTTP, and the api topic."""

    def __init__(self, conf, db=None, host=None, app=None):
        super().__init__(conf, binary=BINARY, topic=TOPIC, host=host, db=db)
        self.app = app
        self.server = None
        self.coordinator = None

    def start(self):
        # The process's one (nova-lite-all's conductor shares it).
        self.coordinator = coordination.process_coordinator(
            self.conf, '%s-%d' % (self.host, os.getpid()))
        if self.app is None:
            self.app = wsgi.build_app(self.conf, self.db,
                                      coordinator=self.coordinator)
        api = self.conf.api
        try:
            self.server = concurrency.serve_wsgi(self.app, api.host, api.port,
                                                 api.workers)
        except OSError as exc:
            self._stop_coordinator()
            raise exception.APIListenError(host=api.host, port=api.port,
                                           reason=exc.strerror or exc)
        LOG.info('Listening on http://%s:%s/ (%s workers, %s)', api.host,
                 self.server.port, api.workers, self.server.kind)
        super().start()

    def stop(self, graceful_timeout=None):
        if graceful_timeout is None:
            graceful_timeout = self.conf.graceful_shutdown_timeout
        deadline = time.monotonic() + graceful_timeout
        drained = True
        if self.server is not None:
            drained = self.server.stop(graceful_timeout)
            if not drained:
                LOG.warning('%s: HTTP requests still running after %ss; '
                            'exiting anyway', self.binary, graceful_timeout)
        stopped = super().stop(max(0.0, deadline - time.monotonic()))
        self._stop_coordinator()
        return drained and stopped

    def _stop_coordinator(self):
        coordination.release_process_coordinator(self.coordinator)
        self.coordinator = None
