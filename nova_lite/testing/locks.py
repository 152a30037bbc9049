"""Lock holders and probes in processes of their own, for tests of the
tooz locks (``nova_lite.coordination``).

A test process cannot look at its own locks from outside: with the file
backend, POSIX locks are per process, and tooz keeps one process's
holders apart only within one coordinator.  So a probe asks from a fresh
process, as another host would, and a holder holds from its own, as a
conductor workflow does::

    locks.free_of(url, names)              # {name: True if free}
    with locks.Holder(url, names) as holder:   # holds them from here
        ...                                # the API answers 409
        holder.release()                   # a clean exit: released
    holder.kill()                          # or SIGKILL: no release at all

``url`` is a tooz backend URL (``coordination.backend_url(conf)``); it is
handed over on stdin, not in argv, since it may hold a password.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

from nova_lite import coordination
from nova_lite import exception
from nova_lite import utils

# Runs in the child: the URL on its first stdin line, a Coordinator (its
# member id argv[1]), then the command in argv[2] on the lock names that
# follow: "probe", or a hold with that many seconds to wait for them.
_CHILD = textwrap.dedent('''
    import json, sys
    from nova_lite import monkey_patch  # noqa: F401  (the backend first)
    from oslo_config import cfg
    from nova_lite import concurrency, conf as nova_conf, coordination
    from nova_lite import exception
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite', default_config_files=[])
    conf.set_override('backend_url', sys.stdin.readline().strip(),
                      group='coordination')
    coord = coordination.Coordinator(conf, sys.argv[1])
    coord.start()
    command, names = sys.argv[2], sys.argv[3:]
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
            # Until stdin closes (release).  Read in a native thread:
            # under eventlet a plain read blocks the hub, and with it the
            # heartbeats that keep leases alive.
            concurrency.execute_in_thread(sys.stdin.read)
    coord.stop()
''')

PROBE_TIMEOUT = 60


def _start(url, member_id, command, names, **kwargs):
    popen = subprocess.Popen(
        [sys.executable, '-c', _CHILD, member_id, command] + list(names),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kwargs)
    popen.stdin.write(url + '\n')
    popen.stdin.flush()
    return popen


def free_of(url, names):
    """``{name: True if nobody holds it}``, asked by a new process."""
    popen = _start(url, 'probe-%d' % os.getpid(), 'probe', names,
                   stderr=subprocess.PIPE)
    try:
        out, err = popen.communicate(timeout=PROBE_TIMEOUT)
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
    if popen.returncode != 0:
        raise exception.CoordinationError(
            url=utils.mask_url(url),
            reason='lock probe failed: %s' % err[-2000:])
    return json.loads(out.splitlines()[-1])


class Holder:
    """A process that takes ``names`` (waiting up to ``timeout`` s) and
    holds them, heartbeating, until ``release`` or ``kill``; started by
    the constructor, which returns once it holds them."""

    def __init__(self, url, names, member_id='holder', timeout=0):
        # A file, not a pipe: a full pipe would stall its heartbeats.
        self._stderr = tempfile.TemporaryFile(mode='w+')
        self.popen = _start(url, member_id, str(timeout), names,
                            stderr=self._stderr)
        line = self.popen.stdout.readline().strip()
        if line != 'held':
            self.kill()
            self._stderr.seek(0)
            raise exception.CoordinationError(
                url=utils.mask_url(url), reason='lock holder failed: %s'
                % self._stderr.read()[-2000:])

    def release(self, timeout=30):
        """Let the holder leave its ``with`` block and exit cleanly."""
        if self.popen.poll() is None:
            self.popen.stdin.close()
            self.popen.wait(timeout=timeout)

    def kill(self):
        """SIGKILL, as a crash: its locks are never released by it."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.kill()
        for stream in (self.popen.stdin, self.popen.stdout, self._stderr):
            if not stream.closed:
                stream.close()


def holder_for(conf, names, **kwargs):
    """A ``Holder`` of ``names`` on the backend ``conf`` gives (its
    ``[coordination] backend_url``, or the file one under its
    ``state_path``), as the daemons under test use it."""
    return Holder(coordination.backend_url(conf), names, **kwargs)
