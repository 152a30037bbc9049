"""Functional tests: a real RabbitMQ (a fresh vhost per run), real daemon
processes, and real PostgreSQL and MariaDB servers (fresh databases per
run).  A missing broker or database server is an error here, never a skip.
"""

import json
import os
import secrets
import shutil
import tempfile
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from nova_lite import exception
from nova_lite import monkey_patch
from nova_lite import rpc
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import nova_cloud as nl_nova_cloud
from nova_lite import utils

# The server URLs (a user that may create databases) that
# bin/nova-lite-dev test exports, by backend.
SQL_SERVER_URLS = {'postgresql': 'NOVA_LITE_TEST_PG_URL',
                   'mysql': 'NOVA_LITE_TEST_MYSQL_URL'}


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


class SQLServer:
    """A PostgreSQL or MariaDB server on which this test run creates
    databases, each uniquely named; ``close`` drops every one."""

    def __init__(self, backend, url):
        self.backend = backend
        self.url = sa.engine.make_url(url)
        self._names = {}
        self._admin = sa.create_engine(self.url, poolclass=sa.pool.NullPool,
                                       isolation_level='AUTOCOMMIT')

    def database(self, purpose='main'):
        """The URL of this run's database for ``purpose``, created empty
        on first use."""
        if purpose not in self._names:
            name = 'nova_lite_test_%s' % secrets.token_hex(4)
            self._execute('CREATE DATABASE %s%s' % (
                name, ' CHARACTER SET utf8mb4' if self.backend == 'mysql'
                else ''))
            self._names[purpose] = name
        return self.url.set(database=self._names[purpose]).render_as_string(
            hide_password=False)

    def close(self):
        for name in self._names.values():
            # FORCE: a daemon killed at the end of a test may still hold a
            # connection.
            self._execute('DROP DATABASE %s%s' % (
                name, ' WITH (FORCE)' if self.backend == 'postgresql'
                else ''))
        self._admin.dispose()

    def _execute(self, statement):
        try:
            with self._admin.connect() as connection:
                connection.execute(sa.text(statement))
        except sa_exc.OperationalError as exc:
            pytest.fail('%s server for the functional tests unreachable at '
                        '%s: %s. bin/nova-lite-dev test installs and starts '
                        'it.' % (self.backend, utils.mask_url(str(self.url)),
                                 utils.mask_url(str(exc).splitlines()[0])),
                        pytrace=False)


@pytest.fixture(scope='session')
def sql_servers():
    """``sql_servers(backend)``: the ``SQLServer`` of 'postgresql' or
    'mysql' (MariaDB); the test fails when its URL is not set."""
    servers = {}

    def get(backend):
        if backend not in servers:
            variable = SQL_SERVER_URLS[backend]
            url = os.environ.get(variable)
            if not url:
                pytest.fail('%s is not set: no %s server for the functional '
                            'tests (bin/nova-lite-dev test starts one and '
                            'sets it)' % (variable, backend), pytrace=False)
            servers[backend] = SQLServer(backend, url)
        return servers[backend]

    yield get
    for server in servers.values():
        server.close()


QEMU_TOOLS = ('qemu-system-x86_64', 'qemu-img', 'qemu-io')


@pytest.fixture(scope='session')
def qemu_tools():
    """QEMU's binaries are installed; a missing one fails the test (the
    test command installs them), never skips it."""
    missing = [tool for tool in QEMU_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail('QEMU is not installed (%s missing): apt-get install '
                    'qemu-system-x86 qemu-utils' % ', '.join(missing),
                    pytrace=False)


@pytest.fixture(scope='session')
def etcd_url():
    """The etcd for the tooz lock tests, as a tooz URL
    (``NOVA_LITE_TEST_ETCD_URL``, which bin/nova-lite-dev test sets).

    Unset or not answering: the test fails, never skips, like the other
    real components' tests.
    """
    url = os.environ.get('NOVA_LITE_TEST_ETCD_URL')
    if not url:
        problem = ('NOVA_LITE_TEST_ETCD_URL is not set: no etcd for the lock '
                   'tests (bin/nova-lite-dev test starts one and sets it)')
    else:
        problem = _etcd_problem(url)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return url


def _etcd_problem(url):
    """None if the etcd of tooz URL ``url`` says it is healthy, else why
    not."""
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.partition('+')[2] or 'http'
    health = '%s://%s/health' % (scheme, parsed.netloc)
    try:
        with urllib.request.urlopen(health, timeout=5) as answer:
            if json.load(answer).get('health') == 'true':
                return None
            return 'etcd at %s is not healthy' % utils.mask_url(url)
    except (OSError, ValueError) as exc:
        return 'etcd for the lock tests unreachable at %s: %s' % (
            utils.mask_url(url), exc)


@pytest.fixture
def rabbit_reachable_dir():
    """A temporary directory the ``rabbitmq`` user can enter, for nodes
    started under it (pytest's tmp_path is under a private one)."""
    path = tempfile.mkdtemp(prefix='nl-rabbit-')
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, True)

# The tests on a real Nova run in one backend's pass of the suite: Nova
# brings its own concurrency, and a second cloud would cost CI a minute.
NOVA_CLOUD_BACKEND = monkey_patch.THREADING


def pytest_collection_modifyitems(config, items):
    """In the other backend's pass (``NOVA_LITE_CONCURRENCY_BACKEND`` set
    to it, as bin/nova-lite-dev test does), deselect the tests that use
    ``nova_cloud``: they are not skipped, they run in the threading pass.
    With the variable unset every test runs."""
    backend = os.environ.get(monkey_patch.ENV_VAR)
    if backend is None or backend == NOVA_CLOUD_BACKEND:
        return
    deselected = [item for item in items
                  if 'nova_cloud' in getattr(item, 'fixturenames', ())]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope='session')
def nova_cloud():
    """A real Nova 34 on loopback (``nova_lite.testing.nova_cloud.NovaCloud``),
    one for the whole session; its venv is built on first use and cached
    (``NOVA_LITE_NOVA_VENV``).  A cloud that cannot be had (pip failed, a
    service did not come up) fails the test, never skips it.

    Tests that kill or stop a process restore it before they end
    (``nova_cloud.restart(name)``): later tests share this cloud."""
    cloud = nl_nova_cloud.NovaCloud()
    try:
        cloud.start()
    except exception.NovaLiteException as exc:
        pytest.fail(str(exc), pytrace=False)
    yield cloud
    cloud.stop()
