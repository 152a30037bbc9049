"""The sender's stamp every RPC message carries, and the queue time it gives.

The stamp rides in the RPC *context* (``nova_lite_stamp``), not in a
method's arguments, so every method of every role has it and a foreign
client that sends none still works (its messages are counted as
unstamped).  It holds the sender's wall clock when the message was
serialized (just before the publish), the sender's host, and the sender's
clock offset to the reference clock when it knows it.

Clocks: every offset is a host's wall clock minus the *database server's*
clock, one reference for the whole deployment, so that offsets measured by
different probers compose (see ``nova_lite.inflight.clocks``).  A service
learns its own offset from the database with its heartbeat.  The queue time
is then::

    queue = (received_at - receiver_offset) - (sent_at - sender_offset)

A result that is still negative (an offset not measured yet, or one that
moved since) is observed as 0 and counted as clock skew, never dropped.
"""

import time

CONTEXT_KEY = 'nova_lite_stamp'

# This process: the host in its stamps, and its clock's offset to the
# reference in seconds (None until measured).
_SELF = {'host': None, 'offset': None}


def configure(host):
    """Set the host this process stamps its messages with."""
    _SELF['host'] = host


def set_own_offset(offset):
    """This host's clock minus the reference clock, in seconds (or None)."""
    _SELF['offset'] = offset


def own_offset():
    return _SELF['offset']


def make():
    """A stamp for a message being sent now."""
    return {'sent_at': time.time(), 'host': _SELF['host'],
            'offset': _SELF['offset']}


def queue_seconds(stamp, received_at):
    """``(seconds, skewed)`` from ``stamp`` to ``received_at`` (this
    process's wall clock), both clocks corrected to the reference; None
    for ``seconds`` when ``stamp`` is missing or malformed."""
    try:
        sent_at = float(stamp['sent_at'])
        sender_offset = float(stamp.get('offset') or 0.0)
    except (TypeError, KeyError, ValueError, AttributeError):
        return None, False
    queue = ((received_at - (_SELF['offset'] or 0.0)) -
             (sent_at - sender_offset))
    if queue < 0:
        return 0.0, True
    return queue, False
