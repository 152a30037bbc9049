"""Resize: the conductor's workflow, retry and rollback, confirm and revert,
and the claims they move (fake:// transport, services in this process)."""

import uuid

import pytest

from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import api as db_api
from nova_lite.db import resizes
from nova_lite import exception
from nova_lite.testing import waiters

SMALL = dict(name='t.small', vcpus=1, memory_mb=256, root_gb=1,
             flavorid='s')
BIG = dict(name='t.big', vcpus=2, memory_mb=512, root_gb=2, flavorid='b')


@pytest.fixture
def ctxt():
    return context.get_admin_context()


@pytest.fixture(autouse=True)
def flavors(db, conf):
    for resource in ('cpu', 'ram', 'disk'):
        conf.set_override('%s_allocation_ratio' % resource, 1.0,
                          group='scheduler')
    for flavor in (SMALL, BIG):
        db.flavor_create(**flavor)


def _cloud(factory, db, hosts=('h1', 'h2', 'h3')):
    """A conductor, a scheduler and computes with room for a few."""
    services = {'conductor': factory.start_service('conductor', host='c1'),
                'scheduler': factory.start_service('scheduler', host='s1')}
    for host in hosts:
        services[host] = factory.start_service('compute', host=host)
        db.compute_node_update(host, vcpus=8, memory_mb=4096, local_gb=20)
    return services


def _driver(services, host):
    return services[host].manager.driver.unwrapped


def _built(conf, db, ctxt, flavor=SMALL):
    instance_uuid = str(uuid.uuid4())
    work = db.instance_create_with_work(
        instance_uuid, 'build', 'scheduling', db_api.UNASSIGNED,
        task_state='scheduling', flavorid=flavor['flavorid'],
        flavor_name=flavor['name'], vcpus=flavor['vcpus'],
        memory_mb=flavor['memory_mb'], root_gb=flavor['root_gb'])
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(
        ctxt, instance_uuid, work_id=work['id'])
    return waiters.wait_for(
        lambda: db.instance_get(instance_uuid)['vm_state'] == 'active'
        and db.instance_get(instance_uuid), timeout=10, what='the build')


def _claims(db):
    return sorted((a['instance_uuid'], a['host'], a['vcpus'])
                  for a in db.allocation_get_all())


def _used(db):
    return {n['host']: (n['vcpus_used'], n['memory_mb_used'],
                        n['local_gb_used'])
            for n in db.compute_node_get_all()}


def _settled(db, instance_uuid):
    """The instance once its resize work has ended (and it is free)."""
    def ended():
        if db.work_get_all(unfinished=True, instance_uuid=instance_uuid):
            return None
        instance = db.instance_get(instance_uuid)
        return instance if instance['task_state'] is None else None
    return waiters.wait_for(ended, timeout=20, what='the resize to end')


def _resize(conf, db, ctxt, instance_uuid, flavorid='b'):
    accepted = conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(
        ctxt, instance_uuid, flavorid)
    return accepted, _settled(db, instance_uuid)


