"""Running nova_lite daemons as child processes (dev deployment, tests)."""

import os
import signal
import subprocess
import sys


def daemon_module(binary):
    """``nova-lite-compute`` -> ``nova_lite.cmd.compute``."""
    return 'nova_lite.cmd.%s' % binary[len('nova-lite-'):]


def spawn_logged(argv, log_path, env=None):
    """Start ``argv`` with its output appended to ``log_path``, in a
    session of its own (a Ctrl-C meant for the parent does not reach it;
    the parent decides when to stop it); (Popen, the open log file)."""
    log = open(log_path, 'ab')
    popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    return popen, log


class DaemonProcess:
    """One daemon, its output appended to ``log_path``; ``env`` replaces
    the inherited environment."""

    def __init__(self, binary, host, config_files, log_path, env=None):
        self.binary = binary
        self.host = host
        self.log_path = log_path
        argv = [sys.executable, '-m', daemon_module(binary)]
        for path in config_files:
            argv += ['--config-file', path]
        self._terminated = False
        self.popen, self._log = spawn_logged(argv, log_path, env)

    def __repr__(self):
        return '<DaemonProcess %s on %s pid %s>' % (self.binary, self.host,
                                                    self.pid)

    @property
    def pid(self):
        return self.popen.pid

    def signal(self, signum):
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signum)
            if signum == signal.SIGTERM:
                self._terminated = True

    def wait(self, timeout=None):
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code.

        SIGTERM goes once: a second one that lands while the interpreter
        finalizes (and has restored default handlers) would kill it.
        """
        if not self._terminated:
            self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()
        finally:
            self._log.close()

    def log_text(self):
        with open(self.log_path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')


def start_in(state_dir, binary, host, config_files, values=None, env=None):
    """Start ``binary`` as ``host`` with the files of a state directory:
    ``config_files`` plus ``STATE/BINARY-HOST.conf`` (``[DEFAULT] host``
    and ``values``, ``{group: {option: value}}``), its log in
    ``STATE/BINARY-HOST.log``; a DaemonProcess."""
    from nova_lite import config  # not needed to merely stop daemons

    merged = {'DEFAULT': {'host': host}}
    for group, options in (values or {}).items():
        merged.setdefault(group, {}).update(options)
    name = os.path.join(state_dir, '%s-%s' % (binary, host))
    own = config.write_config_file(name + '.conf', merged)
    return DaemonProcess(binary, host, list(config_files) + [own],
                         name + '.log', env=env)


def stop_all(daemons, timeout=15):
    """Stop ``daemons`` together; returns ``[(daemon, exit code)]``.

    All get SIGTERM first, so their graceful shutdowns overlap.
    """
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
    return [(daemon, daemon.stop(timeout)) for daemon in daemons]
