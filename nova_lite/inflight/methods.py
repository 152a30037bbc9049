"""How a service is probed: ``inflight`` where it answers that, else
``ping``.

    inflight  baseapi.inflight (nova_lite's own services): the four-way
              split of the round trip (``nova_lite.inflight.probe``).
    ping      baseapi.ping, which every Nova service serves (namespace
              ``baseapi`` 1.1, on its ``control_exchange``, topic +
              ``server=host``) and nova_lite's too: the round trip
              (``total``) only.  No Nova method returns server-side
              timestamps, so the other phases stay None: not measured.

There is no option to choose: a service not yet known is pinged first,
and its reply says what it is.  nova_lite's reply names its binary; Nova's
names only the topic.  A nova_lite service is then probed with
``inflight`` at once, and from then on; a Nova service is pinged from then
on (``MethodBook``, per topic and host), so a Nova service is never sent
anything but pings.  A service known to answer ``inflight`` that says it
no longer does (oslo.messaging's NoSuchMethod or UnsupportedVersion,
raised by the service's dispatcher: it was replaced) is pinged at once,
and from then on.  A timeout is a timeout, never a reason to switch: a
stuck service must not change how it is measured, and one that has never
answered is asked again next time.  ``nova-lite-ping --method`` forces
one, for debugging.
"""

import threading
import time

from nova_lite.inflight import probe

METHODS = (probe.INFLIGHT, probe.PING)


def ping(client, ctxt, topic, host=None, timeout=None):
    """One ``baseapi.ping`` with ``client`` (a BaseRPCAPI); a Sample with
    the round trip as ``total``.  Never raises for what the target does."""
    # Imported here, as in probe: the arithmetic needs no oslo.messaging.
    import oslo_messaging as messaging

    sent_at = time.time()
    sent_mono = time.monotonic()
    try:
        reply = client.ping(ctxt, {'sent_at': sent_at}, host=host,
                            timeout=timeout)
    except messaging.MessagingTimeout:
        return probe.Sample(topic=topic, host=host, timed_out=True,
                            sent_at=sent_at, method=probe.PING)
    except Exception as exc:  # noqa: BLE001 - reported, never fatal
        return probe.Sample(topic=topic, host=host, sent_at=sent_at,
                            error=probe.one_line(exc), method=probe.PING)
    total = (time.monotonic() - sent_mono) * 1000.0
    reply = reply if isinstance(reply, dict) else {}
    # nova_lite's reply says who answered; Nova's names the topic only.
    return probe.Sample(topic=topic, host=reply.get('host') or host,
                        binary=reply.get('binary'),
                        version=reply.get('version'), total=total,
                        sent_at=sent_at, method=probe.PING)


class MethodBook:
    """The method each (topic, host) answered, remembered; thread-safe.

    ``probe(...)`` probes a service with its method: a ping to find out,
    then ``inflight`` for nova_lite's services and ``ping`` for Nova's.
    """

    def __init__(self):
        self._methods = {}
        # map_concurrently probes from several threads at once.
        self._lock = threading.Lock()

    def method(self, topic, host):
        """The method remembered for ``topic``@``host``; None if unknown."""
        with self._lock:
            return self._methods.get((topic, host))

    def remember(self, topic, host, method):
        with self._lock:
            self._methods[(topic, host)] = method

    def forget_others(self, keys):
        """Keep only the services of ``keys`` ((topic, host) pairs): one
        that left the list and comes back is asked afresh."""
        keys = set(keys)
        with self._lock:
            for key in set(self._methods) - keys:
                del self._methods[key]

    def probe(self, client, ctxt, topic, host=None, sleep=1.0, timeout=None,
              method=None):
        """A Sample of ``topic``@``host`` with ``method`` if given (no
        fallback then: an unsupported method is an error), else with the
        one it answers."""
        if method is None:
            method = self.method(topic, host)
            fallback = True
        else:
            fallback = False
        if method is None:
            return self._find_out(client, ctxt, topic, host, sleep, timeout)
        if method == probe.PING:
            return ping(client, ctxt, topic, host=host, timeout=timeout)
        try:
            return probe.probe(client, ctxt, topic, host=host, sleep=sleep,
                               timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - probe raises no other
            if not fallback:
                return probe.Sample(topic=topic, host=host,
                                    sent_at=time.time(),
                                    error=probe.one_line(exc),
                                    method=probe.INFLIGHT)
        self.remember(topic, host, probe.PING)
        return ping(client, ctxt, topic, host=host, timeout=timeout)

    def _find_out(self, client, ctxt, topic, host, sleep, timeout):
        """Ping a service not known yet; its reply says which it is."""
        pinged = ping(client, ctxt, topic, host=host, timeout=timeout)
        if not pinged.answered:
            return pinged
        if pinged.binary is None:
            # Nova's reply names only the topic: round trip only.
            self.remember(topic, host, probe.PING)
            return pinged
        self.remember(topic, host, probe.INFLIGHT)
        return self.probe(client, ctxt, topic, host=host, sleep=sleep,
                          timeout=timeout)
