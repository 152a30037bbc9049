"""QEMU processes, images and ports of the QEMU driver.

Everything here blocks its (native) thread: ``qemu-img``, ``qemu-io`` and
QEMU itself run through the unpatched ``subprocess`` module, and a QEMU's
exit is awaited on a pidfd with the unpatched ``select``.

An instance's files live in ``instances_path/<uuid>/``: ``base.qcow2``
(the backing image, 0xab in its first MiB), ``disk.qcow2`` (the vda
overlay, 0xcd in its second MiB), copies made by block jobs, the QMP socket
``qmp.sock`` and ``qemu.pid``.  QEMU runs with ``-daemonize``: it returns
once QEMU is initialised (the QMP socket listens), and the process outlives
the compute service as a libvirt domain does.  The driver holds a pidfd on
it, so a recycled pid can never be signalled by mistake.
"""

import os
import shutil
import signal

from nova_lite import concurrency

_subprocess = concurrency.native_module('subprocess')
_select = concurrency.native_module('select')
_threading = concurrency.native_module('threading')

MIB = 1024 * 1024
DISK = 'vda'
# The data spawn writes, so that every block job has something to move.
BASE_PATTERN = (0xab, 0)      # (byte, offset in MiB); 1 MiB each
TOP_PATTERN = (0xcd, 1)


class ProcessError(Exception):
    """A QEMU tool or QEMU itself failed; the message is one line."""


class PortInUse(ProcessError):
    """QEMU could not listen on the port it was given."""


class Layout:
    """The paths of one instance's files."""

    def __init__(self, instances_path, instance_uuid):
        self.dir = os.path.join(instances_path, instance_uuid)
        self.base = os.path.join(self.dir, 'base.qcow2')
        self.disk = os.path.join(self.dir, 'disk.qcow2')
        self.qmp = os.path.join(self.dir, 'qmp.sock')
        self.pidfile = os.path.join(self.dir, 'qemu.pid')

    def copy_target(self, disk, number):
        return os.path.join(self.dir, '%s.copy-%d.qcow2' % (disk, number))

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run(args, timeout):
    """Run a tool to completion; its stdout.  ProcessError on failure."""
    # 'qemu-img create', 'qemu-system-x86_64': for messages.
    what = ' '.join([os.path.basename(args[0])] + [
        arg for arg in args[1:2] if not arg.startswith('-')])
    try:
        result = _subprocess.run(args, stdin=_subprocess.DEVNULL,
                                 capture_output=True, text=True,
                                 timeout=timeout)
    except FileNotFoundError as exc:
        raise ProcessError('%s: not found' % args[0]) from exc
    except _subprocess.TimeoutExpired as exc:
        raise ProcessError('%s did not finish within %ss' % (
            what, timeout)) from exc
    if result.returncode:
        detail = ' '.join((result.stderr or result.stdout).split())
        raise ProcessError('%s failed (exit %d): %s' % (
            what, result.returncode, detail[:500]))
    return result.stdout


def create_image(path, size_bytes, timeout, backing=None):
    args = ['qemu-img', 'create', '-q', '-f', 'qcow2']
    if backing:
        args += ['-b', backing, '-F', 'qcow2']
    run(args + [path, str(size_bytes)], timeout)


def write_pattern(path, pattern, timeout):
    byte, offset_mib = pattern
    run(['qemu-io', '-f', 'qcow2', '-c', 'write -q -P 0x%x %dM 1M' % (
        byte, offset_mib), path], timeout)


def make_disk(layout, size_bytes, timeout):
    """``base.qcow2`` and the ``disk.qcow2`` overlay, both holding data."""
    create_image(layout.base, size_bytes, timeout)
    write_pattern(layout.base, BASE_PATTERN, timeout)
    create_image(layout.disk, size_bytes, timeout, backing=layout.base)
    write_pattern(layout.disk, TOP_PATTERN, timeout)


def command_line(opts, name, layout, disk_path, memory_mb, incoming=None):
    """The QEMU command line of an instance (``incoming``: a URI to
    receive a live migration on)."""
    args = [opts.binary, '-name', 'guest=%s' % name,
            '-machine', opts.machine, '-nodefaults', '-display', 'none',
            '-m', str(memory_mb), '-daemonize', '-pidfile', layout.pidfile,
            '-qmp', 'unix:%s,server=on,wait=off' % layout.qmp,
            '-drive', 'if=none,id=%s,file=%s,format=qcow2' % (
                DISK, disk_path)]
    if incoming:
        args += ['-incoming', incoming]
    return args


class Process:
    """A running QEMU, held by a pidfd."""

    def __init__(self, pid):
        self.pid = pid
        self._pidfd = os.pidfd_open(pid)

    @classmethod
    def launch(cls, args, pidfile, timeout):
        """Start a daemonizing QEMU; returns once it is initialised."""
        try:
            run(args, timeout)
        except ProcessError as exc:
            if 'Address already in use' in str(exc):
                raise PortInUse(str(exc)) from exc
            raise
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
            return cls(pid)
        except (OSError, ValueError) as exc:
            raise ProcessError('QEMU started but its pid file %s is not '
                               'usable: %s' % (pidfile, exc)) from exc

    def alive(self):
        return self._pidfd is not None and not self.wait_exit(0)

    def wait_exit(self, timeout):
        """True once the process has exited (waits up to ``timeout``)."""
        if self._pidfd is None:
            return True
        poller = _select.poll()
        poller.register(self._pidfd, _select.POLLIN)
        return bool(poller.poll(None if timeout is None
                                else int(timeout * 1000)))

    def kill(self, timeout):
        """SIGKILL and wait; True once it is gone."""
        if self._pidfd is None:
            return True
        try:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait_exit(timeout)

    def release(self):
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class PortAllocator:
    """Ports of ``[qemu] migration_port_range`` this driver holds.

    Other processes (another compute on the same machine) use the same
    range: a port that QEMU cannot listen on is skipped and the next one
    tried (``PortInUse``).
    """

    def __init__(self, low, high):
        self.low, self.high = low, high
        self._lock = _threading.Lock()
        self._held = set()
        self._next = low

    def candidates(self):
        """Free ports, each reserved as it is handed out; the caller
        ``release``s every one it does not keep."""
        for _ in range(self.high - self.low + 1):
            with self._lock:
                port = self._next
                self._next = port + 1 if port < self.high else self.low
                if port in self._held:
                    continue
                self._held.add(port)
            yield port

    def release(self, *ports):
        with self._lock:
            self._held.difference_update(ports)


def find_processes(path):
    """Pids of live processes whose command line mentions ``path`` (for
    tests and for cleaning up after a crash)."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                cmdline = f.read()
        except OSError:
            continue
        if path.encode() in cmdline:
            pids.append(int(entry))
    return pids
