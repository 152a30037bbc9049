"""A small database API; every function opens its own short transaction.

``API(conf)`` owns one engine.  Rows are returned as plain dicts so callers
never hold a session open across a thread switch.

No call blocks the hub: every public method of ``API`` runs through
``concurrency.call_blocking_io`` (under eventlet, in one native thread while
the hub runs on; under threading, in the calling thread).  SQLite waiting
out another process's lock, or a slow PostgreSQL, delays only the DB calls.

The same queries run on SQLite, PostgreSQL and MySQL/MariaDB (no
``UPDATE ... RETURNING``, which MySQL lacks).  A transaction that the
database picked as a deadlock victim is retried whole (oslo.db's
``wrap_db_retry``); a missing schema or an unreachable database is raised
as a named error, with the password masked.
"""

import datetime
import functools
import time

import sqlalchemy as sa
from oslo_db import api as oslo_db_api
from oslo_log import log as logging
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from nova_lite import concurrency
from nova_lite.db import clocks
from nova_lite.db import migration
from nova_lite.db import models
from nova_lite.db import reports
from nova_lite.db import resizes
from nova_lite.db import volumes
from nova_lite import exception
from nova_lite import utils

LOG = logging.getLogger(__name__)

SERVICE_FIELDS = ('id', 'host', 'binary', 'topic', 'version', 'report_count',
                  'disabled', 'disabled_reason', 'last_seen_up',
                  'metrics_address', 'created_at', 'updated_at')
SAMPLE_FIELDS = ('topic', 'host', 'binary', 'to_service', 'in_service',
                 'greenthread_overhead', 'from_service', 'total',
                 'clock_offset', 'clock_offset_bound', 'skew', 'greenthreads',
                 'workers', 'backend', 'timed_out', 'error', 'prober',
                 'round_no', 'method', 'up', 'heartbeat_age', 'queue_messages',
                 'queue_unacked', 'queue_consumers', 'flags')
INSTANCE_FIELDS = ('uuid', 'host', 'vm_state', 'task_state', 'power_state',
                   'fault', 'created_at', 'updated_at', 'display_name',
                   'project_id', 'user_id', 'image_ref', 'flavorid',
                   'flavor_name', 'vcpus', 'memory_mb', 'root_gb')
# The instance's flavor snapshot (a resize's migration keeps two).
FLAVOR_COLUMNS = ('flavorid', 'flavor_name', 'vcpus', 'memory_mb',
                  'root_gb')
FLAVOR_FIELDS = ('flavorid', 'name', 'vcpus', 'memory_mb', 'root_gb',
                 'created_at')
NODE_FIELDS = ('id', 'host', 'hypervisor_type', 'vcpus', 'memory_mb',
               'local_gb', 'vcpus_used', 'memory_mb_used', 'local_gb_used',
               'created_at', 'updated_at')
ALLOCATION_FIELDS = ('id', 'instance_uuid', 'host', 'vcpus', 'memory_mb',
                     'local_gb', 'created_at')
WORK_FIELDS = ('id', 'instance_uuid', 'action', 'step', 'host', 'dest',
               'conductor_host', 'takeovers', 'migration_uuid',
               'finished_at', 'created_at', 'updated_at')
# The conductor_host of work that no conductor has yet: a build the API
# recorded; the build cast (or, failing that, the takeover task) gives it
# one.
UNASSIGNED = '-'
# The vm_state of a destroyed instance: no load on its host, and purged
# after a while.
DELETED = 'deleted'

# Driver error codes: PostgreSQL's SQLSTATE, MySQL/MariaDB's errno.
# A deadlock victim (deadlock_detected, serialization_failure;
# ER_LOCK_DEADLOCK): its transaction was rolled back and can run again.
_DEADLOCK_CODES = frozenset(('40P01', '40001', 1213))
# No such table or column (undefined_table, undefined_column;
# ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR): no schema, or an older one.
_UNDEFINED_CODES = frozenset(('42P01', '42703', 1146, 1054))
_SQLITE_UNDEFINED = ('no such table', 'no such column', 'has no column named')


