"""A real Prometheus for tests: it scrapes the daemons listed in a file_sd
file (``nova-lite-manage metrics targets --output FILE``) and answers
PromQL over its HTTP API.

    with PrometheusServer(targets_file, rule_files=[rules]) as prom:
        prom.wait_for_targets(5)               # every target scraped, up
        prom.wait_for_value('sum(nova_lite_rpc_server_handling_seconds_count'
                            '{method="build_instance"})', 3)

The binary is Debian's ``prometheus`` (``bin/nova-lite-dev test`` installs
it); without it ``PrometheusUnavailable`` is raised: a test that needs it
fails, it does not skip.  The server runs with its own temporary config and
storage, on a free port of 127.0.0.1, and is stopped at cleanup.
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from nova_lite import exception
from nova_lite.metrics import targets
from nova_lite.testing import api
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import waiters
from nova_lite import utils

# No proxy between a test and its own server.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusUnavailable(exception.NovaLiteException):
    msg_fmt = ('No Prometheus for the test: %(reason)s. Install it with '
               '"apt-get install --no-install-recommends prometheus" '
               '(bin/nova-lite-dev test does).')


class PrometheusQueryError(exception.NovaLiteException):
    msg_fmt = 'Prometheus could not answer %(expr)r: %(reason)s'


class PrometheusServer(nl_fixtures.Fixture):
    """A Prometheus process scraping ``targets_file`` (file_sd) every
    ``scrape_interval`` seconds with ``honor_labels: true``, as
    etc/prometheus/prometheus.yml does, and evaluating ``rule_files``.

    ``url`` is its base URL; ``log_path`` its output.
    """

    def __init__(self, targets_file, rule_files=(), scrape_interval=1.0,
                 job='nova_lite', binary='prometheus', start_timeout=60.0):
        super().__init__()
        self.targets_file = os.path.abspath(targets_file)
        self.rule_files = [os.path.abspath(path) for path in rule_files]
        self.scrape_interval = scrape_interval
        self.job = job
        self.binary = binary
        self.start_timeout = start_timeout
        self.url = None
        self.log_path = None
        self._popen = None

    def config(self):
        """The configuration, as a dict (written as JSON, which is YAML)."""
        return targets.scrape_config(self.targets_file, self.rule_files,
                                     self.scrape_interval, self.job)

    def _setUp(self):
        path = shutil.which(self.binary)
        if path is None:
            raise PrometheusUnavailable(reason='%s is not installed' %
                                        self.binary)
        state = tempfile.mkdtemp(prefix='nova_lite_prometheus_')
        self.addCleanup(shutil.rmtree, state, True)
        config_path = os.path.join(state, 'prometheus.yml')
        with open(config_path, 'w') as handle:
            json.dump(self.config(), handle, indent=2)
        port = api.free_port()
        self.url = 'http://127.0.0.1:%d' % port
        self.log_path = os.path.join(state, 'prometheus.log')
        with open(self.log_path, 'ab') as log:
            self._popen = subprocess.Popen(
                [path, '--config.file', config_path,
                 '--storage.tsdb.path', os.path.join(state, 'data'),
                 '--web.listen-address', '127.0.0.1:%d' % port],
                stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self._stop)
        try:
            # Only "not listening yet" is retried: an exit fails at once.
            utils.wait_for(self._ready, self.start_timeout, interval=0.1,
                           what='Prometheus to be ready on %s' % self.url,
                           retry_errors=(OSError,))
        except TimeoutError as exc:
            raise PrometheusUnavailable(reason='%s; its log:\n%s' % (
                exc, self.log_text()[-3000:]))

    def _ready(self):
        if self._popen.poll() is not None:
            raise PrometheusUnavailable(reason='it exited with %s; its '
                                        'log:\n%s' % (
                                            self._popen.returncode,
                                            self.log_text()[-3000:]))
        with _OPENER.open(self.url + '/-/ready', timeout=2) as answer:
            return answer.status == 200

    def _stop(self):
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()

    def log_text(self):
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')

    def _get(self, path, **params):
        url = '%s%s?%s' % (self.url, path, urllib.parse.urlencode(params))
        try:
            with _OPENER.open(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        except (OSError, ValueError) as exc:
            raise PrometheusQueryError(expr=params.get('query', path),
                                       reason=exc)
        if body.get('status') != 'success':
            raise PrometheusQueryError(expr=params.get('query', path),
                                       reason=body.get('error', body))
        return body['data']

    def query(self, expr):
        """An instant PromQL query: ``[(labels, value)]`` of its vector."""
        data = self._get('/api/v1/query', query=expr)
        if data['resultType'] != 'vector':
            raise PrometheusQueryError(expr=expr, reason='a %s, not a '
                                       'vector' % data['resultType'])
        return [(sample['metric'], float(sample['value'][1]))
                for sample in data['result']]

    def value(self, expr):
        """The one value of ``expr``, or None when its vector is empty."""
        result = self.query(expr)
        if len(result) > 1:
            raise PrometheusQueryError(expr=expr, reason='%d series, not '
                                       'one' % len(result))
        return result[0][1] if result else None

    def wait_for_value(self, expr, expected, timeout=60.0):
        """Until ``expr``'s one value equals ``expected``; returns it.

        The timeout says the last value seen.
        """
        seen = []

        def _equal():
            seen.append(self.value(expr))
            return seen[-1] == expected

        try:
            waiters.wait_for(_equal, timeout=timeout, interval=0.25,
                             what='%s == %s' % (expr, expected))
        except waiters.WaitTimeout as exc:
            raise waiters.WaitTimeout('%s (last value: %s)' % (
                exc, seen[-1] if seen else 'none'))
        return seen[-1]

    def targets(self):
        """The active targets of the targets API."""
        return self._get('/api/v1/targets', state='active')['activeTargets']

    def wait_for_targets(self, count, timeout=60.0):
        """Until ``count`` targets were scraped, every one up and without
        an error; returns them."""
        def _all_up():
            active = self.targets()
            return active if (len(active) == count and all(
                target['health'] == 'up' and not target['lastError']
                for target in active)) else None
        return waiters.wait_for(_all_up, timeout=timeout, interval=0.25,
                                what='%d targets scraped and up' % count)
