"""One process of a test Nova cloud (a Nova service or a WSGI server) in
a session of its own, so that a signal reaches its forked workers too."""

import os
import signal
import subprocess

from nova_lite import process


class NovaProcess:
    """One process of the cloud (a Nova service or a WSGI server), in a
    session of its own, its output in ``log_path``."""

    def __init__(self, name, argv, log_path, env):
        self.name = name
        self.log_path = log_path
        self.popen, self._log = process.spawn_logged(argv, log_path, env)

    def __repr__(self):
        return '<NovaProcess %s pid %s>' % (self.name, self.pid)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, signum):
        """Send ``signum`` (e.g. SIGKILL, SIGSTOP, SIGCONT) to every process
        of this one's session: nova-conductor and nova-scheduler serve from
        a worker that their master process forks, gunicorn from its
        workers, so a signal to ``pid`` alone would miss the process that
        consumes the queue."""
        if self.alive():
            os.killpg(self.pid, signum)

    def worker_pids(self):
        """The pids of the other processes of its session (the forked
        workers), from /proc."""
        pids = []
        for entry in os.listdir('/proc'):
            if entry.isdigit() and int(entry) != self.pid:
                try:
                    if os.getpgid(int(entry)) == self.pid:
                        pids.append(int(entry))
                except ProcessLookupError:
                    pass
        return sorted(pids)

    def terminate(self):
        """SIGCONT (it may be stopped) and SIGTERM to its session."""
        try:
            if self.alive():
                os.killpg(self.pid, signal.SIGCONT)
                os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def stop(self, timeout=10):
        """``terminate()``, then SIGKILL of its whole session (workers
        too) after ``timeout``; returns the exit code (None if killed)."""
        self.terminate()
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.popen.poll()
            self._log.close()

    def rss_bytes(self):
        """Resident memory of this process and its workers, from /proc
        (pages shared after a fork count once per process)."""
        total = 0
        for pid in [self.pid] + self.worker_pids():
            try:
                with open('/proc/%d/status' % pid) as handle:
                    for line in handle:
                        if line.startswith('VmRSS:'):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, 'rb') as handle:
                text = handle.read().decode('utf-8', 'replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])
