"""RPC plumbing: transport, clients, servers, serializer and notifier.

``init(conf)`` builds one RPC transport and one notification transport per
process, as Nova does; rpcapi classes then get clients from here.  Servers
use the executor of the concurrency backend (eventlet or threading) and
``DefaultRPCAccessPolicy`` (methods starting with ``_`` are never callable
remotely), and count their busy workers.

Every message is timed (``nova_lite.metrics.rpc_timing``):

    sender                          broker           server process
    serialize: stamp (wall clock) ──queue──▶ _on_incoming: received
                                           ──executor_wait──▶ dispatch starts
                                           ──handling──▶ dispatch returns

The stamp rides in the context (``metrics.stamps``); the receipt is taken
in the server's listener thread as the message leaves the driver, before
it waits for an executor worker.  Clients are wrapped (``TimedClient``) so
that a call is timed to its reply and a cast to the broker's publish
confirm (oslo.messaging's rabbit driver publishes with confirms).

``init(conf, timed=False)`` leaves all of that out: plain oslo.messaging
clients and servers, no stamps.  Daemons always time; it exists so that
``benchmarks/rpc_bench.py`` can measure what the timing costs.
"""

import re
import threading
import time
import weakref

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_messaging.rpc import dispatcher
from oslo_messaging.rpc import server as rpc_server
from oslo_serialization import jsonutils

from nova_lite import concurrency
from nova_lite import context as nova_context
from nova_lite import exception
from nova_lite.metrics import registry as metrics_registry
from nova_lite.metrics import rpc_timing
from nova_lite.metrics import stamps
from nova_lite import utils

LOG = logging.getLogger(__name__)

# Exceptions from these modules are re-raised on the caller as themselves.
ALLOWED_EXMODS = [exception.__name__]

TRANSPORT = None
NOTIFICATION_TRANSPORT = None
NOTIFIER = None
# False only for the benchmark's baseline (init(conf, timed=False)).
_TIMED = {'on': True}

_VERSION_RE = re.compile(r'^\d+\.\d+$')

# oslo.messaging's suffix on the class of a re-raised remote exception.
_REMOTE_SUFFIX = '_Remote'

_CONTEXT_DEFAULTS = (None, False, [], '')
_DERIVED_CONTEXT_KEYS = frozenset(['user_identity'])


def init(conf, timed=True):
    """Create this process's transports; safe to call once per process.

    ``timed=False``: clients and servers without any timing or stamps, as
    before RPC metrics existed; a benchmark knob, not for daemons.
    """
    global TRANSPORT, NOTIFICATION_TRANSPORT, NOTIFIER
    if TRANSPORT is not None:
        return
    _TIMED['on'] = timed
    LOG.info('Using message broker %s', utils.mask_url(conf.transport_url))
    stamps.configure(conf.host)
    rpc_timing.configure(conf)
    try:
        TRANSPORT = messaging.get_rpc_transport(
            conf, allowed_remote_exmods=ALLOWED_EXMODS)
        NOTIFICATION_TRANSPORT = messaging.get_notification_transport(
            conf, allowed_remote_exmods=ALLOWED_EXMODS)
    except (messaging.InvalidTransportURL,
            messaging.DriverLoadFailure) as exc:
        raise exception.ConfigError(
            reason='transport_url %s: %s' % (
                utils.mask_url(conf.transport_url),
                utils.mask_url(str(exc))))
    NOTIFIER = _retrying_forever(messaging.Notifier(
        NOTIFICATION_TRANSPORT, driver='messagingv2',
        serializer=RequestContextSerializer(JsonPayloadSerializer(),
                                            stamp=timed),
        topics=['notifications']))


# "Forever" for a notification's reconnections, as a count (see below).
NOTIFY_RETRY_FOREVER = 2 ** 31 - 1


def _retrying_forever(notifier):
    """``notifier``, its ``retry`` -1 ("forever") made a huge count.

    oslo.messaging (18.3.1) hands a new pooled connection the notifier's
    ``retry`` as kombu's ``max_retries``; kombu (5.7) reads -1 there as
    "give up at the first failure" (``retry_over_time``: retries >=
    max_retries), before it switches to the next host.  With a multi-host
    transport_url whose first host (oslo.messaging shuffles them) is a
    dead node, the notification is dropped ("Could not send notification")
    instead of failing over, as benchmarks/broker_failover.py saw after a
    kill -9.  RPC sends are not affected (their retry is None).  No
    upstream bug found; tests/functional/test_notifier_failover.py.
    """
    if notifier.retry is not None and notifier.retry < 0:
        return notifier.prepare(retry=NOTIFY_RETRY_FOREVER)
    return notifier


