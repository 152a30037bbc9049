"""A daemon on a really skewed clock (libfaketime, 3 s ahead).

The inflight daemon measures the skewed host's offset to the reference
(the database server's clock) within its bound, the skewed daemon learns it
with its heartbeat, and the RPC queue times of messages to and from it come
out near 0: not ~3 s, and not negative (clamped and counted as skew).

libfaketime comes from Debian's ``faketime`` package, which
``bin/nova-lite-dev test`` installs; without it these tests fail.
"""

import functools
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from nova_lite import baserpc
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.metrics import registry
from nova_lite.metrics import stamps
from nova_lite.testing import fixtures as nl_fixtures
from nova_lite.testing import scrape
from nova_lite.testing import waiters
from tests.functional import test_sql_backends

SKEW_MS = 3000.0
# A bound the inflight daemon's estimate reaches within a few rounds on
# this host (half a probe's transit through the broker, a few ms), and far
# below what the queue times are told apart by.
TIGHT_MS = 20.0
_QUEUE = 'nova_lite_rpc_server_queue_seconds'
_LEARNED = re.compile(r"Clock offset of skewed to the database server's "
                      r"clock: (?P<offset>[-+][0-9.]+) ms ± "
                      r"(?P<bound>[0-9.]+) ms")
# Builds sent to the skewed conductor, which casts each on (spawn) to a
# compute stopped for at least HOLD seconds.
BUILDS = 3
HOLD = 0.3
# Pings from the test process (the true clock) to the skewed conductor.
PINGS = 5


@pytest.fixture(scope='session')
def faketime_env():
    """``faketime_env()``: this environment, with the wall clock of the
    process it starts ``SKEW_MS`` ahead (its monotonic clock untouched),
    on the eventlet backend."""
    found = sorted(glob.glob('/usr/lib/*/faketime/libfaketime.so.1'))
    if not found:
        pytest.fail('libfaketime is not installed: apt-get install faketime '
                    '(bin/nova-lite-dev test installs it)', pytrace=False)

    def env():
        # Always on eventlet: with the monotonic clock left alone,
        # libfaketime 0.9.10 fails every time.sleep with EINVAL (the
        # threading backend's sleep), and with it faked, a threading wait
        # with a timeout never returns.  eventlet sleeps in its hub.
        return dict(os.environ, LD_PRELOAD=found[0],
                    FAKETIME='+%gs' % (SKEW_MS / 1000.0),
                    FAKETIME_DONT_FAKE_MONOTONIC='1',
                    NOVA_LITE_CONCURRENCY_BACKEND='eventlet')
    return env


@pytest.mark.parametrize('backend', ('postgresql', 'mysql'))
def test_a_skewed_host_measures_the_database_servers_clock(
        backend, sql_servers, faketime_env):
    url = sql_servers(backend).database('clock')
    code = ('import nova_lite.monkey_patch, json; '
            'from nova_lite import config; from nova_lite.db import api; '
            'conf = config.parse_args([], default_config_files=[]); '
            'conf.set_override("connection", %r, group="database"); '
            'print(json.dumps(api.API(conf).reference_offset(5)))' % url)
    result = subprocess.run([sys.executable, '-c', code],
                            env=faketime_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.splitlines()[-1])
    assert 0.0 < measured['bound_ms'] < 1000.0
    assert abs(measured['offset_ms'] - SKEW_MS) <= (measured['bound_ms'] +
                                                   0.002)


@pytest.fixture(params=('sqlite', 'postgresql'))
def conf_fixture(request, rabbit, sql_servers):
    overrides = {'inflight': {'probe_interval': 0.5, 'sleep_seconds': 0.0,
                              'ping_timeout': 2.0},
                 # Well above the skew: on the skewed host's clock every
                 # other service's heartbeat is SKEW_MS older, so with the
                 # tests' 3 s it judges them all down (and unassigned work
                 # orphaned) as soon as a heartbeat is a moment late.
                 'DEFAULT': {'service_down_time': 30}}
    if request.param != 'sqlite':
        overrides['database'] = {
            'connection': sql_servers(request.param).database('clock')}
    with nl_fixtures.ConfFixture(transport_url=rabbit.url,
                                 overrides=overrides) as fixture:
        yield fixture


@pytest.fixture
def unskewed_sender():
    """The test process sends on the reference's clock: no offset."""
    saved = stamps.own_offset()
    stamps.set_own_offset(None)
    yield
    stamps.set_own_offset(saved)


def _metrics(db, daemon):
    """A scrape of the daemon's /metrics."""
    return scrape.metrics(
        db.service_get(daemon.host, daemon.binary)['metrics_address'])


def _grew(before, after, name, **labels):
    return after.value(name, **labels) - before.value(name, **labels)


def _observed(db, daemon, before, topic, method, count):
    """A scrape of the daemon once it observed ``count`` more queue times
    of ``topic``'s ``method``; else None."""
    after = _metrics(db, daemon)
    if _grew(before, after, _QUEUE + '_count', topic=topic,
             method=method) == count:
        return after
    return None


def _histogram(before, after, method):
    """The queue buckets' growth, to say what went wrong."""
    return {labels['le']: _grew(before, after, _QUEUE + '_bucket', **labels)
            for labels in after.labels(_QUEUE + '_bucket')
            if labels['method'] == method}


