"""Choosing the concurrency backend, and SIGHUP's reload."""

import logging

import pytest

from nova_lite import config
from nova_lite import concurrency
from nova_lite import monkey_patch
from nova_lite.scheduler import rpcapi as scheduler_rpcapi
from nova_lite import service


def _conf_file(tmp_path, name, backend):
    path = tmp_path / name
    path.write_text('[DEFAULT]\nconcurrency_backend = %s\n' % backend)
    return str(path)


def test_environment_wins_over_config_files(tmp_path):
    path = _conf_file(tmp_path, 'a.conf', 'threading')
    argv = ['--config-file', path]
    assert monkey_patch.choose(argv, environ={}) == (
        'threading', '[DEFAULT] concurrency_backend')
    assert monkey_patch.choose(argv, environ={
        monkey_patch.ENV_VAR: 'eventlet'}) == ('eventlet',
                                               monkey_patch.ENV_VAR)


def test_later_config_file_wins_and_default_is_eventlet(tmp_path):
    first = _conf_file(tmp_path, 'a.conf', 'threading')
    second = _conf_file(tmp_path, 'b.conf', 'eventlet')
    assert monkey_patch.choose(['--config-file', first,
                                '--config-file=%s' % second],
                               environ={})[0] == 'eventlet'
    assert monkey_patch.choose([], environ={}) == ('eventlet', 'default')
    # A bad value in a file is left to oslo.config's choices (one line).
    bad = _conf_file(tmp_path, 'c.conf', 'gevent')
    assert monkey_patch.choose(['--config-file', bad], environ={})[0] == (
        'eventlet')
    with pytest.raises(config.exception.ConfigError) as err:
        config.parse_args(['--config-file', bad], conf=config.cfg.ConfigOpts(),
                          default_config_files=[])
    assert 'concurrency_backend' in str(err.value)


def test_bad_environment_value_is_one_line_and_exit_2():
    with pytest.raises(monkey_patch.BackendError) as err:
        monkey_patch.choose([], environ={monkey_patch.ENV_VAR: 'gevent'})
    assert err.value.code == 2
    assert err.value.message == (
        "NOVA_LITE_CONCURRENCY_BACKEND must be one of eventlet, threading, "
        "got 'gevent'")


def test_this_process_runs_the_chosen_backend():
    import sys
    assert concurrency.BACKEND == monkey_patch.BACKEND
    assert ('eventlet' in sys.modules) == (
        concurrency.BACKEND == monkey_patch.EVENTLET)


def test_sighup_reload_applies_mutable_options(conf_fixture, factory, db):
    conf = conf_fixture.conf
    path = conf_fixture.write_config_file('reload.conf')
    conf(['--config-file', path], project=config.PROJECT,
         default_config_files=[])
    config.setup_logging(conf)
    svc = factory.start_service('scheduler', host='h1')
    client = scheduler_rpcapi.SchedulerRPCAPI(conf)
    assert client.version_cap is None
    assert not logging.getLogger('nova_lite').isEnabledFor(logging.DEBUG)

    conf_fixture.write_config_file('reload.conf', extra={
        'DEFAULT': {'debug': True}, 'upgrade_levels': {'scheduler': '1.0'}})
    service._reload(conf, [svc])

    assert client.version_cap == '1.0'
    assert not client.can_send_version('1.1')
    assert logging.getLogger('nova_lite').isEnabledFor(logging.DEBUG)


def test_auto_cap_with_no_live_service_is_not_kept(conf, factory, db):
    conf.set_override('scheduler', 'auto', group='upgrade_levels')
    factory.start_service('compute', host='h1')    # sets up RPC
    client = scheduler_rpcapi.SchedulerRPCAPI(conf, db=db)
    assert client.version_cap is None          # no scheduler is up yet
    svc = factory.start_service('scheduler', host='h1')
    client.client                               # the next use resolves it
    assert client.version_cap == svc.version


def test_native_threads_share_the_logging_modules_lock(conf):
    """logging's module lock (a logger-cache miss, setLevel) is taken by
    driver threads too; under eventlet a green lock two native threads
    contend never wakes its waiter.  A daemon's log setup (oslo.log's)
    must not make it green again."""
    config.setup_logging(conf)
    done = []

    def configure_loggers(name):
        for n in range(2000):
            logging.getLogger('nova_lite.test_lock.%s.%d' % (name, n % 40)
                              ).setLevel(logging.INFO)
        done.append(name)

    threads = [concurrency.spawn(concurrency.execute_in_thread,
                                 configure_loggers, name)
               for name in 'abcd']
    for thread in threads:
        thread.join(60)
    assert sorted(done) == list('abcd'), 'a thread hung on logging._lock'