def test_resize_then_confirm_moves_the_claims(factory, conf, db, ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']

    accepted, resized = _resize(conf, db, ctxt, uuid_)

    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert accepted['migration_uuid'] == migration['uuid']
    target = migration['dest_host']
    assert target != source['host']
    assert (resized['vm_state'], resized['host'], resized['flavorid'],
            resized['vcpus']) == ('resized', target, 'b', 2)
    assert migration['status'] == 'finished'
    assert migration['old_flavor']['flavorid'] == 's'
    # Both claims until confirmed: the old flavor on the source, the new
    # one on the target under the migration's uuid.
    assert _claims(db) == sorted([(uuid_, source['host'], 1),
                                  (migration['uuid'], target, 2)])
    assert _driver(services, target).instances[uuid_]['state'] == 'running'
    assert _driver(services, source['host']).instances[uuid_]['state'] == \
        'shutdown'
    assert [(w['action'], w['step']) for w in
            db.work_get_all(instance_uuid=uuid_)][-1] == ('resize', 'done')

    conductor_rpcapi.ConductorRPCAPI(conf).confirm_resize(ctxt, uuid_)
    confirmed = _settled(db, uuid_)

    assert (confirmed['vm_state'], confirmed['host']) == ('active', target)
    assert _claims(db) == [(uuid_, target, 2)]
    assert _used(db)[source['host']] == (0, 0, 0)
    assert _used(db)[target] == (2, 512, 2)
    assert db.migration_get(migration['uuid'])['status'] == 'confirmed'
    assert uuid_ not in _driver(services, source['host']).instances


def test_revert_goes_back_to_the_source_with_the_old_flavor(factory, conf,
                                                            db, ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    _resize(conf, db, ctxt, uuid_)
    [migration] = db.migration_get_all(instance_uuid=uuid_)

    conductor_rpcapi.ConductorRPCAPI(conf).revert_resize(ctxt, uuid_)
    reverted = _settled(db, uuid_)

    assert (reverted['vm_state'], reverted['host'], reverted['flavorid'],
            reverted['vcpus']) == ('active', source['host'], 's', 1)
    assert _claims(db) == [(uuid_, source['host'], 1)]
    assert _used(db)[migration['dest_host']] == (0, 0, 0)
    assert db.migration_get(migration['uuid'])['status'] == 'reverted'
    assert uuid_ not in _driver(services, migration['dest_host']).instances
    assert _driver(services, source['host']).instances[uuid_]['state'] == \
        'running'


def _fail(services, host, *operations):
    """Make ``host``'s fake driver fail these operations from now on (as
    ``[fake_driver] fail_operations`` does for a daemon)."""
    driver = _driver(services, host)
    driver._fail_operations = frozenset(operations)


def _no_claim_but(db, *consumers):
    assert sorted(a['instance_uuid'] for a in db.allocation_get_all()) == \
        sorted(consumers)


@pytest.mark.parametrize('operation', ['prep_resize', 'finish_resize'])
def test_a_failing_target_is_dropped_and_another_one_tried(
        factory, conf, db, ctxt, operation):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    # The scheduler picks the emptiest host first, by name: h2, then h3.
    assert source['host'] == 'h1'
    _fail(services, 'h2', operation)

    _, resized = _resize(conf, db, ctxt, uuid_)

    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert (migration['dest_host'], migration['failed_hosts'],
            migration['attempts'], migration['status']) == (
        'h3', ['h2'], 2, 'finished')
    assert (resized['vm_state'], resized['host']) == ('resized', 'h3')
    # The failed target holds no claim, and nothing of the instance.
    assert _claims(db) == sorted([(uuid_, 'h1', 1),
                                  (migration['uuid'], 'h3', 2)])
    assert _used(db)['h2'] == (0, 0, 0)
    assert uuid_ not in _driver(services, 'h2').instances
    assert uuid_ not in _driver(services, 'h2').incoming


def test_after_max_attempts_the_instance_is_active_on_its_source(
        factory, conf, db, ctxt):
    conf.set_override('max_attempts', 2, group='scheduler')
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    _fail(services, 'h2', 'prep_resize')
    _fail(services, 'h3', 'finish_resize')

    _, after = _resize(conf, db, ctxt, uuid_)

    assert (after['vm_state'], after['task_state'], after['host'],
            after['flavorid'], after['power_state']) == (
        'active', None, 'h1', 's', 'running')
    assert after['fault'].startswith('No valid host after 2 attempts: ')
    assert 'finish_resize fails on this host' in after['fault']
    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert (migration['status'], migration['failed_hosts'],
            migration['attempts']) == ('error', ['h2', 'h3'], 2)
    _no_claim_but(db, uuid_)
    assert _used(db)['h2'] == _used(db)['h3'] == (0, 0, 0)
    # The source runs it again (it was powered off for h3's finish).
    assert _driver(services, 'h1').instances[uuid_]['state'] == 'running'
    assert db.work_get_all(instance_uuid=uuid_)[-1]['step'] == 'failed'


def test_no_host_left_ends_the_same_way(factory, conf, db, ctxt):
    services = _cloud(factory, db, hosts=('h1', 'h2'))
    source = _built(conf, db, ctxt)
    _fail(services, 'h2', 'prep_resize')

    _, after = _resize(conf, db, ctxt, source['uuid'])

    # h2 failed, then (the source being excluded) no host was left.
    assert (after['vm_state'], after['host']) == ('active', 'h1')
    assert after['fault'].startswith('No valid host after 2 attempts: No '
                                     'valid host was found')
    _no_claim_but(db, source['uuid'])


def test_a_failing_source_rolls_back_without_retry(factory, conf, db,
                                                   ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    _fail(services, 'h1', 'resize_instance')

    _, after = _resize(conf, db, ctxt, uuid_)

    assert (after['vm_state'], after['host'], after['flavorid']) == (
        'active', 'h1', 's')
    assert 'resize_instance fails on this host' in after['fault']
    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert (migration['status'], migration['attempts']) == ('error', 1)
    _no_claim_but(db, uuid_)
    assert uuid_ not in _driver(services, 'h2').incoming


def test_resize_to_the_same_host_only_when_allowed(factory, conf, db,
                                                  ctxt):
    services = _cloud(factory, db, hosts=('h1',))
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']

    _, refused = _resize(conf, db, ctxt, uuid_)
    assert (refused['vm_state'], refused['host']) == ('active', 'h1')
    assert 'No valid host after 1 attempts' in refused['fault']
    _no_claim_but(db, uuid_)

    conf.set_override('allow_resize_to_same_host', True)
    _, resized = _resize(conf, db, ctxt, uuid_)
    assert (resized['vm_state'], resized['host']) == ('resized', 'h1')
    conductor_rpcapi.ConductorRPCAPI(conf).confirm_resize(ctxt, uuid_)
    confirmed = _settled(db, uuid_)
    assert (confirmed['vm_state'], confirmed['vcpus']) == ('active', 2)
    assert _claims(db) == [(uuid_, 'h1', 2)]
    # One copy on one host: the confirm kept it.
    assert _driver(services, 'h1').instances[uuid_]['state'] == 'running'


def test_resize_requests_are_guarded(factory, conf, db, ctxt):
    conf.set_override('operation_seconds', 1, group='fake_driver')
    _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    client = conductor_rpcapi.ConductorRPCAPI(conf)

    with pytest.raises(exception.FlavorNotFound):
        client.resize_instance(ctxt, uuid_, 'no-such-flavor')
    with pytest.raises(exception.InvalidInput,
                       match='instances must change flavor'):
        client.resize_instance(ctxt, uuid_, 's')
    with pytest.raises(exception.InvalidState, match='is active'):
        client.confirm_resize(ctxt, uuid_)
    assert db.migration_get_all() == []

    client.resize_instance(ctxt, uuid_, 'b')
    with pytest.raises(exception.InstanceActionInProgress):
        client.resize_instance(ctxt, uuid_, 'b')
    with pytest.raises(exception.InstanceActionInProgress):
        client.reboot_instance(ctxt, uuid_)
    assert len(db.migration_get_all()) == 1
    _settled(db, uuid_)


def test_resize_confirm_window_confirms_automatically(factory, conf, db,
                                                      ctxt):
    conf.set_override('resize_confirm_window', 1)
    _cloud(factory, db)
    source = _built(conf, db, ctxt)
    _resize(conf, db, ctxt, source['uuid'])
    [migration] = db.migration_get_all(instance_uuid=source['uuid'])

    waiters.wait_for(lambda: db.migration_get(migration['uuid'])['status']
                     == 'confirmed', timeout=20, what='the auto-confirm')
    confirmed = _settled(db, source['uuid'])
    assert confirmed['vm_state'] == 'active'
    assert _claims(db) == [(source['uuid'], migration['dest_host'], 2)]


def test_destroying_a_resized_instance_leaves_no_claim(factory, conf, db,
                                                       ctxt):
    _cloud(factory, db)
    source = _built(conf, db, ctxt)
    _resize(conf, db, ctxt, source['uuid'])

    conductor_rpcapi.ConductorRPCAPI(conf).destroy_instance(ctxt,
                                                            source['uuid'])
    waiters.wait_for(lambda: db.instance_get(source['uuid'])['vm_state'] ==
                     'deleted', timeout=10, what='the destroy')

    # Released after the instance is marked deleted: waited for, up to
    # the timeout (a leak fails here).
    waiters.wait_for(lambda: db.allocation_get_all() == [], timeout=10,
                     what='both claims to be released')
    assert set(_used(db).values()) == {(0, 0, 0)}
    assert db.migration_get_all()[0]['status'] == 'confirmed'


def test_a_revert_that_fails_halfway_is_error_not_confirmable(
        factory, conf, db, ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    _resize(conf, db, ctxt, uuid_)
    _fail(services, source['host'], 'finish_revert_resize')
    client = conductor_rpcapi.ConductorRPCAPI(conf)

    client.revert_resize(ctxt, uuid_)
    failed = _settled(db, uuid_)

    # The target's copy is gone already: neither a confirm (which would
    # drop the source's too) nor another revert may follow.
    assert failed['vm_state'] == 'error' and failed['fault'], failed
    for again in (client.confirm_resize, client.revert_resize):
        with pytest.raises(exception.InvalidState):
            again(ctxt, uuid_)
    client.destroy_instance(ctxt, uuid_)
    waiters.wait_for(lambda: db.allocation_get_all() == [], timeout=10,
                     what='both claims to be released')


@pytest.mark.parametrize('step', ['prep', 'resize', 'finish', 'done'])
def test_a_takeover_at_every_step_finishes_the_resize(factory, conf, db,
                                                      ctxt, step):
    """Conductor c1 dies just before it records ``step`` (the compute
    host has done the step before it): a live conductor takes the work
    over, re-sends what is not recorded, and the compute host does it
    once."""
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    conductor = services['conductor'].manager
    real_step = conductor.db.resize_step
    died = []

    def die_before(work, next_step, **kwargs):
        if next_step == step and not died:
            died.append(work)
            # Gone without a trace: the work is c-dead's now.
            conductor.db.work_claim(work, 'c-dead', takeover=False)
            raise exception.WorkTakenOver(
                work_id=work['id'], action=work['action'],
                instance_uuid=uuid_)
        return real_step(work, next_step, **kwargs)
    conductor.db.resize_step = die_before
    calls = []
    for host in ('h1', 'h2', 'h3'):
        manager = services[host].manager
        for method in ('prep_resize', 'resize_instance', 'finish_resize'):
            real = getattr(manager.driver, method)

            def counted(*args, _real=real, _name=method, **kwargs):
                calls.append(_name)
                return _real(*args, **kwargs)
            setattr(manager.driver, method, counted)

    conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(ctxt, uuid_, 'b')
    waiters.wait_for(lambda: died, timeout=10, what='c1 to die')
    factory.start_service('conductor', host='c2')
    resized = _settled(db, uuid_)

    assert (resized['vm_state'], resized['host']) == ('resized', 'h2')
    work = db.work_get_all(instance_uuid=uuid_)[-1]
    # c2, or c1's own takeover task (c-dead is dead to both) won it.
    assert (work['step'], work['takeovers']) == ('done', 1)
    assert work['conductor_host'] in ('c1', 'c2')
    assert sorted(calls) == ['finish_resize', 'prep_resize',
                             'resize_instance']
    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert (migration['status'], migration['attempts']) == ('finished', 1)
    assert _claims(db) == sorted([(uuid_, 'h1', 1),
                                  (migration['uuid'], 'h2', 2)])


def test_a_takeover_mid_rollback_never_resends_the_failed_step(
        factory, conf, db, ctxt):
    """h2 fails finish_resize once; c1 cleans up (h2 drops its copy, the
    source starts again) and dies before it records the retry.  The
    takeover resumes the rollback, not the finish: h2, which would now
    succeed, never gets the finish again (two running copies)."""
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    _driver(services, 'h2').inject_failure(uuid_, 'finish_resize',
                                           'h2 lost its disk')
    conductor = services['conductor'].manager
    real_step = conductor.db.resize_step
    died = []

    def die_before(work, next_step, **kwargs):
        if next_step == 'scheduling' and not died:
            died.append(work)
            conductor.db.work_claim(work, 'c-dead', takeover=False)
            raise exception.WorkTakenOver(
                work_id=work['id'], action=work['action'],
                instance_uuid=uuid_)
        return real_step(work, next_step, **kwargs)
    conductor.db.resize_step = die_before
    finishes = []
    manager = services['h2'].manager
    real_finish = manager.driver.finish_resize

    def counted(*args, **kwargs):
        finishes.append(args)
        return real_finish(*args, **kwargs)
    manager.driver.finish_resize = counted

    conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(ctxt, uuid_, 'b')
    waiters.wait_for(lambda: died, timeout=10, what='c1 to die')
    assert died[0]['step'] == 'rollback_source'
    factory.start_service('conductor', host='c2')
    resized = _settled(db, uuid_)

    assert (resized['vm_state'], resized['host']) == ('resized', 'h3')
    assert len(finishes) == 1
    assert uuid_ not in _driver(services, 'h2').instances
    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert (migration['failed_hosts'], migration['attempts']) == (['h2'], 2)
    assert _claims(db) == sorted([(uuid_, 'h1', 1),
                                  (migration['uuid'], 'h3', 2)])


def test_a_target_that_does_not_answer_is_dropped(factory, conf, db, ctxt):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    # h2 stops consuming; it still looks up to the scheduler (its last
    # heartbeat is recent), so it is picked first, and its call times out.
    services['h2'].stop(graceful_timeout=1)
    conf.set_override('rpc_response_timeout', 1)

    _, resized = _resize(conf, db, ctxt, uuid_)

    [migration] = db.migration_get_all(instance_uuid=uuid_)
    assert (migration['failed_hosts'], migration['dest_host']) == (
        ['h2'], 'h3')
    assert (resized['vm_state'], resized['host']) == ('resized', 'h3')
    assert _used(db)['h2'] == (0, 0, 0)


def test_a_resize_whose_locks_are_held_ends_cleanly(factory, conf, db, ctxt,
                                                    monkeypatch):
    services = _cloud(factory, db)
    source = _built(conf, db, ctxt)
    uuid_ = source['uuid']
    conductor = services['conductor'].manager

    def held(work):
        raise exception.ResourceLocked(resource='instance %s' % uuid_,
                                       reason='held by an API request')
    monkeypatch.setattr(conductor, '_workflow_locks', held)

    accepted = conductor_rpcapi.ConductorRPCAPI(conf).resize_instance(
        ctxt, uuid_, 'b')
    after = _settled(db, uuid_)

    assert (after['vm_state'], after['host']) == ('active', 'h1')
    # The abandoned work ends its migration as its last step.
    waiters.wait_for(lambda: db.migration_get(
        accepted['migration_uuid'])['status'] == 'error', timeout=10,
        what='the migration ended as error')
    _no_claim_but(db, uuid_)
