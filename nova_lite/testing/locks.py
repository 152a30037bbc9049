"""A separate process that holds coordination locks, as a conductor
workflow does, so that a test can watch what is refused meanwhile.

    with locks.LockHolder(conf, coordination.lock_names(server, [volume])):
        ...   # the API answers 409
    # the holder has exited: the locks are free

One process, because the file backend's locks are per process: a lock
held by the test process itself would not keep the test's own API app
out.  ``conf`` only gives the backend: ``[coordination] backend_url`` or
``state_path`` (the file backend's directory), as the daemons under test
use it.
"""

import os
import signal
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent('''
    from nova_lite import monkey_patch  # noqa: F401  (the backend first)
    import sys
    from oslo_config import cfg
    from nova_lite import conf as nova_conf, coordination
    conf = cfg.ConfigOpts()
    nova_conf.register_opts(conf)
    conf([], project='nova_lite', default_config_files=[])
    conf.set_override('state_path', sys.argv[1])
    conf.set_override('backend_url', sys.stdin.readline().strip(),
                      group='coordination')
    coord = coordination.Coordinator(conf, 'lock-holder')
    coord.start()
    with coord.locked(sys.argv[2:], timeout=0):
        print('held', flush=True)
        sys.stdin.read()
    coord.stop()
''')


class LockHolderError(Exception):
    pass


class LockHolder:
    """Holds ``names`` in a child process from ``start`` (or ``with``)
    until ``release`` (a clean exit) or ``kill`` (SIGKILL)."""

    def __init__(self, conf, names):
        self.state_path = conf.state_path
        self.backend_url = conf.coordination.backend_url or ''
        self.names = list(names)
        self.proc = None

    def start(self):
        # The URL on stdin: it may hold a password.
        self.proc = subprocess.Popen(
            [sys.executable, '-c', _SCRIPT, self.state_path] + self.names,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
        self.proc.stdin.write(self.backend_url + '\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != 'held':
            self.kill()
            raise LockHolderError('the lock holder did not get %s: %s' % (
                ', '.join(self.names), self.proc.stderr.read()[-2000:]))
        return self

    def release(self, timeout=30):
        """Let the holder leave its ``with`` block and exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=timeout)

    def kill(self):
        """SIGKILL: the locks go with the process (file backend) or when
        their lease runs out."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
