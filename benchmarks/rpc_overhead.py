"""What RPC metrics cost, piece by piece, in one process.

    python benchmarks/rpc_overhead.py        # rpc_bench.py runs it per backend

The full-stack benchmark (``rpc_bench.py``) measures CPU per call in
processes that share two cores with the broker and, on a shared machine,
with whatever else runs; a round can move 10% or more.  This measures what
the metrics add, each piece against the same code without it, in this one
process (``time.process_time``, the best of many repeats), on the backend
``nova_lite.monkey_patch`` picks from the environment.  Prints JSON:

- ``client_wrap``: ``TimedClient.call`` (``observe_client`` included) around
  a client that returns at once, minus that client alone; us per call.
- ``stamp_encode``: the context serialized with the stamp and the message
  JSON-encoded twice, as the rabbit driver does, minus the same unstamped.
- ``stamp_decode``: the two JSON decodes on the server, stamped minus not.
- ``receipt``: ``TimedRPCServer._on_incoming`` minus oslo.messaging's.
- ``dispatch``: ``TimedDispatcher.dispatch`` minus ``RPCDispatcher``'s for
  the same message (the handler's clocks, ``queue_seconds``,
  ``observe_server``).
- ``watchdog``: the hub-lag watchdog's CPU, ms per second of wall time.
- ``scrape``: rendering /metrics (``generate_latest``) with the series a
  benchmark server holds, ms per scrape (the HTTP exchange left out).
"""

import json
import os
import sys
import time
import timeit

REPEATS = 25


def _cpu_us(fn, number):
    return timeit.timeit(fn, number=number,
                         timer=time.process_time) / number * 1e6


def best(fn, number):
    """Best CPU us per call of ``fn`` over REPEATS runs of ``number``."""
    return min(_cpu_us(fn, number) for _ in range(REPEATS))


def diff(timed, plain, number):
    """``timed`` minus ``plain`` (us, best of each), measured in turns so
    that both meet the same conditions."""
    best_timed = best_plain = float('inf')
    for _ in range(REPEATS):
        best_timed = min(best_timed, _cpu_us(timed, number))
        best_plain = min(best_plain, _cpu_us(plain, number))
    return max(0.0, best_timed - best_plain)


class _Client:
    def call(self, ctxt, method, **kwargs):
        return None


class _Executor:
    def submit(self, func, *args):
        return None


class _Incoming:
    """What a dispatcher reads of an incoming call (rabbit's fields)."""

    def __init__(self, ctxt):
        self.ctxt = ctxt
        self.message = {'method': 'echo', 'args': {'arg': 'x'},
                        'version': '1.0'}
        self.reply_q = 'reply_q'
        self.client_timeout = None
        self.nova_lite_received = (time.time(), time.monotonic())


def _wire(serializer, ctxt):
    """The rabbit driver's two JSON encodings of a call, and their
    decodings, as two functions."""
    from kombu.utils import json as kombu_json
    from oslo_serialization import jsonutils

    def message():
        msg = {'method': 'echo', 'args': {'arg': 'x'}, 'version': '1.0',
               '_msg_id': 'a' * 32, '_reply_q': 'reply_' + 'b' * 32,
               '_timeout': None, '_unique_id': 'c' * 32}
        for key, value in serializer.serialize_context(ctxt).items():
            msg['_context_' + key] = value
        return msg

    def encode():
        return kombu_json.dumps({'oslo.version': '2.0',
                                 'oslo.message': jsonutils.dumps(message())})
    body = encode()

    def decode():
        return jsonutils.loads(kombu_json.loads(body)['oslo.message'])
    return encode, decode


def measure():
    from nova_lite import monkey_patch  # noqa: F401
    import oslo_messaging as messaging
    from oslo_messaging import server as om_server
    from oslo_messaging.rpc import dispatcher
    import prometheus_client

    from nova_lite import concurrency
    from nova_lite import config
    from nova_lite import context
    from nova_lite.metrics import rpc_timing
    from nova_lite.metrics import stamps
    from nova_lite.metrics import watchdog
    from nova_lite import rpc

    conf = config.parse_args([], default_config_files=[])
    rpc_timing.configure(conf)
    stamps.configure('bench')
    ctxt = context.get_admin_context()
    result = {'backend': concurrency.BACKEND}

    plain, timed = _Client(), rpc.TimedClient(_Client(), 'bench')
    result['client_wrap'] = diff(
        lambda: timed.call(ctxt, 'echo', arg='x'),
        lambda: plain.call(ctxt, 'echo', arg='x'), 20000)

    stamped = rpc.RequestContextSerializer(rpc.JsonPayloadSerializer())
    unstamped = rpc.RequestContextSerializer(rpc.JsonPayloadSerializer(),
                                             stamp=False)
    encode_s, decode_s = _wire(stamped, ctxt)
    encode_u, decode_u = _wire(unstamped, ctxt)
    result['stamp_encode'] = diff(encode_s, encode_u, 5000)
    result['stamp_decode'] = diff(decode_s, decode_u, 5000)

    server = object.__new__(rpc.TimedRPCServer)
    server._work_executor = _Executor()
    incoming = [_Incoming(stamped.serialize_context(ctxt))]
    result['receipt'] = diff(
        lambda: server._on_incoming(incoming),
        lambda: om_server.MessageHandlingServer._on_incoming(server,
                                                             incoming),
        20000)

    class Endpoint:
        target = messaging.Target(version='1.0')

        def echo(self, context, arg):
            return arg
    timed_d = rpc.TimedDispatcher('bench', [Endpoint()], stamped,
                                  rpc.RPCAccessPolicy)
    plain_d = dispatcher.RPCDispatcher([Endpoint()], stamped,
                                       rpc.RPCAccessPolicy)
    message = incoming[0]
    result['dispatch'] = diff(lambda: timed_d.dispatch(message),
                              lambda: plain_d.dispatch(message), 5000)

    # A benchmark server's series: its methods, the health's ping.
    for method in ('echo', 'count_cast', 'get_count', 'reset_count',
                   'ping'):
        rpc_timing.observe_server('bench', method, 'call', 0.001, 0.0001,
                                  0.001, 'ok')
        rpc_timing.observe_client('bench', method, 'call', 0.002, 'ok')
    result['scrape'] = best(prometheus_client.generate_latest, 20) / 1000.0
    result['scrape_kb'] = len(prometheus_client.generate_latest()) / 1024.0

    dog = watchdog.HubWatchdog()
    dog.start()
    concurrency.sleep(1.0)
    cpu, wall = time.process_time(), time.monotonic()
    concurrency.sleep(5.0)
    result['watchdog'] = ((time.process_time() - cpu) /
                          (time.monotonic() - wall) * 1000.0)
    dog.stop()
    return result


def main():
    print(json.dumps(measure()), flush=True)
    # Leave at once: the watchdog's loop may still be asleep.
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
