"""Config and broker fixtures (``fixtures.Fixture``; usable as context
managers or from pytest/testtools)."""

import os
import secrets
import shutil
import subprocess
import tempfile

import fixtures
from oslo_config import cfg

from nova_lite import config
from nova_lite.conf import cloud as cloud_conf
from nova_lite import exception

# Small values so that liveness tests finish in seconds.
TEST_DEFAULTS = {
    'DEFAULT': {
        'report_interval': 1,
        'service_down_time': 3,
        'periodic_interval': 1,
        'periodic_fuzzy_delay': 0,
        'graceful_shutdown_timeout': 5,
        'rpc_response_timeout': 10,
    },
    'conductor': {'takeover_interval': 0.5},
    'compute': {'task_poll_interval': 0.05, 'block_job_abort_timeout': 5,
                'job_acquire_timeout': 5},
    'fake_driver': {'call_latency_seconds': 0.002, 'operation_seconds': 0.2,
                    'block_job_seconds': 0.2,
                    'block_job_abort_seconds': 0.05},
}


class Fixture(fixtures.Fixture):
    """A ``fixtures.Fixture`` whose set-up raises a nova_lite error as
    itself.  ``fixtures`` wraps whatever ``_setUp`` raises in
    ``MultipleExceptions``; unwrapped, a test can turn a component that
    cannot be had (``BrokerUnavailable``) into a one-line failure."""

    def setUp(self):
        try:
            super().setUp()
        except fixtures.MultipleExceptions as exc:
            error = exc.args[0][1]
            if isinstance(error, exception.NovaLiteException):
                raise error from None
            raise


class ConfFixture(fixtures.Fixture):
    """A parsed nova_lite config in a temporary state directory.

    ``conf`` defaults to the global ``cfg.CONF``, because oslo.messaging's
    dispatcher reads its own options from there; it is reset on cleanup.
    ``overrides`` is ``{group: {option: value}}`` on top of TEST_DEFAULTS.
    """

    def __init__(self, conf=None, transport_url='fake://', overrides=None,
                 state_path=None):
        super().__init__()
        self.conf = cfg.CONF if conf is None else conf
        self.transport_url = transport_url
        self.overrides = overrides or {}
        self.state_path = state_path

    def _setUp(self):
        if self.state_path is None:
            self.state_path = tempfile.mkdtemp(prefix='nova_lite_test_')
            self.addCleanup(shutil.rmtree, self.state_path, True)
        self.conf.reset()
        config.parse_args([], conf=self.conf, default_config_files=[])
        self.addCleanup(self.conf.reset)
        self.addCleanup(self.conf.clear_override, 'transport_url')
        values = self.values()
        for group, options in values.items():
            for name, value in options.items():
                self.conf.set_override(
                    name, value, group=None if group == 'DEFAULT' else group)
                self.addCleanup(self.conf.clear_override, name,
                                None if group == 'DEFAULT' else group)
        # What parse_args does at config-load time, for the overrides too
        # ([cloud] kind = nova defaults control_exchange to nova).
        cloud_conf.apply(self.conf)

    def values(self):
        """Every overridden option, as ``{group: {option: value}}``."""
        values = {group: dict(opts) for group, opts in TEST_DEFAULTS.items()}
        values['DEFAULT'].update(state_path=self.state_path,
                                 transport_url=self.transport_url)
        values.setdefault('database', {})['connection'] = (
            'sqlite:///%s' % os.path.join(self.state_path, 'nova_lite.sqlite'))
        for group, options in self.overrides.items():
            values.setdefault(group, {}).update(options)
        return values

    def write_config_file(self, name='nova-lite.conf', extra=None):
        """Write these values (plus ``extra``) to a file for a daemon."""
        values = self.values()
        for group, options in (extra or {}).items():
            values.setdefault(group, {}).update(options)
        return config.write_config_file(os.path.join(self.state_path, name),
                                        values)


class BrokerUnavailable(exception.NovaLiteException):
    msg_fmt = ('No RabbitMQ broker for functional tests: %(reason)s. Start '
               'one with "rabbitmq-server -detached && rabbitmqctl '
               'await_startup" (the README test command does this).')


class RabbitVhost(Fixture):
    """A fresh vhost and user on the local broker, deleted on cleanup.

    ``url`` is a transport_url for it; ``password`` is unique per run so a
    test can grep output for it.
    """

    def __init__(self, host='127.0.0.1', port=5672, rabbitmqctl='rabbitmqctl'):
        super().__init__()
        self.host = host
        self.port = port
        self.rabbitmqctl = rabbitmqctl
        self.name = 'nova_lite_test_%s' % secrets.token_hex(4)
        self.password = 'pw-%s' % secrets.token_hex(8)

    def _ctl(self, *args):
        try:
            subprocess.run([self.rabbitmqctl, '-q'] + list(args), check=True,
                           capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise BrokerUnavailable(reason='%s is not installed' %
                                    self.rabbitmqctl)
        except subprocess.CalledProcessError as exc:
            raise BrokerUnavailable(reason='rabbitmqctl %s failed: %s' % (
                args[0], (exc.stderr or exc.stdout).strip()[:300]))
        except subprocess.TimeoutExpired:
            raise BrokerUnavailable(reason='rabbitmqctl %s timed out' %
                                    args[0])

    def _setUp(self):
        self._ctl('add_vhost', self.name)
        self.addCleanup(self._ctl, 'delete_vhost', self.name)
        self._ctl('add_user', self.name, self.password)
        self.addCleanup(self._ctl, 'delete_user', self.name)
        self._ctl('set_permissions', '-p', self.name, self.name,
                  '.*', '.*', '.*')
        self.url = 'rabbit://%s:%s@%s:%d/%s' % (
            self.name, self.password, self.host, self.port, self.name)