def _as_dict(row, fields):
    return {name: getattr(row, name) for name in fields}


def flavor_columns(flavor):
    """The instance columns (FLAVOR_COLUMNS) of a ``flavors`` row: the
    snapshot an instance is built or resized with."""
    return {'flavorid': flavor['flavorid'], 'flavor_name': flavor['name'],
            'vcpus': flavor['vcpus'], 'memory_mb': flavor['memory_mb'],
            'root_gb': flavor['root_gb']}


def _update_instance(session, instance_uuid, values):
    """UPDATE the instance's ``values`` (and updated_at) in ``session``'s
    transaction."""
    session.execute(
        sa.update(models.Instance)
        .where(models.Instance.uuid == instance_uuid)
        .values(updated_at=models.utcnow(), **values)
        .execution_options(synchronize_session=False))


def _driver_codes(exc):
    """The driver's codes for a DBAPIError: SQLSTATE (psycopg, PyMySQL
    1.1+) and errno (MySQL drivers)."""
    orig = exc.orig
    codes = {getattr(orig, 'sqlstate', None), getattr(orig, 'pgcode', None)}
    if orig.args and isinstance(orig.args[0], int):
        codes.add(orig.args[0])
    return codes


def _is_deadlock(exc):
    return (isinstance(exc, sa_exc.DBAPIError)
            and bool(_driver_codes(exc) & _DEADLOCK_CODES))


def _is_undefined(exc):
    if _driver_codes(exc) & _UNDEFINED_CODES:
        return True
    return (exc.orig.__class__.__module__.startswith('sqlite3')
            and any(text in str(exc.orig) for text in _SQLITE_UNDEFINED))


def _reason(exc):
    """The first line of a DB error, password masked."""
    return utils.mask_url(str(exc).splitlines()[0])


def _sqlite_pragmas(dbapi_connection, _record):
    # Several daemons share one SQLite file in a dev deployment: WAL lets
    # readers run beside the writer, busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=10000')
    cursor.close()


def _mysql_sql_mode(dbapi_connection, _record):
    # An error, not a silently truncated or zeroed value (oslo.db's
    # default for OpenStack services too).
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION sql_mode = 'TRADITIONAL'")
    cursor.close()


def create_engine(url):
    if sa.engine.make_url(url).get_backend_name() == 'sqlite':
        engine = sa.create_engine(url)
        sa.event.listen(engine, 'connect', _sqlite_pragmas)
        return engine
    # A pooled connection the server has closed meanwhile (MariaDB's
    # wait_timeout, a restart) is replaced rather than handed out.
    engine = sa.create_engine(url, pool_pre_ping=True, pool_recycle=3600)
    if engine.dialect.name in ('mysql', 'mariadb'):
        sa.event.listen(engine, 'connect', _mysql_sql_mode)
    return engine


def _begin_action(session, uuid, action, task_state, allowed_vm_states):
    result = session.execute(
        sa.update(models.Instance)
        .where(models.Instance.uuid == uuid,
               models.Instance.task_state.is_(None),
               models.Instance.vm_state.in_(allowed_vm_states))
        .values(task_state=task_state, updated_at=models.utcnow()))
    row = session.get(models.Instance, uuid)
    if row is None:
        raise exception.InstanceNotFound(instance_uuid=uuid)
    if result.rowcount == 1:
        return _as_dict(row, INSTANCE_FIELDS)
    if row.task_state is not None:
        raise exception.InstanceActionInProgress(
            instance_uuid=uuid, action=action, task_state=row.task_state)
    raise exception.InvalidState(instance_uuid=uuid, state=row.vm_state,
                                 action=action)


