"""nova_lite.coordination on tooz's file backend: exclusion, the lock
order, and a dead holder's locks released."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nova_lite import coordination
from nova_lite import exception


@pytest.fixture
def conf(tmp_path):
    from oslo_config import cfg

    from nova_lite import conf as nova_conf
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite')
    conf.set_override('state_path', str(tmp_path))
    return conf


@pytest.fixture
def coordinator(conf):
    coord = coordination.Coordinator(conf, 'test-member')
    coord.start()
    yield coord
    coord.stop()


def test_default_backend_is_file_under_state_path(conf, tmp_path):
    assert coordination.backend_url(conf) == 'file://%s' % (
        tmp_path / 'locks')


def test_lock_order_is_instance_then_sorted_volumes():
    assert coordination.lock_names('i1', ['v2', 'v1', 'v2']) == [
        'nova-lite-instance-i1', 'nova-lite-volume-v1',
        'nova-lite-volume-v2']


def _hold_in_subprocess(conf, names):
    """A process that holds ``names`` until killed; returns it once it
    says it holds them."""
    script = textwrap.dedent('''
        from nova_lite import monkey_patch  # noqa: F401  (the backend first)
        import sys
        from oslo_config import cfg
        from nova_lite import conf as nova_conf, coordination
        conf = cfg.ConfigOpts()
        nova_conf.register_opts(conf)
        conf([], project='nova_lite')
        conf.set_override('state_path', sys.argv[1])
        coord = coordination.Coordinator(conf, 'holder')
        coord.start()
        with coord.locked(sys.argv[2:], timeout=0):
            print('held', flush=True)
            sys.stdin.read()
    ''')
    proc = subprocess.Popen(
        [sys.executable, '-c', script, conf.state_path] + names,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


def test_held_elsewhere_is_refused_and_released_when_holder_dies(
        conf, coordinator):
    names = coordination.lock_names('i1', ['v1'])
    holder = _hold_in_subprocess(conf, names)
    try:
        with pytest.raises(exception.ResourceLocked) as raised:
            with coordinator.locked(
                    coordination.lock_names(volume_ids=['v1']), timeout=0,
                    reason='a resize of i1 holds it'):
                pytest.fail('got a lock another process holds')
        assert 'Volume v1 is locked: a resize of i1 holds it' in str(
            raised.value)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # The kernel dropped the dead holder's locks: they are free at once.
    with coordinator.locked(names, timeout=0):
        pass


def test_partial_acquire_is_released(conf, coordinator):
    holder = _hold_in_subprocess(conf, [coordination.volume_lock_name('v2')])
    try:
        with pytest.raises(exception.ResourceLocked):
            with coordinator.locked(coordination.lock_names('i1', ['v2']),
                                    timeout=0):
                pass
        # The instance lock it got before failing on v2 was given back.
        with coordinator.locked([coordination.instance_lock_name('i1')],
                                timeout=0):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_unreachable_backend_is_a_named_error(conf):
    conf.set_override('backend_url', 'nosuchdriver://u:secret@h/',
                      group='coordination')
    coord = coordination.Coordinator(conf, 'm')
    with pytest.raises(exception.CoordinationError) as raised:
        coord.start()
    assert 'secret' not in str(raised.value)