def cleanup():
    """Close the transports; ``init`` may be called again afterwards."""
    global TRANSPORT, NOTIFICATION_TRANSPORT, NOTIFIER
    for transport in (TRANSPORT, NOTIFICATION_TRANSPORT):
        if transport is not None:
            transport.cleanup()
    TRANSPORT = NOTIFICATION_TRANSPORT = NOTIFIER = None
    _TIMED['on'] = True


def _transport():
    if TRANSPORT is None:
        raise exception.RPCNotInitialized()
    return TRANSPORT


class JsonPayloadSerializer(messaging.NoOpSerializer):
    @staticmethod
    def serialize_entity(context, entity):
        return jsonutils.to_primitive(entity, convert_instances=True)


class RequestContextSerializer(messaging.Serializer):
    """Carries a ``RequestContext`` (and its request_id) across the wire,
    with the sender's stamp unless ``stamp`` is false."""

    def __init__(self, base=None, stamp=True):
        self._base = base
        self._stamp = stamp

    def serialize_entity(self, context, entity):
        if not self._base:
            return entity
        return self._base.serialize_entity(context, entity)

    def deserialize_entity(self, context, entity):
        if not self._base:
            return entity
        return self._base.deserialize_entity(context, entity)

    def serialize_context(self, context):
        # Leave out what from_dict() assumes for a missing key (None, False,
        # empty) and the derived user_identity: the context rides in every
        # message, JSON-encoded twice by the rabbit driver's envelope.
        values = {key: value for key, value in context.to_dict().items()
                  if value not in _CONTEXT_DEFAULTS
                  and key not in _DERIVED_CONTEXT_KEYS}
        if self._stamp:
            # Serialized just before the publish: the sender's stamp.
            values[stamps.CONTEXT_KEY] = stamps.make()
        return values

    def deserialize_context(self, context):
        return nova_context.from_dict(context)


def get_client(target, version_cap=None, timeout=None):
    """An RPC client whose every call and cast is timed (``TimedClient``;
    the plain oslo.messaging client after ``init(conf, timed=False)``)."""
    timed = _TIMED['on']
    client = messaging.get_rpc_client(
        _transport(), target, version_cap=version_cap, timeout=timeout,
        serializer=RequestContextSerializer(JsonPayloadSerializer(),
                                            stamp=timed))
    return TimedClient(client, target.topic) if timed else client


def _outcome(exc):
    if isinstance(exc, messaging.MessagingTimeout):
        return 'timeout'
    name = type(exc).__name__
    # A remote exception from ALLOWED_EXMODS is re-raised as a subclass
    # named CLASS_Remote: label it as the server does, CLASS.
    if (name.endswith(_REMOTE_SUFFIX) and
            type(exc).__module__.endswith(_REMOTE_SUFFIX)):
        name = name[:-len(_REMOTE_SUFFIX)]
    return name


class TimedClient:
    """An oslo.messaging RPC client (or prepared call context) whose
    ``call`` and ``cast`` are timed per topic and method, by outcome."""

    def __init__(self, client, topic):
        self._client = client
        self._topic = topic

    def prepare(self, **kwargs):
        return TimedClient(self._client.prepare(**kwargs),
                           kwargs.get('topic') or self._topic)

    def can_send_version(self, *args, **kwargs):
        return self._client.can_send_version(*args, **kwargs)

    def call(self, ctxt, method, **kwargs):
        return self._timed('call', self._client.call, ctxt, method, kwargs)

    def cast(self, ctxt, method, **kwargs):
        return self._timed('cast', self._client.cast, ctxt, method, kwargs)

    def _timed(self, kind, send, ctxt, method, kwargs):
        start = time.monotonic()
        outcome = 'ok'
        try:
            return send(ctxt, method, **kwargs)
        except Exception as exc:
            outcome = _outcome(exc)
            raise
        finally:
            rpc_timing.observe_client(self._topic, method, kind,
                                      time.monotonic() - start, outcome)

    def __getattr__(self, name):
        # target, version_cap, timeout, ...: the wrapped client's.
        return getattr(self._client, name)


