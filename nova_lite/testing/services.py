"""A service factory that always stops what it started.

In-process services share the test's config and RPC transport; daemon
processes run the real console entry points with their own config file.
"""

import os

import fixtures

from nova_lite import process
from nova_lite import rpc
from nova_lite import service


class ServiceFactory(fixtures.Fixture):
    """Starts services and daemons for a test; cleanup stops every one.

    ``conf_fixture`` is a started ``ConfFixture``.
    """

    def __init__(self, conf_fixture):
        super().__init__()
        self.conf_fixture = conf_fixture
        self.conf = conf_fixture.conf
        self.services = []
        self.daemons = []
        self._owns_rpc = False

    def _setUp(self):
        self.addCleanup(self._stop_all)

    def start_service(self, topic, host=None, binary=None, manager=None):
        """Start ``topic``'s service in this process; returns the Service."""
        if rpc.TRANSPORT is None:
            rpc.init(self.conf)
            self._owns_rpc = True
        svc = service.Service(self.conf, binary or 'nova-lite-%s' % topic,
                              topic, manager=manager, host=host)
        svc.start()
        self.services.append(svc)
        return svc

    def start_daemon(self, binary, host, extra=None, env=None):
        """Run ``binary`` as a separate process with its own config file.

        ``extra`` is ``{group: {option: value}}`` for this daemon only;
        ``env``, if given, replaces the inherited environment.
        """
        extra = dict(extra or {})
        extra.setdefault('DEFAULT', {})
        extra['DEFAULT'] = dict(extra['DEFAULT'], host=host)
        name = '%s-%s' % (binary, host)
        conf_path = self.conf_fixture.write_config_file(name + '.conf',
                                                        extra=extra)
        log_path = os.path.join(self.conf_fixture.state_path, name + '.log')
        daemon = process.DaemonProcess(binary, host, [conf_path], log_path,
                                       env=env)
        self.daemons.append(daemon)
        return daemon

    def _stop_all(self):
        for svc in reversed(self.services):
            svc.stop(graceful_timeout=2)
        process.stop_all(list(reversed(self.daemons)))
        self.services, self.daemons = [], []
        if self._owns_rpc:
            rpc.cleanup()
            self._owns_rpc = False
