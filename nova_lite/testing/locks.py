"""Lock holders and probes in processes of their own, for tests of the
tooz locks (``nova_lite.coordination``).

A test process cannot look at its own locks from outside: with the file
backend, POSIX locks are per process, and tooz keeps one process's
holders apart only within one coordinator.  So a probe asks from a fresh
process, as another host would::

    locks.free_of(url, names)            # {name: True if free}
    holder = locks.Holder(url, names)    # holds them until killed
    holder.kill()                        # SIGKILL: no release, no goodbye

``url`` is a tooz backend URL (``coordination.backend_url(conf)``).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

from nova_lite import exception
from nova_lite import utils

# Runs in the child: a Coordinator on argv[1] (its member id argv[2]),
# then the command in argv[3] on the lock names that follow.
_CHILD = textwrap.dedent('''
    import json, sys
    from nova_lite import monkey_patch  # noqa: F401
    from oslo_config import cfg
    from nova_lite import concurrency, conf as nova_conf, coordination
    from nova_lite import exception
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite')
    conf.set_override('backend_url', sys.argv[1], group='coordination')
    coord = coordination.Coordinator(conf, sys.argv[2])
    coord.start()
    command, names = sys.argv[3], sys.argv[4:]
    if command == 'probe':
        free = {}
        for name in names:
            try:
                with coord.locked([name], timeout=0):
                    free[name] = True
            except exception.ResourceLocked:
                free[name] = False
        print(json.dumps(free), flush=True)
    else:
        with coord.locked(names, timeout=float(command)):
            print('held', flush=True)
            # Not sys.stdin.read(): under eventlet that blocks the hub,
            # and with it the heartbeats that keep leases alive.
            concurrency.Event().wait()
    coord.stop()
''')

PROBE_TIMEOUT = 60


def _command(url, member_id, command, names):
    return [sys.executable, '-c', _CHILD, url, member_id, command] + list(
        names)


def free_of(url, names):
    """``{name: True if nobody holds it}``, asked by a new process."""
    result = subprocess.run(
        _command(url, 'probe-%d' % os.getpid(), 'probe', names),
        capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    if result.returncode != 0:
        raise exception.CoordinationError(
            url=utils.mask_url(url),
            reason='lock probe failed: %s' % result.stderr[-2000:])
    return json.loads(result.stdout.splitlines()[-1])


class Holder:
    """A process that takes ``names`` (waiting up to ``timeout`` s) and
    holds them, heartbeating, until ``kill``; started by the constructor,
    which returns once it holds them."""

    def __init__(self, url, names, member_id='holder', timeout=0):
        # A file, not a pipe: a full pipe would stall its heartbeats.
        self._stderr = tempfile.TemporaryFile(mode='w+')
        self.popen = subprocess.Popen(
            _command(url, member_id, str(timeout), names),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True)
        line = self.popen.stdout.readline().strip()
        if line != 'held':
            self.kill()
            self._stderr.seek(0)
            raise exception.CoordinationError(
                url=utils.mask_url(url), reason='lock holder failed: %s'
                % self._stderr.read()[-2000:])

    def kill(self):
        """SIGKILL, as a crash: its locks are never released by it."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        for stream in (self.popen.stdout, self._stderr):
            stream.close()
