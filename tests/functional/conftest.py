"""Functional tests: a real RabbitMQ (a fresh vhost per run) and real
daemon processes.  A missing broker is an error here, never a skip.
"""

import pytest

from nova_lite import rpc
from nova_lite.testing import fixtures as nl_fixtures


@pytest.fixture(scope='session')
def rabbit():
    try:
        with nl_fixtures.RabbitVhost() as vhost:
            yield vhost
    except nl_fixtures.BrokerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def conf_fixture(rabbit):
    with nl_fixtures.ConfFixture(transport_url=rabbit.url) as fixture:
        yield fixture


@pytest.fixture
def client_rpc(conf, db):
    """RPC set up in the test process, to act as a client of the daemons."""
    rpc.init(conf)
    yield
    rpc.cleanup()
