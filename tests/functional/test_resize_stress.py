"""Resize under stress, with real daemons on a real broker: two conductors,
a scheduler, three small computes and nova-lite-api, each its own process.

- 100 resize requests at once across 10 servers: no host is ever
  overcommitted (sampled all along), and every request ends ACTIVE or
  VERIFY_RESIZE, or is refused with a reason.
- The conductor that runs a resize is killed with -9, 20 times, at
  different steps: the other conductor finishes or rolls back each one,
  with nothing stuck and no claim leaked.
"""

import random

import pytest
import sqlalchemy as sa

from nova_lite import concurrency
from nova_lite.db import models
from nova_lite.testing import api
from nova_lite.testing import waiters
from tests.functional import test_api

SERVERS = '/v2.1/servers'
COMPUTES = ('cpu1', 'cpu2', 'cpu3')
CONDUCTORS = ('ctlA', 'ctlB')
# Little room: 4 vCPUs, 1 GB and 10 GB a host, no overcommit.
CAPACITY = {'vcpus': 4, 'memory_mb': 1024, 'disk_gb': 10}
# (flavorid, vcpus, memory_mb, root_gb)
FLAVORS = (('r1', 1, 256, 1), ('r2', 2, 512, 2), ('r3', 3, 768, 3))
RESIZE_STEPS = ('scheduling', 'prep', 'resize', 'finish')


@pytest.fixture(scope='module')
def cloud(rabbit):
    overrides = {
        'fake_driver': {'operation_seconds': 0.3},
        'scheduler': {'cpu_allocation_ratio': 1.0,
                      'ram_allocation_ratio': 1.0,
                      'disk_allocation_ratio': 1.0,
                      'max_attempts': 3},
        'compute': dict(CAPACITY)}
    plan = {host: ('nova-lite-conductor', host, None) for host in CONDUCTORS}
    plan['scheduler'] = ('nova-lite-scheduler', 'sch1', None)
    plan.update((host, ('nova-lite-compute', host, None))
                for host in COMPUTES)
    with test_api.api_deployment(rabbit, plan,
                                 overrides=overrides) as env:
        for flavorid, vcpus, memory_mb, root_gb in FLAVORS:
            env.db.flavor_create('resize.%s' % flavorid, vcpus, memory_mb,
                                 root_gb, flavorid)
        yield env


def _servers(env, count, flavor='r1'):
    ids = []
    for index in range(count):
        resp = env.admin.post(SERVERS, {'server': {
            'name': 'rs%d' % index, 'imageRef': 'cirros',
            'flavorRef': flavor}})
        assert resp.status == 202, resp
        ids.append(resp.json['server']['id'])
    for server_id in ids:
        api.wait_for_server(env.admin, server_id, 'ACTIVE', timeout=60)
    return ids


def _resize(env, server_id, flavor):
    return env.admin.post('%s/%s/action' % (SERVERS, server_id),
                          {'resize': {'flavorRef': flavor}})


def _action(env, server_id, name):
    return env.admin.post('%s/%s/action' % (SERVERS, server_id),
                          {name: None})


def _overcommitted(db):
    """The hosts whose claims exceed their capacity now (ratios 1.0)."""
    return [(node['host'], node['vcpus_used'], node['memory_mb_used'],
             node['local_gb_used'])
            for node in db.compute_node_get_all()
            if node['vcpus_used'] > node['vcpus']
            or node['memory_mb_used'] > node['memory_mb']
            or node['local_gb_used'] > node['local_gb']]


def _claims_problems(db):
    """What is wrong with the claims once nothing runs: counters that are
    not the sum of their allocations, and allocations of no one (an
    instance that is not deleted, or the resize of an instance that
    awaits its confirmation)."""
    problems = []
    allocations = db.allocation_get_all()
    for node in db.compute_node_get_all():
        mine = [a for a in allocations if a['host'] == node['host']]
        summed = tuple(sum(a[k] for a in mine)
                       for k in ('vcpus', 'memory_mb', 'local_gb'))
        counted = (node['vcpus_used'], node['memory_mb_used'],
                   node['local_gb_used'])
        if summed != counted:
            problems.append('%s counts %s, its allocations sum to %s'
                            % (node['host'], counted, summed))
    instances = {i['uuid']: i for i in db.instance_get_all(deleted=False)}
    with db.engine.connect() as conn:
        resizes = {row.uuid: row.instance_uuid for row in conn.execute(
            sa.select(models.Migration.uuid, models.Migration.instance_uuid))}
    for allocation in allocations:
        consumer = allocation['instance_uuid']
        if consumer in instances:
            if instances[consumer]['host'] is None:
                problems.append('claim of unplaced instance %s' % consumer)
            continue
        owner = instances.get(resizes.get(consumer))
        if owner is None or owner['vm_state'] != 'resized':
            problems.append('leaked claim %s on %s' % (consumer,
                                                       allocation['host']))
    for instance in instances.values():
        if instance['task_state'] is not None:
            problems.append('instance %s stuck in %s' % (
                instance['uuid'], instance['task_state']))
        if instance['vm_state'] not in ('active', 'resized'):
            problems.append('instance %s is %s: %s' % (
                instance['uuid'], instance['vm_state'], instance['fault']))
    unfinished = db.work_get_all(unfinished=True)
    if unfinished:
        problems.append('unfinished work: %s' % unfinished)
    return problems


