"""/health while the broker goes away and comes back, on a private
RabbitMQ node (``nova_lite.testing.rabbit_node``): the machine's shared
node stays up for every other test."""

import time

import pytest

from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import rabbit_node
from nova_lite.testing import scrape
from nova_lite.testing import waiters
from tests.functional import test_observability_rpc as observability

HEALTH_INTERVAL = 2
# The issue asks for answers under 100 ms; a shared 2-core machine gets a
# generous bound, and the test prints what it measured.
ANSWER_BOUND = 1.0


@pytest.fixture
def private_rabbit():
    try:
        with rabbit_node.RabbitNode() as node:
            yield node
    except nl_fixtures.BrokerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


class HealthPoller:
    """GET /health again and again; keeps how long each answer took."""

    def __init__(self, address):
        self.address = address
        self.seconds = []

    def until(self, status, timeout, what, hold=0.0):
        """Poll until /health answers ``status`` (for ``hold`` seconds
        on end, every answer in between ``status`` too); the last
        answer."""
        since = []

        def _check():
            start = time.monotonic()
            try:
                answer = scrape.get(self.address, '/health', timeout=5)
            finally:
                self.seconds.append(time.monotonic() - start)
            if answer.status != status:
                since.clear()
                return None
            since.append(time.monotonic())
            return answer if since[-1] - since[0] >= hold else None

        return waiters.wait_for(_check, timeout=timeout, interval=0.1,
                                what=what)


def test_health_fails_without_broker_and_recovers(factory, db,
                                                  private_rabbit):
    _, address = observability.start_daemon(
        factory, db, 'nova-lite-compute', 'cpu1',
        {'DEFAULT': {'transport_url': private_rabbit.url},
         'metrics': {'health_interval': HEALTH_INTERVAL}})
    poller = HealthPoller(address)
    assert poller.until(200, 10, 'pass').json()['status'] in ('pass', 'warn')

    private_rabbit.stop_app()
    stopped = time.monotonic()
    failed = poller.until(503, 30, '/health 503 without the broker')
    failed_after = time.monotonic() - stopped
    body = failed.json()
    assert body['status'] == 'fail'
    (entry,) = body['checks']['rpc:self']
    assert entry['status'] == 'fail'
    # The database still answers: only the broker's check fails.
    assert body['checks']['database:heartbeat'][0]['status'] != 'fail'
    assert scrape.get(address, '/readyz').status == 503
    assert scrape.get(address, '/livez').status == 200
    # It stays failed while the broker is away.
    poller.until(503, 10, '/health staying 503', hold=HEALTH_INTERVAL)

    private_rabbit.start_app()
    started = time.monotonic()
    back = poller.until(200, 60, '/health 200 after start_app')
    back_after = time.monotonic() - started
    assert back.json()['checks']['rpc:self'][0]['status'] == 'pass'
    waiters.wait_for(lambda: scrape.get(address, '/readyz').status == 200,
                     timeout=2 * HEALTH_INTERVAL + 5, what='/readyz 200')
    print('\n/health: fail %.1fs after stop_app, pass %.1fs after start_app; '
          '%d answers, slowest %.1f ms' % (
              failed_after, back_after, len(poller.seconds),
              max(poller.seconds) * 1000.0))
    assert max(poller.seconds) < ANSWER_BOUND, max(poller.seconds)
