"""CPU and memory of a process, from Linux /proc, for the benchmarks."""

import os


def cpu_seconds(pid):
    """User + system CPU seconds used by process ``pid`` so far."""
    with open('/proc/%d/stat' % pid) as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def rss_mb(pid):
    """Resident memory of process ``pid`` in MiB."""
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return None


def find_pid(name):
    """The pid of the first process whose command name is ``name``, or
    None (e.g. RabbitMQ's ``beam.smp`` when the broker is on another host).
    """
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/comm' % entry) as handle:
                if handle.read().strip() == name:
                    return int(entry)
        except OSError:
            continue
    return None
