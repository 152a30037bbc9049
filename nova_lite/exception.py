"""Named errors nova_lite raises for things a user or operator can cause.

Each class has a one-line ``msg_fmt``.  Raised inside an RPC handler, these
travel to the caller as the same class (see ``rpc.ALLOWED_EXMODS``), so a
client catches ``exception.InstanceNotFound`` whether the error was local or
remote.
"""


class NovaLiteException(Exception):
    """Base of every nova_lite error; formats ``msg_fmt`` with kwargs."""

    msg_fmt = 'An unknown error occurred.'

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                # A wrong kwarg is our bug; never hide the original error.
                message = '%s (%s)' % (self.msg_fmt, kwargs)
        # Keep it to one line: it ends up in CLI output and log lines.
        super().__init__(' '.join(str(message).split()))


class ConfigError(NovaLiteException):
    msg_fmt = 'Invalid configuration: %(reason)s'


class InvalidInput(NovaLiteException):
    msg_fmt = 'Invalid input: %(reason)s'


class InvalidVersionCap(ConfigError):
    msg_fmt = ('Invalid [upgrade_levels] %(topic)s = %(value)r: expected a '
               'version such as 1.0, or auto')


class VersionCapTooLow(NovaLiteException):
    msg_fmt = ('%(method)s needs %(topic)s RPC API %(needed)s but the '
               'version cap is %(cap)s')


class ManagerClassError(ConfigError):
    msg_fmt = 'Cannot load manager %(path)r for topic %(topic)s: %(reason)s'


class RPCNotInitialized(NovaLiteException):
    msg_fmt = 'nova_lite.rpc.init(conf) must be called before using RPC'


class DBConnectionError(NovaLiteException):
    msg_fmt = 'Cannot connect to database %(url)s: %(reason)s'


class ServiceNotFound(NovaLiteException):
    msg_fmt = 'No service %(binary)s on host %(host)s'


class NoValidHost(NovaLiteException):
    msg_fmt = 'No valid host was found: %(reason)s'


class InstanceNotFound(NovaLiteException):
    msg_fmt = 'Instance %(instance_uuid)s could not be found'


class InstanceExists(NovaLiteException):
    msg_fmt = 'Instance %(instance_uuid)s already exists'


class FlavorNotFound(NovaLiteException):
    msg_fmt = 'Flavor %(flavor_id)s could not be found'


class FlavorExists(NovaLiteException):
    msg_fmt = 'A flavor named %(name)s or with id %(flavorid)s exists already'


class InstanceNotOnHost(InstanceNotFound):
    msg_fmt = 'Instance %(instance_uuid)s is not on host %(host)s'


class InvalidState(NovaLiteException):
    msg_fmt = ('Instance %(instance_uuid)s is %(state)s; cannot '
               '%(action)s it')


class InstanceActionInProgress(InvalidState):
    msg_fmt = ('Cannot %(action)s instance %(instance_uuid)s: it is already '
               '%(task_state)s')


class ResourceLocked(NovaLiteException):
    msg_fmt = ('%(resource)s is locked: %(reason)s; try again when it '
               'ends')


class VolumeNotFound(NovaLiteException):
    msg_fmt = 'Volume %(volume_id)s could not be found'


class VolumeNotAttached(VolumeNotFound):
    msg_fmt = ('Volume %(volume_id)s is not attached to server '
               '%(instance_uuid)s')


class VolumeInUse(InvalidInput):
    msg_fmt = ('Cannot %(action)s volume %(volume_id)s: it is in-use, '
               'attached to server %(instance_uuid)s')


class InvalidDevicePath(InvalidInput):
    msg_fmt = ('Invalid device %(device)r: expected a path such as '
               '/dev/vdb')


class DevicePathInUse(InvalidState):
    msg_fmt = ('Device %(device)s is already in use on server '
               '%(instance_uuid)s')


class CoordinationError(NovaLiteException):
    msg_fmt = 'Coordination backend %(url)s: %(reason)s'


class WorkTakenOver(NovaLiteException):
    msg_fmt = ('Conductor work %(work_id)s (%(action)s of instance '
               '%(instance_uuid)s) now belongs to another conductor')


class DriverNotFound(ConfigError):
    msg_fmt = 'Unknown [compute] driver %(name)r; known: %(known)s'


class HypervisorError(NovaLiteException):
    msg_fmt = 'Hypervisor error: %(reason)s'


