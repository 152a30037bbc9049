"""Versioned rpcapis: history, caps and the role methods (fake://)."""

import re
import uuid

import pytest

from nova_lite import baserpc
from nova_lite.compute import manager as compute_manager
from nova_lite.compute import rpcapi as compute_rpcapi
from nova_lite.conductor import manager as conductor_manager
from nova_lite.conductor import rpcapi as conductor_rpcapi
from nova_lite import context
from nova_lite.db import models
from nova_lite import exception
from nova_lite.inflight import manager as inflight_manager
from nova_lite.inflight import rpcapi as inflight_rpcapi
from nova_lite import rpc
from nova_lite.scheduler import manager as scheduler_manager
from nova_lite.scheduler import rpcapi as scheduler_rpcapi
from nova_lite.testing import managers
from nova_lite.testing import waiters

PAIRS = [
    (compute_rpcapi.ComputeRPCAPI, compute_manager.ComputeManager),
    (conductor_rpcapi.ConductorRPCAPI, conductor_manager.ConductorManager),
    (scheduler_rpcapi.SchedulerRPCAPI, scheduler_manager.SchedulerManager),
    (baserpc.BaseRPCAPI, baserpc.BaseAPI),
    (inflight_rpcapi.InflightRPCAPI, inflight_manager.InflightManager),
    (managers.BusyRPCAPI, managers.BusyManager),
]


def _history(cls):
    return re.findall(r'^\s*(\d+\.\d+) - ', cls.__doc__, re.M)


@pytest.mark.parametrize('client_cls,server_cls', PAIRS)
def test_newest_client_version_is_the_managers(client_cls, server_cls):
    history = _history(client_cls)
    assert history, '%s has no version history' % client_cls.__name__
    assert history == sorted(history, key=rpc.version_tuple)
    assert history[-1] == server_cls.target.version


@pytest.fixture
def ctxt():
    return context.get_admin_context()


def test_cast_and_call_chain(factory, db, conf, ctxt):
    """conductor --call--> scheduler, --cast--> compute; then a call."""
    factory.start_service('conductor', host='c1')
    factory.start_service('scheduler', host='s1')
    compute = factory.start_service('compute', host='h1')
    spawned = waiters.CastWaiter(compute.manager, 'spawn')
    instance_uuid = str(uuid.uuid4())
    conductor_rpcapi.ConductorRPCAPI(conf).build_instance(ctxt, instance_uuid)
    spawn_kwargs = spawned.wait(timeout=10)
    [work] = db.work_get_all(instance_uuid=instance_uuid)
    assert spawn_kwargs == {'instance_uuid': instance_uuid,
                            'work_id': work['id']}
    info = compute_rpcapi.ComputeRPCAPI(conf).get_info(ctxt, 'h1',
                                                        instance_uuid)
    assert info['state'] == 'running'
    assert db.instance_get(instance_uuid)['host'] == 'h1'


def test_select_host_prefers_least_loaded_and_skips_disabled(factory, db,
                                                             conf, ctxt):
    factory.start_service('scheduler', host='s1')
    for host in ('h1', 'h2', 'h3'):
        factory.start_service('compute', host=host)
    db.instance_create(str(uuid.uuid4()), host='h1')
    db.service_set_disabled('h2', 'nova-lite-compute', True)
    client = scheduler_rpcapi.SchedulerRPCAPI(conf)
    assert client.select_host(ctxt) == 'h3'
    with pytest.raises(exception.NoValidHost):
        client.select_host(ctxt, exclude_hosts=['h1', 'h3'])


def test_version_cap_downgrades_or_refuses(factory, conf, ctxt):
    factory.start_service('scheduler', host='s1')
    factory.start_service('compute', host='h1')
    conf.set_override('scheduler', '1.0', group='upgrade_levels')
    client = scheduler_rpcapi.SchedulerRPCAPI(conf)
    assert not client.can_send_version('1.1')
    # Without the 1.1 argument the call is downgraded to 1.0 and answered.
    assert client.select_host(ctxt) == 'h1'
    with pytest.raises(exception.VersionCapTooLow) as err:
        client.select_host(ctxt, exclude_hosts=['h1'])
    assert 'needs scheduler RPC API 1.1' in str(err.value)


def test_auto_version_cap_is_lowest_live_service(factory, db, conf):
    factory.start_service('scheduler', host='s1')
    factory.start_service('scheduler', host='s2')
    conf.set_override('scheduler', 'auto', group='upgrade_levels')
    assert scheduler_rpcapi.SchedulerRPCAPI(conf).version_cap == '1.3'
    # An older service still alive holds the cap down.
    with db._session() as session, session.begin():
        session.query(models.Service).filter_by(host='s2').update(
            {'version': '1.0'})
    assert scheduler_rpcapi.SchedulerRPCAPI(conf).version_cap == '1.0'


def test_rpcapi_before_rpc_init_is_named_error(conf):
    rpc.cleanup()
    with pytest.raises(exception.RPCNotInitialized):
        compute_rpcapi.ComputeRPCAPI(conf)


def test_context_survives_compact_serialization():
    serializer = rpc.RequestContextSerializer()
    original = context.RequestContext(user_id='u1', project_id='p1',
                                      roles=['admin'], is_admin=False,
                                      read_only=True,
                                      global_request_id='req-g')
    wire = serializer.serialize_context(original)
    assert 'user_identity' not in wire and 'auth_token' not in wire
    restored = serializer.deserialize_context(wire)
    assert restored.to_dict() == original.to_dict()
    admin = context.get_admin_context()
    assert (serializer.deserialize_context(
        serializer.serialize_context(admin)).to_dict() == admin.to_dict())
