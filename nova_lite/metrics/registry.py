"""Every Prometheus metric nova_lite exports, in one place.

The names and labels are an interface (README, *Observability*): dashboards
and alerts are written against them.  Labels stay bounded: a topic, a
method (only a role's documented RPC methods, anything else is
``_unknown``), a kind (``call``/``cast``), an outcome (``ok``, ``timeout``
or an exception's class name) and a phase.  Never an instance id, a
request id or a free-text message.

Metrics live in prometheus-client's default registry, which also holds its
process collector (CPU, RSS, open fds).  One process, one registry:
nova-lite-all's services share these series, told apart by ``topic``.
"""

import prometheus_client as prom

# Seconds; the same for every histogram, so that one PromQL query fits all.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
           1, 2.5, 5, 10, 30, 60)

UNKNOWN_METHOD = '_unknown'

RPC_SERVER_QUEUE = prom.Histogram(
    'nova_lite_rpc_server_queue_seconds',
    'From the sender\'s stamp to the moment the message left the broker '
    'into this process (clock offsets corrected).',
    ['topic', 'method', 'kind'], buckets=BUCKETS)
RPC_SERVER_EXECUTOR_WAIT = prom.Histogram(
    'nova_lite_rpc_server_executor_wait_seconds',
    'From receipt to the start of the handler: waiting for a free RPC '
    'executor worker.',
    ['topic', 'method', 'kind'], buckets=BUCKETS)
RPC_SERVER_HANDLING = prom.Histogram(
    'nova_lite_rpc_server_handling_seconds',
    'The handler itself, by outcome (ok, or the exception\'s class).',
    ['topic', 'method', 'kind', 'outcome'], buckets=BUCKETS)
RPC_CLIENT = prom.Histogram(
    'nova_lite_rpc_client_seconds',
    'A call from send to reply (or timeout); a cast from send to the '
    'broker\'s publish confirm.',
    ['topic', 'method', 'kind', 'outcome'], buckets=BUCKETS)
RPC_CLOCK_SKEW = prom.Counter(
    'nova_lite_rpc_clock_skew',
    'Messages whose queue time came out negative after the clock offset '
    'correction; observed as 0.',
    ['topic', 'method'])
RPC_UNSTAMPED = prom.Counter(
    'nova_lite_rpc_unstamped',
    'Messages without a sender\'s stamp (a foreign client): no queue time.',
    ['topic', 'method'])

HUB_LAG = prom.Histogram(
    'nova_lite_hub_lag_seconds',
    'How late a 0.1 s watchdog sleep woke up: a busy or blocked hub under '
    'eventlet, GIL contention or CPU starvation under threading.',
    buckets=BUCKETS)
EXECUTOR_WORKERS = prom.Gauge(
    'nova_lite_executor_workers',
    'RPC executor workers of this process, busy or idle.', ['state'])
THREADS = prom.Gauge(
    'nova_lite_threads',
    'Live greenthreads (eventlet) or threads (threading) of this process.')

# The inflight daemon's.
INFLIGHT_SECONDS = prom.Histogram(
    'nova_lite_inflight_seconds',
    'Inflight probe phases, per topic.', ['topic', 'phase'], buckets=BUCKETS)
INFLIGHT_LAST = prom.Gauge(
    'nova_lite_inflight_last_seconds',
    'Each service\'s last inflight sample, per phase.',
    ['topic', 'host', 'phase'])
INFLIGHT_TIMEOUTS = prom.Counter(
    'nova_lite_inflight_timeouts', 'Inflight probes that timed out.',
    ['topic', 'host'])
SERVICE_REACHABLE = prom.Gauge(
    'nova_lite_service_reachable',
    '1 when the service\'s last inflight probe was answered.',
    ['topic', 'host'])
SERVICE_UP = prom.Gauge(
    'nova_lite_service_up',
    '1 when the service\'s heartbeat is recent (service_down_time).',
    ['topic', 'host'])
SERVICE_HEARTBEAT_AGE = prom.Gauge(
    'nova_lite_service_heartbeat_age_seconds',
    'Seconds since the service\'s last heartbeat, as its service list says.',
    ['topic', 'host'])
SERVICE_FLAG = prom.Gauge(
    'nova_lite_service_flag',
    '1 when the service\'s last probe round flagged it: unreachable (up by '
    'heartbeat, timed out by RPC), no_consumers (its queue has messages '
    'and no consumer), slow (round trip far above the round\'s median).',
    ['topic', 'host', 'flag'])
QUEUE_MESSAGES = prom.Gauge(
    'nova_lite_queue_messages',
    'Messages ready in a queue: a topic\'s, or a service\'s topic.host.',
    ['queue'])
QUEUE_UNACKED = prom.Gauge(
    'nova_lite_queue_unacked',
    'Messages a consumer of a queue took and has not acknowledged (a '
    'frozen consumer holds them); only with [inflight] '
    'rabbit_management_url.', ['queue'])
QUEUE_CONSUMERS = prom.Gauge(
    'nova_lite_queue_consumers',
    'Consumers of a queue: a topic\'s, or a service\'s topic.host.',
    ['queue'])

# The inflight daemons' shared probing (nova_lite.inflight.ring).
INFLIGHT_MEMBERS = prom.Gauge(
    'nova_lite_inflight_members',
    'Inflight daemons in the probing group, as this one sees it.')
INFLIGHT_OWNED_SERVICES = prom.Gauge(
    'nova_lite_inflight_owned_services',
    'Services this inflight daemon probed in its last round (its share).')
INFLIGHT_COORDINATION_FALLBACK = prom.Gauge(
    'nova_lite_inflight_coordination_fallback',
    '1 while the coordination backend is unreachable and this daemon probes '
    'its last known share (everything, if it never joined).')
INFLIGHT_REBALANCES = prom.Counter(
    'nova_lite_inflight_rebalances',
    'Joins and leaves seen in the probing group: each one moves services '
    'between probers.')
INFLIGHT_ROUND_OVERRUNS = prom.Counter(
    'nova_lite_inflight_round_overruns',
    'Probe rounds that ended after their interval did; the next round '
    'starts at the next boundary, never overlapping.')
INFLIGHT_ROUND_SECONDS = prom.Histogram(
    'nova_lite_inflight_round_seconds',
    'How long a probe round of this daemon took.', buckets=BUCKETS)
