"""nova_lite.coordination on tooz's file backend: exclusion, the lock
order, and a dead holder's locks released."""

import os

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


def _lock_file_descriptors(conf):
    root = os.path.join(conf.state_path, 'locks')
    found = []
    for fd in os.listdir('/proc/self/fd'):
        try:
            if os.readlink('/proc/self/fd/%s' % fd).startswith(root):
                found.append(fd)
        except OSError:
            pass      # closed meanwhile (listdir's own descriptor)
    return found


def test_a_failed_try_leaves_no_descriptor_that_could_drop_a_lock(
        conf, coordinator):
    """fasteners keeps a failed try's descriptor open; closed whenever
    its object is collected, it would drop the POSIX lock that another
    object of this process got meanwhile."""
    made = []
    get_lock = coordinator._coordinator.get_lock

    def kept(name):
        made.append(get_lock(name))      # alive, as a traceback keeps it
        return made[-1]
    coordinator._coordinator.get_lock = kept
    name = coordination.instance_lock_name('i7')
    with locks.holder_for(conf, [name]) as holder:
        with pytest.raises(exception.ResourceLocked):
            with coordinator.locked([name], timeout=0.2):
                pass
        assert len(made) > 1                   # it tried more than once
        assert _lock_file_descriptors(conf) == []
        holder.release()
    with coordinator.locked([name], timeout=0):
        # Held here: another try in this process fails at once, without
        # a second descriptor, and others still see it held.
        with pytest.raises(exception.ResourceLocked):
            with coordinator.locked([name], timeout=0):
                pass
        assert len(_lock_file_descriptors(conf)) == 1
        assert locks.free_of(coordination.backend_url(conf), [name]) == {
            name: False}
    assert locks.free_of(coordination.backend_url(conf), [name]) == {
        name: True}


def test_backend_errors_are_coordination_errors(conf, coordinator):
    from tooz import coordination as tooz_coordination

    def broken(name):
        raise tooz_coordination.ToozConnectionError(
            'etcd at http://u:secret@h/ gone')
    coordinator._coordinator.get_lock = broken
    with pytest.raises(exception.CoordinationError) as raised:
        with coordinator.locked(['x'], timeout=0):
            pass
    assert 'secret' not in str(raised.value)
    # The name is free again in this process: the next try reaches tooz.
    coordinator._coordinator.get_lock = broken
    with pytest.raises(exception.CoordinationError):
        with coordinator.locked(['x'], timeout=0):
            pass