class TaskFailed(NovaLiteException):
    msg_fmt = '%(operation)s of instance %(instance_uuid)s failed: %(reason)s'


class TaskTimeout(NovaLiteException):
    msg_fmt = ('%(operation)s of instance %(instance_uuid)s did not finish '
               'in %(timeout)ss; the task was cancelled')


class TaskCancelled(NovaLiteException):
    msg_fmt = '%(operation)s of instance %(instance_uuid)s was cancelled'


class JobAcquireTimeout(NovaLiteException):
    msg_fmt = ('Timed out after %(timeout)ss waiting to start a %(job)s job '
               'on instance %(instance_uuid)s: held by %(holder)s')


class InvalidJob(NovaLiteException):
    msg_fmt = 'Invalid job request: %(reason)s'


class DiskNotFound(NovaLiteException):
    msg_fmt = 'Instance %(instance_uuid)s has no disk %(disk)s'


class InvalidBlockJobKind(InvalidInput):
    msg_fmt = 'Unknown block job kind %(kind)r; expected one of %(known)s'


class BlockJobBusy(NovaLiteException):
    msg_fmt = ('Disk %(disk)s of instance %(instance_uuid)s already has a '
               '%(kind)s block job')


class BlockJobNotFound(NovaLiteException):
    msg_fmt = 'No block job on disk %(disk)s of instance %(instance_uuid)s'


class BlockJobEnding(NovaLiteException):
    msg_fmt = ('Block job on disk %(disk)s of instance %(instance_uuid)s is '
               'still being ended')


class BlockJobNotReady(NovaLiteException):
    msg_fmt = ('Cannot pivot: the %(kind)s block job on disk %(disk)s of '
               'instance %(instance_uuid)s is not ready')


class InvalidFlags(InvalidInput):
    msg_fmt = 'Unsupported flags 0x%(flags)x for %(method)s (allowed 0x%(allowed)x)'


class BlockJobAbortTimeout(NovaLiteException):
    msg_fmt = ('Block job on disk %(disk)s of instance %(instance_uuid)s did '
               'not end within %(timeout)ss; it is still being ended')


class ComputeHostNotFound(NovaLiteException):
    msg_fmt = 'Compute host %(host)s could not be found'


class ComputeServiceUnavailable(NovaLiteException):
    msg_fmt = ('Compute service of host %(host)s is unavailable: it is '
               '%(reason)s')


class PolicyNotAuthorized(NovaLiteException):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."


class APIListenError(NovaLiteException):
    msg_fmt = 'Cannot listen on %(host)s:%(port)s: %(reason)s'


class DBSchemaMissing(NovaLiteException):
    msg_fmt = ('The database %(url)s has no schema; run `nova-lite-manage '
               'db sync`')


class DBSchemaMismatch(DBSchemaMissing):
    msg_fmt = ('The database %(url)s is at schema revision %(revision)s, '
               'this nova_lite needs %(head)s; run `nova-lite-manage db '
               'sync`')


class MigrationPreCheckError(InvalidInput):
    msg_fmt = ('Cannot migrate instance %(instance_uuid)s to %(dest)s: '
               '%(reason)s')


class ResizeError(NovaLiteException):
    msg_fmt = ('Cannot %(step)s instance %(instance_uuid)s on %(host)s: '
               '%(reason)s')


class ResizeNotSupported(HypervisorError):
    msg_fmt = 'The %(driver)s driver cannot resize instances'


class MigrationNotFound(NovaLiteException):
    msg_fmt = 'Migration %(migration_uuid)s could not be found'


class SameFlavor(InvalidInput):
    msg_fmt = 'When resizing, instances must change flavor!'


class MetricsListenError(NovaLiteException):
    msg_fmt = ('Cannot listen for /metrics on %(host)s:%(port)s: %(reason)s '
               '(see [metrics] bind_host and port)')


class TargetsWriteError(NovaLiteException):
    msg_fmt = 'Cannot write the Prometheus targets file %(path)s: %(reason)s'


class NoMetricsEndpoints(NovaLiteException):
    msg_fmt = ('No registered service has a metrics endpoint (is [metrics] '
               'enabled on the daemons?)')


class CloudConfigError(ConfigError):
    msg_fmt = 'Invalid [cloud] configuration: %(reason)s'


class CloudUnavailable(NovaLiteException):
    msg_fmt = ('Cannot list the services of the Nova cloud from %(source)s: '
               '%(reason)s')
