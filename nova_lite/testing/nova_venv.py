"""A virtualenv with a real Nova 34 and Placement 16, cached between runs.

    venv = nova_venv.ensure()          # builds it once, under a lock
    venv.bin('nova-manage')            # /var/cache/nova-lite/nova-34-venv/...

The venv lives outside the clone, in /var/cache/nova-lite (or
~/.cache/nova-lite for a user who cannot write there);
``NOVA_LITE_NOVA_VENV`` overrides the path.  It is built under an exclusive
``flock`` so that two test processes never build it together, and a
marker file naming the installed requirements is written only after pip
succeeded: a half-built venv (pip killed or failed) has no marker and is
rebuilt from scratch next time.  Measured on this project's 2-core
machine: 60-90 s and 412 MB.
"""

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time

from nova_lite import exception

# What the fixture needs: Nova and Placement of the 2026.2 release, and a
# WSGI server for nova-api and placement.
REQUIREMENTS = ('nova>=34,<35', 'openstack-placement>=16,<17',
                'gunicorn>=27')
DEFAULT_PATH = '/var/cache/nova-lite/nova-34-venv'
ENV_PATH = 'NOVA_LITE_NOVA_VENV'
MARKER = '.nova-lite-installed'
PIP_TIMEOUT = 1200


class NovaVenvError(exception.NovaLiteException):
    msg_fmt = 'Cannot build the Nova venv at %(path)s: %(reason)s'


class NovaVenv:
    """An installed venv: ``path``, ``python``, ``bin(name)``,
    ``build_seconds`` (None when it was already cached)."""

    def __init__(self, path, build_seconds=None):
        self.path = path
        self.python = os.path.join(path, 'bin', 'python')
        self.build_seconds = build_seconds

    def bin(self, name):
        return os.path.join(self.path, 'bin', name)

    def __repr__(self):
        return '<NovaVenv %s>' % self.path


def default_path():
    """``NOVA_LITE_NOVA_VENV``, else ``DEFAULT_PATH`` where we may write
    (root, as in CI), else under ``~/.cache/nova-lite``."""
    if os.environ.get(ENV_PATH):
        return os.environ[ENV_PATH]
    existing = os.path.dirname(DEFAULT_PATH)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if os.access(existing, os.W_OK):
        return DEFAULT_PATH
    return os.path.join(os.path.expanduser('~'), '.cache', 'nova-lite',
                        os.path.basename(DEFAULT_PATH))


def is_installed(path=None):
    """True when the venv at ``path`` was fully installed with today's
    requirements, and its interpreter still runs (a venv whose base Python
    was removed or upgraded away is rebuilt)."""
    path = path or default_path()
    if _marker_text(path) != _wanted():
        return False
    return os.access(os.path.realpath(os.path.join(path, 'bin', 'python')),
                     os.X_OK)


def ensure(path=None, python=None, log=None):
    """The venv at ``path`` (default: ``NOVA_LITE_NOVA_VENV`` or
    ``/var/cache/nova-lite/nova-34-venv``), built first if needed.

    Raises ``NovaVenvError`` with a one-line reason when it cannot be built
    (no network, pip failed); pip's output is in ``PATH.log``.
    """
    path = os.path.abspath(path or default_path())
    if is_installed(path):
        return NovaVenv(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        raise NovaVenvError(path=path, reason=str(exc))
    with _locked(path + '.lock'):
        # Another process may have built it while this one waited.
        if is_installed(path):
            return NovaVenv(path)
        started = time.monotonic()
        _build(path, python or _base_python(), log or path + '.log')
        return NovaVenv(path, build_seconds=time.monotonic() - started)


def _wanted():
    return '\n'.join(REQUIREMENTS) + '\n'


def _marker_text(path):
    try:
        with open(os.path.join(path, MARKER)) as handle:
            return handle.read()
    except OSError:
        return None


def _base_python():
    """The interpreter our own venv was made from (a venv made from a
    venv's python would still work, but this one is simpler to reason
    about)."""
    return getattr(sys, '_base_executable', None) or sys.executable


@contextlib.contextmanager
def _locked(lock_path):
    """An exclusive flock, polled: a blocking flock would block every green
    thread of an eventlet-patched process, the holder included."""
    with open(lock_path, 'a') as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(path, python, log_path):
    shutil.rmtree(path, ignore_errors=True)
    with open(log_path, 'w') as log:
        steps = [
            [python, '-m', 'venv', path],
            [os.path.join(path, 'bin', 'pip'), 'install',
             '--disable-pip-version-check', '--prefer-binary']
            + list(REQUIREMENTS),
        ]
        for argv in steps:
            log.write('$ %s\n' % ' '.join(argv))
            log.flush()
            try:
                subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, check=True,
                               timeout=PIP_TIMEOUT)
            except (OSError, subprocess.SubprocessError) as exc:
                raise NovaVenvError(path=path, reason='%s (%s; see %s)' % (
                    ' '.join(os.path.basename(a) for a in argv[:3]),
                    _last_error(log_path) or exc, log_path))
    with open(os.path.join(path, MARKER), 'w') as handle:
        handle.write(_wanted())


def _last_error(log_path):
    """The last line of pip's output that says ERROR, if any."""
    try:
        with open(log_path, errors='replace') as handle:
            lines = [line.strip() for line in handle
                     if line.startswith('ERROR')]
    except OSError:
        return None
    return lines[-1][:200] if lines else None
