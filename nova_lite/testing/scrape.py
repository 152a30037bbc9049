"""Reading a daemon's metrics listener from a test: ``/metrics`` parsed
with prometheus-client's own parser, ``/health`` and the probes as plain
HTTP answers.

    address = db.service_get('cpu1', 'nova-lite-compute')['metrics_address']
    metrics = scrape.metrics(address)
    metrics.value('nova_lite_rpc_server_handling_seconds_count',
                  topic='compute', method='get_info')   # summed over outcomes
"""

import http.client
import json
import time

from prometheus_client import parser


class Answer:
    """One HTTP answer: ``status``, ``headers`` (lower-case names),
    ``body`` (bytes) and ``seconds`` (request to the whole body)."""

    def __init__(self, status, headers, body, seconds):
        self.status = status
        self.headers = headers
        self.body = body
        self.seconds = seconds

    def json(self):
        return json.loads(self.body.decode('utf-8'))


def get(address, path, method='GET', timeout=10.0):
    """``method path`` on ``address`` (``host:port``); an ``Answer``."""
    host, _, port = address.rpartition(':')
    connection = http.client.HTTPConnection(host.strip('[]'), int(port),
                                            timeout=timeout)
    start = time.monotonic()
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return Answer(response.status,
                  {name.lower(): value
                   for name, value in response.getheaders()},
                  body, time.monotonic() - start)


class Metrics:
    """The samples of one scrape."""

    def __init__(self, text):
        self.samples = [sample
                        for family in parser.text_string_to_metric_families(
                            text)
                        for sample in family.samples]

    def value(self, name, **labels):
        """The sum of ``name``'s samples whose labels include ``labels``
        (0.0 when there is none)."""
        return sum(sample.value for sample in self.samples
                   if sample.name == name and
                   all(sample.labels.get(key) == value
                       for key, value in labels.items()))

    def labels(self, name):
        """The label sets of ``name``'s samples."""
        return [sample.labels for sample in self.samples
                if sample.name == name]


def metrics(address, timeout=10.0):
    """Scrape ``http://address/metrics``; a ``Metrics``."""
    answer = get(address, '/metrics', timeout=timeout)
    if answer.status != 200:
        raise AssertionError('GET /metrics on %s answered %s' % (
            address, answer.status))
    return Metrics(answer.body.decode('utf-8'))
