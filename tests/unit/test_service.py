"""Service behaviour on the fake:// transport."""

import time

import pytest

from nova_lite import baserpc
from nova_lite import concurrency
from nova_lite import context
from nova_lite import exception
from nova_lite import manager
from nova_lite import service
from nova_lite.testing import waiters


class _CountingManager(manager.Manager):
    """A manager whose periodic task counts its runs and fails the first."""

    runs = 0
    request_ids = []

    @manager.periodic_task(spacing=0.05, run_immediately=True)
    def _tick(self, ctxt):
        type(self).runs += 1
        type(self).request_ids.append(ctxt.request_id)
        if type(self).runs == 1:
            raise RuntimeError('first run fails on purpose')


def test_service_registers_and_answers_ping(factory, db):
    svc = factory.start_service('compute', host='h1')
    row = db.service_get('h1', 'nova-lite-compute')
    assert row['topic'] == 'compute'
    assert row['version'] == svc.manager.target.version
    reply = baserpc.BaseRPCAPI(factory.conf, 'compute').ping(
        context.get_admin_context(), 'hello', host='h1')
    # 'service' (the topic) as Nova's baseapi.ping answers too.
    assert reply == {'service': 'compute', 'host': 'h1',
                     'binary': 'nova-lite-compute', 'version': svc.version,
                     'arg': 'hello'}


def test_heartbeat_survives_a_failing_report(factory, db, monkeypatch):
    svc = factory.start_service('scheduler', host='h1')
    real = db.service_heartbeat
    failures = []

    def flaky(service_id):
        if not failures:
            failures.append(service_id)
            raise RuntimeError('database blip')
        return real(service_id)

    monkeypatch.setattr(svc.db, 'service_heartbeat', flaky)
    row = waiters.wait_for_service(db, 'h1', 'nova-lite-scheduler',
                                   min_report_count=2, timeout=10)
    assert failures, 'the failing heartbeat was never attempted'
    assert row['report_count'] >= 2


def test_periodic_task_failure_does_not_stop_it(factory):
    _CountingManager.runs = 0
    _CountingManager.request_ids = []
    factory.start_service('inflight', host='h1', manager=_CountingManager)
    waiters.wait_for(lambda: _CountingManager.runs >= 3, timeout=10,
                     what='three periodic runs')
    # Each pass has a request_id of its own, for the logs.
    ids = _CountingManager.request_ids
    assert len(set(ids)) == len(ids)


def test_manager_override_option(conf):
    conf.set_override('compute_manager',
                      'tests.unit.test_service:_CountingManager')
    assert service.manager_class(conf, 'compute') is _CountingManager


def test_manager_override_bad_path_is_named_error(conf):
    conf.set_override('compute_manager', 'no.such.module:Manager')
    with pytest.raises(exception.ManagerClassError) as err:
        service.manager_class(conf, 'compute')
    assert 'no.such.module:Manager' in str(err.value)


def test_stop_is_bounded_and_stops_heartbeats(factory, db):
    svc = factory.start_service('conductor', host='h1')
    waiters.wait_for_service(db, 'h1', 'nova-lite-conductor',
                             min_report_count=1)
    svc.stop(graceful_timeout=1)
    factory.services.remove(svc)
    count = db.service_get('h1', 'nova-lite-conductor')['report_count']
    assert all(t.dead for t in svc._threads)
    assert db.service_get('h1', 'nova-lite-conductor')['report_count'] == count


class _StuckManager(manager.Manager):
    """A periodic task that never returns (a call stuck in a timeout)."""

    entered = None

    @manager.periodic_task(spacing=0.05, run_immediately=True)
    def _stuck(self, ctxt):
        type(self).entered.set()
        concurrency.Event().wait(3600)


def test_stop_is_bounded_with_a_stuck_periodic_task(factory):
    _StuckManager.entered = concurrency.Event()
    svc = factory.start_service('inflight', host='h1', manager=_StuckManager)
    assert _StuckManager.entered.wait(10)
    started = time.monotonic()
    assert svc.stop(graceful_timeout=1) is False
    factory.services.remove(svc)
    assert time.monotonic() - started < 3


def test_plumbing_is_not_reachable_over_rpc(factory):
    factory.start_service('compute', host='h1')
    client = baserpc.BaseRPCAPI(factory.conf, 'compute').client
    ctxt = context.get_admin_context()
    for method in ('run_periodic_tasks', 'init_host', 'cleanup_host',
                   '_heartbeat_loop'):
        # The default namespace: the manager endpoint.
        with pytest.raises(Exception) as err:
            client.prepare(namespace=None, server='h1').call(ctxt, method)
        # fake:// re-raises oslo's own class; rabbit:// a RemoteError.
        assert 'NoSuchMethod' in (getattr(err.value, 'exc_type', '') or
                                  type(err.value).__name__), method