def _release(session, instance_uuid):
    """Delete the allocation of ``instance_uuid`` and lower its host's
    counters, once: of two concurrent releases only the one whose DELETE
    removed the row lowers them."""
    row = session.scalars(sa.select(models.Allocation).filter_by(
        instance_uuid=instance_uuid)).one_or_none()
    if row is None:
        return False
    deleted = session.execute(
        sa.delete(models.Allocation).where(models.Allocation.id == row.id)
        .execution_options(synchronize_session=False)).rowcount
    if deleted != 1:
        return False
    node = models.ComputeNode
    session.execute(
        sa.update(node).where(node.host == row.host)
        .values(vcpus_used=node.vcpus_used - row.vcpus,
                memory_mb_used=node.memory_mb_used - row.memory_mb,
                local_gb_used=node.local_gb_used - row.local_gb)
        .execution_options(synchronize_session=False))
    session.expunge(row)
    return True


def _resize_waits(session, migration_uuid):
    """Whether the resize ``migration_uuid`` waits for its claim (and its
    row locked until the transaction ends, so it cannot end meanwhile)."""
    migration = models.Migration
    return session.execute(
        sa.update(migration)
        .where(migration.uuid == migration_uuid,
               migration.status == 'scheduling')
        .values(updated_at=models.utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1


def _update_if_still_owned(work):
    """An UPDATE of ``work`` that matches only while the conductor that
    read it still owns it and it is unfinished: the compare-and-swap every
    change of conductor work goes through."""
    return (sa.update(models.ConductorWork)
            .where(models.ConductorWork.id == work['id'],
                   models.ConductorWork.conductor_host ==
                   work['conductor_host'],
                   models.ConductorWork.finished_at.is_(None)))


# Retries wait in the caller (a greenthread under eventlet), not in the I/O
# thread that every other DB call of the process needs.
_retry_deadlock_victims = oslo_db_api.wrap_db_retry(
    max_retries=5, retry_interval=0.05, max_retry_interval=1, jitter=True,
    exception_checker=_is_deadlock)


def _off_the_hub(cls):
    """Route every public method of ``cls`` (and of the query mixins it
    inherits, each table's queries in its own module) through
    call_blocking_io, retry deadlock victims, and name the errors an
    operator can fix."""
    def wrap(func):
        def named_errors(self, *args, **kwargs):
            try:
                return func(self, *args, **kwargs)
            except sa_exc.DBAPIError as exc:
                named = self._named_error(exc)
                if named is None:
                    raise
                raise named from exc

        @_retry_deadlock_victims
        @functools.wraps(func)
        def call(*args, **kwargs):
            return concurrency.call_blocking_io(named_errors, *args,
                                                **kwargs)
        return call

    mixins = [base for base in reversed(cls.__mro__[1:])
              if base.__module__.startswith('nova_lite.db.')]
    for owner in mixins + [cls]:
        for name, value in list(vars(owner).items()):
            if callable(value) and not name.startswith('_'):
                setattr(cls, name, wrap(value))
    return cls


@_off_the_hub
class API(volumes.VolumeQueries, resizes.MigrationQueries,
          clocks.ClockQueries):
    def __init__(self, conf):
        self.conf = conf
        self.url = conf.database.connection
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            try:
                self._engine = create_engine(self.url)
            except (ImportError, sa_exc.ArgumentError) as exc:
                # A missing DB driver or a malformed URL: say which.
                raise exception.DBConnectionError(
                    url=utils.mask_url(self.url),
                    reason=utils.mask_url(str(exc)))
        return self._engine

    def _session(self):
        return orm.Session(self.engine, expire_on_commit=False)

    def _named_error(self, exc):
        """``DBSchemaMissing``/``DBSchemaMismatch`` for a missing table or
        column, ``DBConnectionError`` for a failed connection; None for
        any other DB error."""
        if _is_undefined(exc):
            try:
                migration.check_schema(self)
            except exception.DBSchemaMissing as schema_error:
                return schema_error
            return None
        if exc.statement is None or exc.connection_invalidated:
            return exception.DBConnectionError(url=utils.mask_url(self.url),
                                               reason=_reason(exc))
        return None

    def _rows(self, query, fields):
        """Run a SELECT of whole rows; the rows as dicts of ``fields``."""
        with self._session() as session:
            return [_as_dict(row, fields) for row in session.scalars(query)]

    def _delete_older_than(self, model, column, seconds, *where):
        """Delete the ``model`` rows whose ``column`` (an expression) is
        over ``seconds`` old (and that match ``where``); how many."""
        cutoff = models.utcnow() - datetime.timedelta(seconds=seconds)
        with self._session() as session, session.begin():
            # No session state to keep in step: without this, a WHERE the
            # ORM cannot evaluate makes it fetch the rows (RETURNING).
            return session.execute(
                sa.delete(model).where(column < cutoff, *where)
                .execution_options(synchronize_session=False)).rowcount

    def connect(self):
        """Check the database answers, retrying per ``[database]`` options.

        Raises ``DBConnectionError`` (with the password masked) when it
        never does.
        """
        attempts = self.conf.database.connect_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                with self.engine.connect() as conn:
                    conn.execute(sa.text('SELECT 1'))
                return
            except sa_exc.SQLAlchemyError as exc:
                reason = _reason(exc)
                if attempt == attempts:
                    raise exception.DBConnectionError(
                        url=utils.mask_url(self.url), reason=reason)
                LOG.warning('Database %s unreachable (%s); retry %d/%d in '
                            '%.1fs', utils.mask_url(self.url), reason,
                            attempt, attempts - 1,
                            self.conf.database.connect_retry_interval)
                time.sleep(self.conf.database.connect_retry_interval)

    def check_schema(self):
        """The schema revision; ``DBSchemaMissing`` before ``db sync``,
        ``DBSchemaMismatch`` when the schema is older than this code."""
        return migration.check_schema(self)

    def dispose(self):
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- services --------------------------------------------------------

    def service_register(self, host, binary, topic, version,
                         metrics_address=None):
        """Create or refresh the (host, binary) row; returns it as a dict.

        ``metrics_address`` (``host:port`` of the process's /metrics, or
        None without one) replaces the row's."""
        with self._session() as session, session.begin():
            row = session.scalars(sa.select(models.Service).filter_by(
                host=host, binary=binary)).one_or_none()
            if row is None:
                row = models.Service(host=host, binary=binary, topic=topic,
                                     version=version, report_count=0,
                                     disabled=False)
                session.add(row)
            row.topic = topic
            row.version = version
            row.metrics_address = metrics_address
            row.last_seen_up = models.utcnow()
            session.flush()
            return _as_dict(row, SERVICE_FIELDS)

    def service_heartbeat(self, service_id):
        """Record a heartbeat; returns the new report_count."""
        now = models.utcnow()
        with self._session() as session, session.begin():
            # Not UPDATE ... RETURNING, which MySQL and MariaDB lack: the
            # UPDATE keeps the row locked until commit, so the count read
            # back is this heartbeat's.
            updated = session.execute(
                sa.update(models.Service)
                .where(models.Service.id == service_id)
                .values(report_count=models.Service.report_count + 1,
                        last_seen_up=now, updated_at=now)).rowcount
            if updated != 1:
                raise exception.ServiceNotFound(host='?', binary='id %s' %
                                                service_id)
            return session.scalar(
                sa.select(models.Service.report_count)
                .where(models.Service.id == service_id))

    def service_get_all(self, binary=None, topic=None):
        query = sa.select(models.Service).order_by(models.Service.id)
        if binary:
            query = query.filter_by(binary=binary)
        if topic:
            query = query.filter_by(topic=topic)
        return self._rows(query, SERVICE_FIELDS)

    def service_get(self, host, binary):
        with self._session() as session:
            row = session.scalars(sa.select(models.Service).filter_by(
                host=host, binary=binary)).one_or_none()
            if row is None:
                raise exception.ServiceNotFound(host=host, binary=binary)
            return _as_dict(row, SERVICE_FIELDS)

    def service_set_disabled(self, host, binary, disabled, reason=None):
        with self._session() as session, session.begin():
            row = session.scalars(sa.select(models.Service).filter_by(
                host=host, binary=binary)).one_or_none()
            if row is None:
                raise exception.ServiceNotFound(host=host, binary=binary)
            row.disabled = disabled
            row.disabled_reason = reason if disabled else None
            session.flush()
            return _as_dict(row, SERVICE_FIELDS)

    # -- instances -------------------------------------------------------

    def instance_create(self, uuid, host=None, vm_state='building',
                        power_state='nostate', task_state=None):
        with self._session() as session:
            try:
                with session.begin():
                    row = models.Instance(uuid=uuid, host=host,
                                          vm_state=vm_state,
                                          power_state=power_state,
                                          task_state=task_state)
                    session.add(row)
            except sa_exc.IntegrityError:
                raise exception.InstanceExists(instance_uuid=uuid)
            return _as_dict(row, INSTANCE_FIELDS)

    def instance_get(self, uuid):
        with self._session() as session:
            row = session.get(models.Instance, uuid)
            if row is None:
                raise exception.InstanceNotFound(instance_uuid=uuid)
            return _as_dict(row, INSTANCE_FIELDS)

    def instance_update(self, uuid, **values):
        with self._session() as session, session.begin():
            row = session.get(models.Instance, uuid)
            if row is None:
                raise exception.InstanceNotFound(instance_uuid=uuid)
            for key, value in values.items():
                setattr(row, key, value)
            session.flush()
            return _as_dict(row, INSTANCE_FIELDS)

    def instance_get_all(self, host=None, project_id=None, deleted=None):
        """Instances, oldest first; ``deleted`` False leaves out deleted
        ones, True keeps only those, None keeps all."""
        query = sa.select(models.Instance).order_by(models.Instance.created_at,
                                                    models.Instance.uuid)
        if host:
            query = query.filter_by(host=host)
        if project_id:
            query = query.filter_by(project_id=project_id)
        if deleted is not None:
            is_deleted = models.Instance.vm_state == DELETED
            query = query.where(is_deleted if deleted else ~is_deleted)
        return self._rows(query, INSTANCE_FIELDS)

    def instance_count_by_host(self):
        """``{host: instances}``, the scheduler's load: a deleted instance
        is none."""
        query = (sa.select(models.Instance.host, sa.func.count())
                 .where(models.Instance.host.is_not(None),
                        models.Instance.vm_state != DELETED)
                 .group_by(models.Instance.host))
        with self._session() as session:
            return dict(session.execute(query).all())

    def instance_purge_deleted(self, older_than_seconds):
        """Delete the instances deleted longer ago than that (their last
        update); returns how many."""
        # A row created deleted was never updated.
        last_change = sa.func.coalesce(models.Instance.updated_at,
                                       models.Instance.created_at)
        return self._delete_older_than(models.Instance, last_change,
                                       older_than_seconds,
                                       models.Instance.vm_state == DELETED)

    def instance_begin_action(self, uuid, action, task_state,
                              allowed_vm_states):
        """Set ``task_state`` if the instance has none and its vm_state is
        allowed, in one UPDATE; returns the row.

        Nova's ``expected_task_state``: of concurrent actions on one
        instance exactly one wins; the others get
        ``InstanceActionInProgress`` (or ``InvalidState``).
        """
        with self._session() as session, session.begin():
            return _begin_action(session, uuid, action, task_state,
                                 allowed_vm_states)

    def instance_create_with_work(self, uuid, action, step, conductor_host,
                                  vm_state='building', task_state=None,
                                  **values):
        """Create the instance and its first conductor work in one
        transaction; returns the work as a dict.

        ``values`` are more instance columns (the API's name, owner,
        image and flavor).  A uuid that is taken raises
        ``InstanceExists`` and records nothing: a repeated build request
        never gets work on another build's instance.
        """
        with self._session() as session:
            try:
                with session.begin():
                    session.add(models.Instance(
                        uuid=uuid, vm_state=vm_state, task_state=task_state,
                        power_state='nostate', **values))
                    session.flush()
                    row = models.ConductorWork(
                        instance_uuid=uuid, action=action, step=step,
                        conductor_host=conductor_host, takeovers=0)
                    session.add(row)
            except sa_exc.IntegrityError:
                raise exception.InstanceExists(instance_uuid=uuid)
            return _as_dict(row, WORK_FIELDS)

    def instance_begin_task(self, uuid, task_state, expected_task_states,
                            vm_states, host, work_id=None):
        """The compute's compare-and-swap: set ``task_state`` in one UPDATE
        that matches only while the instance is on ``host``, in one of
        ``vm_states``, its task_state is one of ``expected_task_states``
        (None: no task) and, with ``work_id``, no newer conductor work
        exists for it.  Returns the updated row, or None when it did not
        match (a repeated or stale request).
        """
        states = [state for state in expected_task_states
                  if state is not None]
        matches = [models.Instance.task_state.in_(states)]
        if None in expected_task_states:
            matches.append(models.Instance.task_state.is_(None))
        conditions = [models.Instance.uuid == uuid,
                      models.Instance.host == host,
                      models.Instance.vm_state.in_(vm_states),
                      sa.or_(*matches)]
        if work_id is not None:
            conditions.append(~sa.exists().where(
                models.ConductorWork.instance_uuid == uuid,
                models.ConductorWork.id > work_id))
        with self._session() as session, session.begin():
            result = session.execute(
                sa.update(models.Instance).where(*conditions)
                .values(task_state=task_state, updated_at=models.utcnow())
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return None
            return _as_dict(session.get(models.Instance, uuid),
                            INSTANCE_FIELDS)

    # -- conductor work --------------------------------------------------

    def work_create(self, instance_uuid, action, step, conductor_host,
                    dest=None, guard=None):
        """Record new conductor work; returns it as a dict.

        With ``guard=(task_state, allowed_vm_states)`` the instance is
        claimed as ``instance_begin_action`` does, in the same transaction,
        and the work's ``host`` is the instance's: there is never a claimed
        instance without a record of the work, nor the reverse.
        """
        with self._session() as session, session.begin():
            host = None
            if guard:
                host = _begin_action(session, instance_uuid, action,
                                     *guard)['host']
            row = models.ConductorWork(
                instance_uuid=instance_uuid, action=action, step=step,
                conductor_host=conductor_host, host=host, dest=dest,
                takeovers=0)
            session.add(row)
            session.flush()
            return _as_dict(row, WORK_FIELDS)

    def work_update(self, work, finished=False, instance=None, **values):
        """Record progress on ``work`` (a dict from work_create/claim), and
        apply ``instance`` (column values) to its instance, atomically.

        Only its owner may: if another conductor took it over meanwhile,
        this raises ``WorkTakenOver`` and changes nothing.
        """
        values['updated_at'] = models.utcnow()
        if finished:
            values['finished_at'] = values['updated_at']
        with self._session() as session, session.begin():
            result = session.execute(
                _update_if_still_owned(work)
                .values(**values))
            if result.rowcount != 1:
                raise exception.WorkTakenOver(
                    work_id=work['id'], action=work['action'],
                    instance_uuid=work['instance_uuid'])
            if instance:
                _update_instance(session, work['instance_uuid'], instance)
        return dict(work, **values)

    def work_get_all(self, unfinished=False, conductor_host=None,
                     instance_uuid=None):
        """Conductor work, oldest first, as dicts."""
        query = sa.select(models.ConductorWork).order_by(
            models.ConductorWork.id)
        if unfinished:
            query = query.where(models.ConductorWork.finished_at.is_(None))
        if conductor_host:
            query = query.filter_by(conductor_host=conductor_host)
        if instance_uuid:
            query = query.filter_by(instance_uuid=instance_uuid)
        return self._rows(query, WORK_FIELDS)

    def work_purge_finished(self, older_than_seconds):
        """Delete work finished longer ago than that; returns how many."""
        return self._delete_older_than(models.ConductorWork,
                                       models.ConductorWork.finished_at,
                                       older_than_seconds)

    def work_get(self, work_id):
        with self._session() as session:
            row = session.get(models.ConductorWork, work_id)
            return None if row is None else _as_dict(row, WORK_FIELDS)

    def work_claim(self, work, conductor_host, takeover=True):
        """Take ``work`` over from its (dead) owner, in one UPDATE; with
        ``takeover`` False it is a first claim of ``UNASSIGNED`` work and
        does not count as a takeover.

        Returns the claimed work, or None when another conductor claimed
        it first or it finished meanwhile.
        """
        with self._session() as session, session.begin():
            result = session.execute(
                _update_if_still_owned(work)
                .values(conductor_host=conductor_host,
                        takeovers=models.ConductorWork.takeovers +
                        (1 if takeover else 0),
                        updated_at=models.utcnow()))
            if result.rowcount != 1:
                return None
            return _as_dict(session.get(models.ConductorWork, work['id']),
                            WORK_FIELDS)

    # -- flavors and compute nodes ---------------------------------------

    def flavor_create(self, name, vcpus, memory_mb, root_gb, flavorid):
        """Add a flavor; ``FlavorExists`` when its name or id is taken."""
        with self._session() as session:
            try:
                with session.begin():
                    row = models.Flavor(flavorid=flavorid, name=name,
                                        vcpus=vcpus, memory_mb=memory_mb,
                                        root_gb=root_gb)
                    session.add(row)
            except sa_exc.IntegrityError:
                raise exception.FlavorExists(name=name, flavorid=flavorid)
            return _as_dict(row, FLAVOR_FIELDS)

    def flavor_get(self, flavorid):
        with self._session() as session:
            row = session.scalars(sa.select(models.Flavor).filter_by(
                flavorid=flavorid)).one_or_none()
            if row is None:
                raise exception.FlavorNotFound(flavor_id=flavorid)
            return _as_dict(row, FLAVOR_FIELDS)

    def flavor_get_all(self):
        """Flavors, smallest first (by memory, then id), as Nova lists
        them."""
        return self._rows(sa.select(models.Flavor).order_by(
            models.Flavor.memory_mb, models.Flavor.flavorid), FLAVOR_FIELDS)

    def compute_node_update(self, host, **values):
        """Create or update the capacity row of compute ``host``."""
        with self._session() as session, session.begin():
            row = session.scalars(sa.select(models.ComputeNode).filter_by(
                host=host)).one_or_none()
            if row is None:
                row = models.ComputeNode(host=host)
                session.add(row)
            for key, value in values.items():
                setattr(row, key, value)
            session.flush()
            return _as_dict(row, NODE_FIELDS)

    def compute_node_get_all(self):
        return self._rows(sa.select(models.ComputeNode).order_by(
            models.ComputeNode.id), NODE_FIELDS)

    # -- allocations (capacity claims) -----------------------------------

    def allocation_claim(self, instance_uuid, hosts, vcpus, memory_mb,
                         local_gb, ratios=(1.0, 1.0, 1.0),
                         for_resize=False):
        """Claim the amounts for ``instance_uuid`` on the first of ``hosts``
        that has room (capacity times ``ratios``: vCPU, RAM, disk); that
        host, or None.

        Each try is one conditional UPDATE of the host's usage counters
        (``used + requested <= capacity``): the database serialises
        concurrent ones on the row, so two claims never overcommit a host
        (no RETURNING, no read-then-write).  The allocation row is inserted
        in the same transaction, and a claim the instance held before (a
        schedule run again) is released in it too.

        ``for_resize``: the consumer is a resize's migration, and the
        claim is made only while that resize still waits for it (status
        ``scheduling``; None otherwise): a claim that arrives after its
        conductor gave up (the call timed out) is never left behind.
        """
        node = models.ComputeNode
        cpu, ram, disk = (sa.literal(float(r), sa.Float) for r in ratios)
        with self._session() as session, session.begin():
            if for_resize and not _resize_waits(session, instance_uuid):
                return None
            _release(session, instance_uuid)
            for host in hosts:
                claimed = session.execute(
                    sa.update(node)
                    .where(node.host == host,
                           node.vcpus_used + vcpus <= node.vcpus * cpu,
                           node.memory_mb_used + memory_mb
                           <= node.memory_mb * ram,
                           node.local_gb_used + local_gb
                           <= node.local_gb * disk)
                    .values(vcpus_used=node.vcpus_used + vcpus,
                            memory_mb_used=node.memory_mb_used + memory_mb,
                            local_gb_used=node.local_gb_used + local_gb)
                    .execution_options(synchronize_session=False)).rowcount
                if claimed == 1:
                    session.add(models.Allocation(
                        instance_uuid=instance_uuid, host=host, vcpus=vcpus,
                        memory_mb=memory_mb, local_gb=local_gb))
                    return host
            return None

    def allocation_release(self, instance_uuid):
        """Drop the claim of ``instance_uuid``; False if it held none."""
        with self._session() as session, session.begin():
            return _release(session, instance_uuid)

    def allocation_move(self, instance_uuid, host):
        """Move the claim of ``instance_uuid`` to ``host``, where it now
        runs (a finished migration): the counters of both hosts follow,
        unconditionally.  False if it held no claim elsewhere."""
        node = models.ComputeNode
        with self._session() as session, session.begin():
            row = session.scalars(sa.select(models.Allocation).filter_by(
                instance_uuid=instance_uuid)).one_or_none()
            if row is None or row.host == host:
                return False
            for where, sign in ((row.host, -1), (host, 1)):
                session.execute(
                    sa.update(node).where(node.host == where)
                    .values(vcpus_used=node.vcpus_used + sign * row.vcpus,
                            memory_mb_used=(node.memory_mb_used
                                            + sign * row.memory_mb),
                            local_gb_used=(node.local_gb_used
                                           + sign * row.local_gb))
                    .execution_options(synchronize_session=False))
            row.host = host
            return True

    def allocation_get_all(self, host=None):
        query = sa.select(models.Allocation).order_by(models.Allocation.id)
        if host:
            query = query.filter_by(host=host)
        return self._rows(query, ALLOCATION_FIELDS)

    # -- inflight samples ------------------------------------------------

    def inflight_samples_add(self, samples):
        """Store ``samples`` (dicts with SAMPLE_FIELDS) in one transaction."""
        rows = [{name: sample.get(name) for name in SAMPLE_FIELDS}
                for sample in samples]
        for row in rows:
            if row['error']:
                row['error'] = row['error'][:255]
            row['created_at'] = models.utcnow()
        if not rows:
            return
        with self._session() as session, session.begin():
            session.execute(sa.insert(models.InflightSample), rows)

    def inflight_samples_since(self, seconds):
        """Samples of the last ``seconds``, oldest first, as dicts."""
        cutoff = models.utcnow() - datetime.timedelta(seconds=seconds)
        query = (sa.select(models.InflightSample)
                 .where(models.InflightSample.created_at >= cutoff)
                 .order_by(models.InflightSample.id))
        return self._rows(query, ('created_at',) + SAMPLE_FIELDS)

    def inflight_report(self, seconds, phases, percentiles):
        """Per service over the last ``seconds``, aggregated by the
        database (see ``nova_lite.db.reports``); sorted dicts."""
        cutoff = models.utcnow() - datetime.timedelta(seconds=seconds)
        with self._session() as session:
            return reports.inflight_report(session, cutoff, phases,
                                           percentiles)

    def inflight_samples_purge(self, older_than_seconds):
        """Delete samples older than the retention; returns how many."""
        return self._delete_older_than(models.InflightSample,
                                       models.InflightSample.created_at,
                                       older_than_seconds)
