"""nova_lite.coordination on tooz's file backend: exclusion, the lock
order, and a dead holder's locks released."""

import pytest

from nova_lite import coordination
from nova_lite import exception
from nova_lite.testing import locks


@pytest.fixture
def conf(tmp_path):
    from oslo_config import cfg

    from nova_lite import conf as nova_conf
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite')
    conf.set_override('state_path', str(tmp_path))
    # An OptGroup object is shared by every ConfigOpts it is registered
    # in, and keeps the overrides of its options: drop an earlier test's.
    conf.clear_override('backend_url', group='coordination')
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


def test_held_elsewhere_is_refused_and_released_when_holder_dies(
        conf, coordinator):
    names = coordination.lock_names('i1', ['v1'])
    with locks.holder_for(conf, names) as holder:
        with pytest.raises(exception.ResourceLocked) as raised:
            with coordinator.locked(
                    coordination.lock_names(volume_ids=['v1']), timeout=0,
                    reason='a resize of i1 holds it'):
                pytest.fail('got a lock another process holds')
        assert 'Volume v1 is locked: a resize of i1 holds it' in str(
            raised.value)
        holder.kill()
    # The kernel dropped the dead holder's locks: they are free at once.
    with coordinator.locked(names, timeout=0):
        pass


def test_partial_acquire_is_released(conf, coordinator):
    with locks.holder_for(conf, [coordination.volume_lock_name('v2')]):
        with pytest.raises(exception.ResourceLocked):
            with coordinator.locked(coordination.lock_names('i1', ['v2']),
                                    timeout=0):
                pass
        # The instance lock it got before failing on v2 was given back.
        with coordinator.locked([coordination.instance_lock_name('i1')],
                                timeout=0):
            pass


def test_unreachable_backend_is_a_named_error(conf):
    conf.set_override('backend_url', 'nosuchdriver://u:secret@h/',
                      group='coordination')
    coord = coordination.Coordinator(conf, 'm')
    with pytest.raises(exception.CoordinationError) as raised:
        coord.start()
    assert 'secret' not in str(raised.value)


def test_services_of_one_process_share_one_coordinator(conf):
    first = coordination.process_coordinator(conf, 'h-1')
    second = coordination.process_coordinator(conf, 'h-2')
    assert first is second
    coordination.release_process_coordinator(None)   # a failed start
    coordination.release_process_coordinator(first)
    with first.locked(['x'], timeout=0):    # still started for the other
        pass
    coordination.release_process_coordinator(second)
    with pytest.raises(exception.CoordinationError, match='not started'):
        with first.locked(['x'], timeout=0):
            pass
    third = coordination.process_coordinator(conf, 'h-3')
    assert third is not first
    coordination.release_process_coordinator(third)
