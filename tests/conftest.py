"""Shared pytest set-up: eventlet patching comes before anything else."""

from nova_lite import monkey_patch  # noqa: F401  (must be first)

import pytest

from nova_lite.db import api as db_api
from nova_lite.db import migration
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import services as nl_services
from nova_lite.testing import watchdog

# No test takes this long; one that does is stuck (see watchdog).
TEST_WATCHDOG_SECONDS = 600


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    capture = item.config.pluginmanager.getplugin('capturemanager')
    watchdog.arm(TEST_WATCHDOG_SECONDS, item.nodeid,
                 capture.suspend_global_capture if capture else None)
    try:
        yield
    finally:
        watchdog.disarm()


@pytest.fixture
def conf_fixture():
    """A config on the fake:// transport and a fresh SQLite DB."""
    with nl_fixtures.ConfFixture() as fixture:
        yield fixture


@pytest.fixture
def conf(conf_fixture):
    return conf_fixture.conf


@pytest.fixture
def db(conf):
    api = db_api.API(conf)
    migration.db_sync(api)
    yield api
    api.dispose()


@pytest.fixture
def factory(conf_fixture, db):
    with nl_services.ServiceFactory(conf_fixture) as fixture:
        yield fixture
