"""Where every RPC's timings go: Prometheus and, when enabled, statsd.

The RPC plumbing (``nova_lite.rpc``) measures; this module records:

- server side, per message: ``queue`` (the sender's stamp to receipt),
  ``executor_wait`` (receipt to the handler's start) and ``handling`` (the
  handler, with its outcome);
- client side: a ``call`` from send to reply or timeout, a ``cast`` from
  send to the broker's publish confirm.

statsd names (ms timers; ``[statsd] rpc_sample_rate``)::

    PREFIX.rpc.server.TOPIC.METHOD.{queue,executor_wait,handling}
    PREFIX.rpc.server.TOPIC.METHOD.error              counter
    PREFIX.rpc.client.TOPIC.METHOD.{call,cast}
    PREFIX.rpc.client.TOPIC.METHOD.{error,timeout}    counters

The labelled Prometheus children are cached: ``labels()`` takes a lock and
builds a key on every use, and this runs for every message.  A handled
message takes one look-up for its three histograms, a call or cast one
for its own; nothing is done for statsd while it is disabled.
"""

import statsd

from nova_lite.metrics import registry

_STATSD = {'client': None, 'rate': 1.0}
_CHILDREN = {}
# (topic, method, kind, outcome): the server's three histogram children,
# or the client's one.  Bounded like the labels themselves.
_SERVER = {}
_CLIENT = {}


def configure(conf):
    """Send RPC timings to statsd too when ``[statsd] enabled``."""
    if conf.statsd.enabled:
        _STATSD['client'] = statsd.StatsClient(
            conf.statsd.host, conf.statsd.port, prefix=conf.statsd.prefix)
        _STATSD['rate'] = conf.statsd.rpc_sample_rate
    else:
        _STATSD['client'] = None


def _child(metric, *labels):
    key = (metric, labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


def _server_children(key):
    topic, method, kind, outcome = key
    children = _SERVER[key] = (
        _child(registry.RPC_SERVER_QUEUE, topic, method, kind),
        _child(registry.RPC_SERVER_EXECUTOR_WAIT, topic, method, kind),
        _child(registry.RPC_SERVER_HANDLING, topic, method, kind, outcome))
    return children


def observe_server(topic, method, kind, queue, executor_wait, handling,
                   outcome, skewed=False):
    """One handled message; ``queue`` is None for an unstamped one."""
    key = (topic, method, kind, outcome)
    queue_child, wait_child, handling_child = (
        _SERVER.get(key) or _server_children(key))
    if queue is None:
        _child(registry.RPC_UNSTAMPED, topic, method).inc()
    else:
        if skewed:
            _child(registry.RPC_CLOCK_SKEW, topic, method).inc()
        queue_child.observe(queue)
    wait_child.observe(executor_wait)
    handling_child.observe(handling)
    client = _STATSD['client']
    if client is not None:
        rate = _STATSD['rate']
        base = 'rpc.server.%s.%s.' % (topic, method)
        with client.pipeline() as pipe:
            if queue is not None:
                pipe.timing(base + 'queue', queue * 1000.0, rate)
            pipe.timing(base + 'executor_wait', executor_wait * 1000.0, rate)
            pipe.timing(base + 'handling', handling * 1000.0, rate)
            if outcome != 'ok':
                pipe.incr(base + 'error', 1, rate)


def observe_client(topic, method, kind, seconds, outcome):
    """One call (send to reply or timeout) or cast (send to confirm)."""
    key = (topic, method, kind, outcome)
    child = _CLIENT.get(key)
    if child is None:
        child = _CLIENT[key] = _child(registry.RPC_CLIENT, *key)
    child.observe(seconds)
    client = _STATSD['client']
    if client is not None:
        rate = _STATSD['rate']
        base = 'rpc.client.%s.%s.' % (topic, method)
        with client.pipeline() as pipe:
            pipe.timing(base + kind, seconds * 1000.0, rate)
            if outcome == 'timeout':
                pipe.incr(base + 'timeout', 1, rate)
            elif outcome != 'ok':
                pipe.incr(base + 'error', 1, rate)