def test_a_skewed_daemon_is_measured_and_its_queue_times_corrected(
        factory, db, conf, client_rpc, faketime_env, unskewed_sender):
    inflight = factory.start_daemon('nova-lite-inflight', 'i1')
    skewed = factory.start_daemon('nova-lite-conductor', 'skewed',
                                  env=faketime_env())
    scheduler = factory.start_daemon('nova-lite-scheduler', 'ctl1')
    compute = factory.start_daemon('nova-lite-compute', 'cpu1')
    for daemon in (inflight, skewed, scheduler, compute):
        test_sql_backends._wait_up(db, daemon)

    # The inflight daemon measures the skew, NTP-style, within its bound
    # (which shrinks to the lowest round trip of its window).
    def tightly_measured():
        row = db.host_clock_get('skewed')
        return row if row and row['bound_ms'] < TIGHT_MS else None

    try:
        clock = waiters.wait_for(tightly_measured, timeout=60, interval=0.2,
                                 what='a clock offset of host skewed within '
                                      '%s ms' % TIGHT_MS)
    except waiters.WaitTimeout as exc:
        pytest.fail('%s; host_clocks: %s; the skewed daemon\'s log:\n%s' % (
            exc, db.host_clock_get_all(), skewed.log_text()[-3000:]))
    assert abs(clock['offset_ms'] - SKEW_MS) <= clock['bound_ms'], clock
    assert clock['measured_by'] == 'i1'
    for host in ('i1', 'ctl1', 'cpu1'):
        row = db.host_clock_get(host)
        assert abs(row['offset_ms']) <= row['bound_ms'], row

    # The skewed conductor learns it with its heartbeat...
    try:
        learned = waiters.wait_for(
            lambda: _LEARNED.search(skewed.log_text()), timeout=30,
            what='the skewed conductor to learn its offset')
    except waiters.WaitTimeout as exc:
        pytest.fail('%s; its log:\n%s' % (exc, skewed.log_text()[-3000:]))
    offset_ms, bound_ms = float(learned['offset']), float(learned['bound'])
    assert abs(offset_ms - SKEW_MS) <= bound_ms, learned.group(0)
    # ... and reads it again with every one: after two more, it holds a
    # row written since the tight one.
    beats = db.service_get('skewed', 'nova-lite-conductor')['report_count']
    waiters.wait_for_service(db, 'skewed', 'nova-lite-conductor',
                             min_report_count=beats + 2, timeout=30)

    # The corrections' error: the sender's and the receiver's bounds.
    error = 2 * TIGHT_MS / 1000.0
    ctxt = context.get_admin_context()
    client = baserpc.BaseRPCAPI(conf, 'conductor')
    # The test process's connection to the broker is open before a timed
    # call leaves it.
    assert client.ping(ctxt, 'warm', host='skewed')['arg'] == 'warm'

    # To the skewed host: each ping waited in the queue at most its round
    # trip, truly.  Uncorrected, 3 s more.
    before = _metrics(db, skewed)
    slowest = 0.0
    for _ in range(PINGS):
        sent = time.monotonic()
        client.ping(ctxt, 'timed', host='skewed')
        slowest = max(slowest, time.monotonic() - sent)
    bucket = min(b for b in registry.BUCKETS if b >= slowest + error)
    assert bucket < SKEW_MS / 1000.0, 'too slow to tell 3 s apart'
    after = waiters.wait_for(
        lambda: _observed(db, skewed, before, 'conductor', 'ping', PINGS),
        timeout=30, what='the conductor\'s queue times')
    assert _grew(before, after, _QUEUE + '_bucket', topic='conductor',
                 method='ping', le=str(float(bucket))) == PINGS, (
        bucket, _histogram(before, after, 'ping'))

    # From the skewed host: the builds go to the skewed conductor, which
    # casts each on (spawn) to a stopped compute, where each waits at least
    # HOLD in the broker (the known truth), and at most until all are
    # active.  Uncorrected, 3 s negative: observed as 0 and counted as
    # clock skew.
    conductor_before = _metrics(db, skewed)
    before = _metrics(db, compute)
    uuids = [str(uuid.uuid4()) for _ in range(BUILDS)]
    started = time.monotonic()
    compute.signal(signal.SIGSTOP)
    try:
        for instance_uuid in uuids:
            conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
                ctxt, instance_uuid)
        try:
            waiters.wait_for(
                lambda: _grew(conductor_before, _metrics(db, skewed),
                              'nova_lite_rpc_client_seconds_count',
                              topic='compute', method='spawn') == BUILDS,
                timeout=30, what='the conductor to cast %d builds' % BUILDS)
        except waiters.WaitTimeout as exc:
            pytest.fail('%s; instances %s; the conductor\'s log:\n%s' % (
                exc, [db.instance_get(u) for u in uuids],
                skewed.log_text()[-4000:]))
        time.sleep(HOLD)
    finally:
        compute.signal(signal.SIGCONT)
    waiters.wait_for(
        lambda: all(db.instance_get(u)['vm_state'] == 'active'
                    for u in uuids),
        timeout=30, what='%d instances to become active' % BUILDS)
    elapsed = time.monotonic() - started
    after = waiters.wait_for(
        lambda: _observed(db, compute, before, 'compute', 'spawn', BUILDS),
        timeout=30, what='the compute\'s queue times')
    grew = functools.partial(_grew, before, after, topic='compute',
                             method='spawn')
    assert HOLD - error > 0.1
    assert grew(_QUEUE + '_bucket', le='0.1') == 0, (
        _histogram(before, after, 'spawn'))
    assert grew('nova_lite_rpc_clock_skew_total') == 0
    assert grew(_QUEUE + '_sum') <= BUILDS * (elapsed + error)