def _settled(db, server_ids):
    def _all_done():
        if db.work_get_all(unfinished=True):
            return False
        return all(db.instance_get(s)['task_state'] is None
                   for s in server_ids)
    waiters.wait_for(_all_done, timeout=120,
                     what='every resize to end')


def _confirm_all(env, server_ids):
    """Confirm every resize awaiting it; each server ends ACTIVE."""
    for server_id in server_ids:
        if env.db.instance_get(server_id)['vm_state'] == 'resized':
            resp = _action(env, server_id, 'confirmResize')
            assert resp.status == 204, resp
    for server_id in server_ids:
        api.wait_for_server(env.admin, server_id, 'ACTIVE', timeout=60)


def _delete_all(env, server_ids):
    """Delete the servers: every claim goes with them."""
    for server_id in server_ids:
        resp = env.admin.delete('%s/%s' % (SERVERS, server_id))
        assert resp.status == 204, resp
    for server_id in server_ids:
        api.wait_for_gone(env.admin, server_id)
    # The destroy's last step on the compute gives the claim back, after
    # the server is gone from the API.
    waiters.wait_for(lambda: env.db.allocation_get_all() == [], timeout=30,
                     what='every claim released')
    assert {(n['vcpus_used'], n['memory_mb_used'], n['local_gb_used'])
            for n in env.db.compute_node_get_all()} == {(0, 0, 0)}


def test_100_concurrent_resizes_never_overcommit_a_host(cloud):
    env = cloud
    server_ids = _servers(env, 10)
    violations = []
    stop = concurrency.Event()

    def sample():
        while not stop.is_set():
            found = _overcommitted(env.db)
            if found:
                violations.append(found)
            stop.wait(0.01)

    sampler = concurrency.spawn(sample)
    rng = random.Random(11)
    requests = [(rng.choice(server_ids), rng.choice(('r2', 'r3')))
                for _ in range(100)]
    try:
        results = concurrency.map_concurrently(
            lambda request: _resize(env, *request), requests, 25)
        _settled(env.db, server_ids)
    finally:
        stop.set()
        sampler.wait()

    assert violations == []
    statuses = sorted({resp.status for resp in results})
    assert set(statuses) <= {202, 409}, results
    accepted = [r for r in results if r.status == 202]
    assert accepted, 'no resize was accepted'
    for refused in (r for r in results if r.status == 409):
        # Refused with a reason: the server was busy with another resize.
        message = refused.json['conflictingRequest']['message']
        assert 'resize' in message, message
    states = {server_id: env.db.instance_get(server_id)
              for server_id in server_ids}
    assert {s['vm_state'] for s in states.values()} <= {'active', 'resized'}
    # Little room: some found no host and stayed ACTIVE with the reason.
    for state in states.values():
        if state['vm_state'] == 'active' and state['fault']:
            assert 'No valid host after' in state['fault'], state
    assert _claims_problems(env.db) == []
    _confirm_all(env, server_ids)
    assert _claims_problems(env.db) == []
    assert _overcommitted(env.db) == []
    _delete_all(env, server_ids)


def _owner_at(db, server_id, wanted_step):
    """The conductor running the resize of ``server_id`` once its work
    is at ``wanted_step`` or later, and the step it is at."""
    order = RESIZE_STEPS.index(wanted_step)

    def _reached():
        for work in db.work_get_all(unfinished=True,
                                    instance_uuid=server_id):
            if (work['action'] == 'resize' and work['step'] in RESIZE_STEPS
                    and RESIZE_STEPS.index(work['step']) >= order):
                return work
        return None
    return waiters.wait_for(_reached, timeout=30, interval=0.005,
                            what='the resize to reach %s' % wanted_step)


