"""A per-test watchdog: a test that hangs fails with every stack printed.

A test stuck on a lost wake-up leaves the process idle for good, and CI
only says that the job ran out of time.  ``arm(seconds, name)`` starts a
native timer (it fires even when the eventlet hub or every green thread
is stuck); when it fires it writes the stack of every native thread and,
under eventlet, of every live greenlet to stderr, then ends the process.
``disarm()`` stops it.  tests/conftest.py arms it around every test.
"""

import gc
import os
import sys
import traceback

from nova_lite import concurrency

_timer = None


def _stacks():
    lines = []
    for ident, frame in sys._current_frames().items():
        lines.append('--- native thread %s\n' % ident)
        lines.extend(traceback.format_stack(frame))
    if concurrency.BACKEND == 'eventlet':
        import greenlet
        for obj in gc.get_objects():
            if isinstance(obj, greenlet.greenlet) and obj.gr_frame:
                lines.append('--- greenlet %r\n' % obj)
                lines.extend(traceback.format_stack(obj.gr_frame))
    return ''.join(lines)


def _fire(seconds, name, before_report):
    if before_report is not None:
        before_report()          # e.g. stop pytest capturing stderr
    sys.stderr.write('\n*** watchdog: %s still running after %d s; every '
                     'stack follows, then the process ends\n%s' % (
                         name, seconds, _stacks()))
    sys.stderr.flush()
    os._exit(70)


def arm(seconds, name, before_report=None):
    """Fire after ``seconds`` unless disarmed; ``before_report()`` runs
    first when it fires."""
    global _timer
    disarm()
    _timer = concurrency.native_timer(seconds, _fire, seconds, name,
                                      before_report)


def disarm():
    global _timer
    if _timer is not None:
        _timer.cancel()
        _timer = None
