"""The per-instance job state machine (nova_lite.virt.jobs)."""

import pytest

from nova_lite import exception
from nova_lite import concurrency
from nova_lite.virt import jobs


@pytest.fixture
def instance_jobs():
    return jobs.InstanceJobs('u1', acquire_timeout=0.2)


def _started(func, *args):
    """Run ``func`` in a greenthread; an Event set when it got through."""
    done = concurrency.Event()

    def run():
        func(*args)
        done.set()
    return concurrency.spawn(run), done


def test_regular_jobs_exclude_each_other(instance_jobs):
    instance_jobs.begin(jobs.MODIFY)
    with pytest.raises(exception.JobAcquireTimeout) as err:
        instance_jobs.begin(jobs.QUERY)
    assert 'held by MODIFY (regular)' in str(err.value)
    assert 'QUERY job on instance u1' in str(err.value)
    thread, done = _started(instance_jobs.begin, jobs.QUERY, 5)
    instance_jobs.end(jobs.MODIFY)
    assert done.wait(2)
    assert instance_jobs.regular == jobs.QUERY


def test_async_jobs_exclude_each_other_and_wait_for_regular(instance_jobs):
    instance_jobs.begin(jobs.QUERY)
    with pytest.raises(exception.JobAcquireTimeout):
        instance_jobs.begin_async(jobs.MIGRATION_OUT, {jobs.QUERY})
    instance_jobs.end(jobs.QUERY)
    instance_jobs.begin_async(jobs.MIGRATION_OUT, {jobs.QUERY})
    with pytest.raises(exception.JobAcquireTimeout) as err:
        instance_jobs.begin_async(jobs.SNAPSHOT)
    assert 'MIGRATION_OUT (async, not interruptible)' in str(err.value)


def test_regular_job_only_in_interruptible_window_and_mask(instance_jobs):
    instance_jobs.begin_async(jobs.MIGRATION_OUT, {jobs.QUERY})
    # Not interruptible yet: even a masked QUERY waits.
    with pytest.raises(exception.JobAcquireTimeout):
        instance_jobs.begin(jobs.QUERY)
    instance_jobs.enter_interruptible()
    # Interruptible, but MODIFY is not in the mask.
    with pytest.raises(exception.JobAcquireTimeout) as err:
        instance_jobs.begin(jobs.MODIFY)
    assert 'interruptible, allows QUERY' in str(err.value)
    with instance_jobs.job(jobs.QUERY):
        assert instance_jobs.history[-1] == ('begin', jobs.QUERY,
                                             jobs.MIGRATION_OUT, True)


def test_waiting_query_enters_when_window_opens(instance_jobs):
    instance_jobs.begin_async(jobs.MIGRATION_OUT, {jobs.QUERY})
    thread, done = _started(instance_jobs.begin, jobs.QUERY, 5)
    concurrency.sleep(0.05)
    assert not done.is_set()
    instance_jobs.enter_interruptible()
    assert done.wait(2)


def test_leaving_window_waits_for_running_regular_job(instance_jobs):
    instance_jobs.begin_async(jobs.MIGRATION_OUT, {jobs.QUERY})
    instance_jobs.enter_interruptible()
    instance_jobs.begin(jobs.QUERY)
    thread, left = _started(instance_jobs.leave_interruptible, 5)
    concurrency.sleep(0.05)
    # The window is closed to newcomers, but the async job still waits.
    assert not left.is_set() and not instance_jobs.interruptible
    with pytest.raises(exception.JobAcquireTimeout):
        instance_jobs.begin(jobs.QUERY, 0.05)
    instance_jobs.end(jobs.QUERY)
    assert left.wait(2)
    assert instance_jobs.history[-1][0] == 'uninterruptible'


def test_monitor_serializes_commands(instance_jobs):
    inside, peak = [], []

    def command():
        with instance_jobs.monitor():
            inside.append(1)
            peak.append(len(inside))
            concurrency.sleep(0.01)
            inside.pop()

    threads = [concurrency.spawn(command) for _ in range(10)]
    for thread in threads:
        thread.wait()
    assert peak and max(peak) == 1


@pytest.mark.parametrize('call', [
    lambda j: j.begin(jobs.MIGRATION_OUT),
    lambda j: j.begin_async(jobs.QUERY),
    lambda j: j.begin_async(jobs.SNAPSHOT, {jobs.MIGRATION_OUT}),
    lambda j: j.enter_interruptible(),
    lambda j: j.end(jobs.QUERY),
])
def test_misuse_is_named_error(instance_jobs, call):
    with pytest.raises(exception.InvalidJob):
        call(instance_jobs)


def test_forgotten_state_lives_until_its_last_holder_ends():
    control = jobs.JobControl(acquire_timeout=0.2)
    with control.held('u1') as first:
        control.forget('u1')         # e.g. the instance migrated away
        # Someone still holds it: a newcomer gets the same state, so the
        # same monitor lock, never a second one beside it.
        with control.held('u1') as second:
            assert second is first
        assert 'u1' in control
    assert 'u1' not in control and len(control) == 0
    # Forgetting what nobody holds drops it at once.
    with control.held('u2'):
        pass
    control.forget('u2')
    assert len(control) == 0
