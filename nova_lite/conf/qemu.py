"""[qemu] options: the QEMU virt driver (``[compute] driver = qemu``)."""

import shutil

from oslo_config import cfg

from nova_lite import exception

qemu_group = cfg.OptGroup(
    'qemu', title='QEMU virt driver',
    help='Each instance is one QEMU process driven over QMP, with a qcow2 '
         'disk vda over a backing image.')

_opts = [
    cfg.StrOpt('binary', default='qemu-system-x86_64',
               help='The QEMU system emulator: a name looked up on PATH, or '
                    'a path.'),
    cfg.StrOpt('instances_path', default='$state_path/instances',
               help='Directory of the instances\' files: one directory per '
                    'instance with its images, QMP socket and pid file.'),
    cfg.StrOpt('machine', default='none',
               help='QEMU machine type. "none" needs no guest and no KVM and '
                    'still runs block jobs and live migrations; a real type '
                    'such as "q35" works too.'),
    cfg.IntOpt('memory_mb', default=64, min=1,
               help='Guest memory of every instance, in MiB.'),
    cfg.IntOpt('disk_size_mb', default=64, min=4,
               help='Virtual size of the vda disk of every instance, in '
                    'MiB.'),
    cfg.StrOpt('migration_port_range', default='49152:49215',
               help='TCP ports "LOW:HIGH" on which this host receives live '
                    'migrations (the QEMU migration stream and the NBD '
                    'server that copies the disks): two per incoming '
                    'migration.'),
    cfg.FloatOpt('qmp_timeout', default=10.0, min=0.1,
                 help='Seconds to wait for QEMU to start, for a QMP reply '
                      'and for QEMU to exit after "quit".'),
]


def register_opts(conf):
    conf.register_group(qemu_group)
    conf.register_opts(_opts, group=qemu_group)


def list_opts():
    return [(qemu_group.name, _opts)]


def port_range(value):
    """``(low, high)`` of a ``migration_port_range`` value; ConfigError
    (one line) when it is not ``LOW:HIGH`` with room for a migration."""
    try:
        low, high = (int(part) for part in value.split(':'))
    except ValueError:
        low = high = None
    if low is None or not 1024 <= low < high <= 65535:
        raise exception.ConfigError(
            reason='[qemu] migration_port_range must be "LOW:HIGH" with '
                   '1024 <= LOW < HIGH <= 65535 (two ports per incoming '
                   'migration), got %r' % value)
    return low, high


def validate(conf):
    """Check the [qemu] options a driver is about to use; ConfigError."""
    opts = conf.qemu
    port_range(opts.migration_port_range)
    if shutil.which(opts.binary) is None:
        raise exception.ConfigError(
            reason='[qemu] binary %r is not an executable (is QEMU '
                   'installed? apt-get install qemu-system-x86 qemu-utils)'
                   % opts.binary)
    for tool in ('qemu-img', 'qemu-io'):
        if shutil.which(tool) is None:
            raise exception.ConfigError(
                reason='%s is not on PATH (apt-get install qemu-utils)'
                       % tool)
    if not opts.machine or not opts.machine.replace('-', '').replace(
            '.', '').replace('_', '').isalnum():
        raise exception.ConfigError(
            reason='[qemu] machine must be a QEMU machine type name, got %r'
                   % opts.machine)