class _BusyCount:
    """How many messages this process's RPC servers are handling now."""

    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0

    def add(self, delta):
        with self._lock:
            self.value += delta


BUSY_WORKERS = _BusyCount()


class CountingRPCServer(rpc_server.RPCServer):
    """An RPC server whose executor workers are counted while busy."""

    def _process_incoming(self, incoming):
        BUSY_WORKERS.add(1)
        try:
            return super()._process_incoming(incoming)
        finally:
            BUSY_WORKERS.add(-1)


class TimedRPCServer(CountingRPCServer):
    """A counting RPC server that also stamps each message's receipt."""

    def _on_incoming(self, incoming):
        # The listener's thread, as the messages leave the driver: what
        # follows until the handler starts is waiting for a worker.
        received = (time.time(), time.monotonic())
        for message in incoming:
            message.nova_lite_received = received
        super()._on_incoming(incoming)


def busy_workers():
    """RPC executor workers handling a message now, in this process."""
    return BUSY_WORKERS.value


class RPCAccessPolicy(dispatcher.DefaultRPCAccessPolicy):
    """Only the documented API: no ``_`` methods, and none of the public
    plumbing an endpoint lists in ``RPC_PRIVATE`` (periodic task runners,
    start-up hooks)."""

    def is_allowed(self, endpoint, method):
        return (super().is_allowed(endpoint, method) and
                method not in getattr(endpoint, 'RPC_PRIVATE', ()))


def documented_methods(endpoints, access_policy):
    """``{(namespace, method)}`` that RPC may reach on ``endpoints``: the
    only method labels the timings use (anything else is ``_unknown``)."""
    methods = set()
    for endpoint in endpoints:
        target = getattr(endpoint, 'target', None)
        namespace = target.namespace if target is not None else None
        for name in dir(type(endpoint)):
            if (not name.startswith('_') and name != 'target' and
                    callable(getattr(type(endpoint), name, None)) and
                    access_policy.is_allowed(endpoint, name)):
                methods.add((namespace, name))
    return frozenset(methods)


class TimedDispatcher(dispatcher.RPCDispatcher):
    """Times each message's handling (and its wait for a worker) under
    ``topic`` and its method, if documented."""

    def __init__(self, topic, endpoints, serializer, access_policy):
        super().__init__(endpoints, serializer, access_policy)
        self._topic = topic
        self._methods = documented_methods(endpoints, self.access_policy)

    def _method_label(self, message):
        if not isinstance(message, dict):
            return metrics_registry.UNKNOWN_METHOD
        method = message.get('method')
        if (message.get('namespace'), method) in self._methods:
            return method
        return metrics_registry.UNKNOWN_METHOD

    def dispatch(self, incoming):
        started = time.monotonic()
        outcome = 'ok'
        try:
            return super().dispatch(incoming)
        except dispatcher.ExpectedException as exc:
            outcome = exc.exc_info[0].__name__
            raise
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            self._observe(incoming, started, time.monotonic(), outcome)

    def _observe(self, incoming, started, ended, outcome):
        received = getattr(incoming, 'nova_lite_received', None)
        if received is None:
            # Not through TimedRPCServer: received as the handler started.
            received = (time.time(), started)
        received_at, received_mono = received
        ctxt = incoming.ctxt if isinstance(incoming.ctxt, dict) else {}
        queue, skewed = stamps.queue_seconds(ctxt.get(stamps.CONTEXT_KEY),
                                             received_at)
        # A call carries a reply queue (rabbit: reply_q; fake: _reply_q).
        is_call = (getattr(incoming, 'reply_q', None) or
                   getattr(incoming, '_reply_q', None))
        rpc_timing.observe_server(
            self._topic, self._method_label(incoming.message),
            'call' if is_call else 'cast', queue,
            max(0.0, started - received_mono), ended - started, outcome,
            skewed=skewed)