def test_a_conductor_killed_mid_resize_20_times(cloud):
    env = cloud
    server_ids = _servers(env, 2)
    flavors = {server_id: 'r1' for server_id in server_ids}
    killed_at = []
    for round_no in range(20):
        server_id = server_ids[round_no % 2]
        flavor = 'r2' if flavors[server_id] == 'r1' else 'r1'
        assert _resize(env, server_id, flavor).status == 202
        work = _owner_at(env.db, server_id,
                         RESIZE_STEPS[round_no % len(RESIZE_STEPS)])
        victim = env.daemons[work['conductor_host']]
        victim.signal(9)
        assert victim.wait(timeout=10) == -9
        killed_at.append(work['step'])
        # The other conductor takes the work over and ends it.
        done = waiters.wait_for(
            lambda: (lambda w: w['finished_at'] and w)(
                env.db.work_get(work['id'])), timeout=60,
            what='the other conductor to end the resize')
        assert done['conductor_host'] != victim.host
        assert done['takeovers'] >= 1
        restarted = env.start(victim.host, 'nova-lite-conductor',
                              victim.host)
        instance = waiters.wait_for(
            lambda: (lambda i: i['task_state'] is None and i)(
                env.db.instance_get(server_id)), timeout=60,
            what='the instance to be free')
        assert instance['vm_state'] in ('resized', 'active'), instance
        if instance['vm_state'] == 'resized':
            flavors[server_id] = flavor
            # Alternate confirm and revert: both after a takeover too.
            action = 'confirmResize' if round_no % 4 < 2 else 'revertResize'
            resp = _action(env, server_id, action)
            assert resp.status in (202, 204), resp
            if action == 'revertResize':
                flavors[server_id] = {'r1': 'r2', 'r2': 'r1'}[flavor]
            api.wait_for_server(env.admin, server_id, 'ACTIVE', timeout=60)
        assert env.db.instance_get(server_id)['flavorid'] == \
            flavors[server_id]
        _settled(env.db, server_ids)
        assert _claims_problems(env.db) == [], (round_no, killed_at)
        test_api._wait_up(env.db, restarted)
    # The kills landed at more than one step.
    assert len(set(killed_at)) > 1, killed_at
    _delete_all(env, server_ids)


def test_deleting_a_volume_during_its_servers_resize_is_409(cloud):
    env = cloud
    [server_id] = _servers(env, 1)
    volume = env.admin.post('/v2.1/os-volumes', {'volume': {'size': 1}})
    assert volume.status == 200, volume
    volume_id = volume.json['volume']['id']
    attach = env.admin.post('%s/%s/os-volume_attachments' % (
        SERVERS, server_id), {'volumeAttachment': {'volumeId': volume_id}})
    assert attach.status == 200, attach
    detach_path = '%s/%s/os-volume_attachments/%s' % (SERVERS, server_id,
                                                      volume_id)
    flavor = 'r1'
    for _ in range(5):
        flavor = 'r2' if flavor == 'r1' else 'r1'
        assert _resize(env, server_id, flavor).status == 202
        # From its prep step on, the conductor's run holds the locks.
        _owner_at(env.db, server_id, 'prep')
        deleted = env.admin.delete('/v2.1/os-volumes/%s' % volume_id)
        detached = env.admin.delete(detach_path)
        # Both answered while the resize still ran (else: once more).
        during = bool(env.db.work_get_all(unfinished=True,
                                          instance_uuid=server_id))
        _settled(env.db, [server_id])
        _confirm_all(env, [server_id])
        if during:
            break
    else:
        pytest.fail('no resize outlasted the two requests')
    for refused in (deleted, detached):
        assert refused.status == 409, refused
        message = refused.json['conflictingRequest']['message']
        assert 'is locked: an action on server %s holds it' % server_id \
            in message, message
    # The volume is intact, still attached; free once the resize ended.
    shown = env.admin.get('/v2.1/os-volumes/%s' % volume_id).json['volume']
    assert shown['status'] == 'in-use'
    assert [(a['serverId'], a['volumeId']) for a in shown['attachments']] \
        == [(server_id, volume_id)]
    assert env.admin.delete(detach_path).status == 202
    assert env.admin.delete('/v2.1/os-volumes/%s' % volume_id).status == 202
    _delete_all(env, [server_id])