def get_server(target, endpoints):
    """An RPC server of ``endpoints`` on ``target``, every message timed
    (oslo.messaging's ``get_rpc_server``, with our dispatcher; its own
    dispatcher, untimed, after ``init(conf, timed=False)``)."""
    if not _TIMED['on']:
        return messaging.get_rpc_server(
            _transport(), target, endpoints,
            executor=concurrency.RPC_EXECUTOR,
            serializer=RequestContextSerializer(JsonPayloadSerializer(),
                                                stamp=False),
            access_policy=RPCAccessPolicy, server_cls=CountingRPCServer)
    serializer = RequestContextSerializer(JsonPayloadSerializer())
    return TimedRPCServer(
        _transport(), target,
        TimedDispatcher(target.topic, endpoints, serializer, RPCAccessPolicy),
        concurrency.RPC_EXECUTOR)


def get_notifier(publisher_id):
    """A notifier that emits as ``publisher_id`` (e.g. ``compute.host1``)."""
    if NOTIFIER is None:
        raise exception.RPCNotInitialized()
    return NOTIFIER.prepare(publisher_id=publisher_id)


def version_tuple(version):
    major, minor = version.split('.')
    return int(major), int(minor)


def resolve_version_cap(conf, topic, min_service_version):
    """The version cap for ``topic`` from ``[upgrade_levels]``.

    ``min_service_version(topic)`` is called only for ``auto``; it returns
    the lowest version reported by live services of the topic, or None.
    Returns None for no cap, also for a topic with no option (a role a
    user added without registering ``[upgrade_levels] <topic>``).
    """
    value = getattr(conf.upgrade_levels, topic, None)
    if not value:
        return None
    if value == 'auto':
        cap = min_service_version(topic)
        LOG.debug('upgrade_levels %s=auto resolved to %s', topic, cap)
        return cap
    if not _VERSION_RE.match(value):
        raise exception.InvalidVersionCap(topic=topic, value=value)
    return value


# Every rpcapi object of this process, so SIGHUP can re-resolve their caps.
_RPCAPIS = weakref.WeakSet()


def refresh_version_caps():
    """Re-resolve the version cap of every rpcapi object (after SIGHUP)."""
    for rpcapi in list(_RPCAPIS):
        rpcapi.refresh_version_cap()


class RPCAPIBase:
    """What every role's rpcapi shares: target, version cap, client.

    A subclass sets ``TOPIC`` (or takes ``topic=`` per instance, for an
    API served on any topic) and keeps its version history in its
    docstring.  The client starts at 1.0; each method ``prepare``s the
    version it needs, and ``_require`` refuses (with ``VersionCapTooLow``)
    a version the cap does not allow.
    """

    TOPIC = None
    NAMESPACE = None

    def __init__(self, conf, db=None, timeout=None, topic=None):
        self.conf = conf
        self._db = db
        self._timeout = timeout
        if topic is not None:
            self.TOPIC = topic
        self.refresh_version_cap()
        _RPCAPIS.add(self)

    def refresh_version_cap(self):
        """Resolve ``[upgrade_levels]`` again (SIGHUP) and rebuild the client.

        An ``auto`` cap with no live service behind it is not kept: it is
        resolved again on the next use, as Nova does, so the first service
        to come up sets it.
        """
        self.version_cap = self._version_cap()
        self._cap_unresolved = (
            getattr(self.conf.upgrade_levels, self.TOPIC, None) == 'auto'
            and self.version_cap is None)
        target = messaging.Target(topic=self.TOPIC, namespace=self.NAMESPACE,
                                  version='1.0')
        self._client = get_client(target, version_cap=self.version_cap,
                                  timeout=self._timeout)

    @property
    def client(self):
        if self._cap_unresolved:
            self.refresh_version_cap()
        return self._client

    def _version_cap(self):
        return resolve_version_cap(self.conf, self.TOPIC,
                                   self._min_service_version)

    def _min_service_version(self, topic):
        # Imported late: only "auto" caps need the database.
        from nova_lite.db import api as db_api
        from nova_lite import servicegroup

        if self._db is None:
            self._db = db_api.API(self.conf)   # one engine, kept
        return servicegroup.min_version(self._db, topic,
                                        self.conf.service_down_time)

    def can_send_version(self, version):
        return self.client.can_send_version(version)

    def _require(self, method, version, **prepare_kwargs):
        """A prepared client at ``version``, or ``VersionCapTooLow``."""
        client = self.client
        if not client.can_send_version(version):
            raise exception.VersionCapTooLow(method=method, topic=self.TOPIC,
                                             needed=version,
                                             cap=self.version_cap)
        return client.prepare(version=version, **prepare_kwargs)
