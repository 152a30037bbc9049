"""A small database API; every function opens its own short transaction.

``API(conf)`` owns one engine.  Rows are returned as plain dicts so callers
never hold a session open across a greenthread switch.
"""

import datetime
import time

import sqlalchemy as sa
from oslo_log import log as logging
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from nova_lite.db import models
from nova_lite import exception
from nova_lite import utils

LOG = logging.getLogger(__name__)

SERVICE_FIELDS = ('id', 'host', 'binary', 'topic', 'version', 'report_count',
                  'disabled', 'disabled_reason', 'last_seen_up',
                  'created_at', 'updated_at')
SAMPLE_FIELDS = ('topic', 'host', 'binary', 'to_service', 'in_service',
                 'greenthread_overhead', 'from_service', 'total',
                 'clock_offset', 'skew', 'greenthreads', 'timed_out', 'error')
INSTANCE_FIELDS = ('uuid', 'host', 'vm_state', 'task_state', 'power_state',
                   'fault', 'created_at', 'updated_at')


def _as_dict(row, fields):
    return {name: getattr(row, name) for name in fields}


def _sqlite_pragmas(dbapi_connection, _record):
    # Several daemons share one SQLite file in a dev deployment: WAL lets
    # readers run beside the writer, busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=10000')
    cursor.close()


def create_engine(url):
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == 'sqlite':
        sa.event.listen(engine, 'connect', _sqlite_pragmas)
    return engine


class API:
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
                reason = utils.mask_url(str(exc).splitlines()[0])
                if attempt == attempts:
                    raise exception.DBConnectionError(
                        url=utils.mask_url(self.url), reason=reason)
                LOG.warning('Database %s unreachable (%s); retry %d/%d in '
                            '%.1fs', utils.mask_url(self.url), reason,
                            attempt, attempts - 1,
                            self.conf.database.connect_retry_interval)
                time.sleep(self.conf.database.connect_retry_interval)

    def dispose(self):
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- services --------------------------------------------------------

    def service_register(self, host, binary, topic, version):
        """Create or refresh the (host, binary) row; returns it as a dict."""
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
            row.last_seen_up = models.utcnow()
            session.flush()
            return _as_dict(row, SERVICE_FIELDS)

    def service_heartbeat(self, service_id):
        """Record a heartbeat; returns the new report_count."""
        now = models.utcnow()
        with self._session() as session, session.begin():
            result = session.execute(
                sa.update(models.Service)
                .where(models.Service.id == service_id)
                .values(report_count=models.Service.report_count + 1,
                        last_seen_up=now, updated_at=now)
                .returning(models.Service.report_count))
            count = result.scalar_one_or_none()
        if count is None:
            raise exception.ServiceNotFound(host='?', binary='id %s' %
                                            service_id)
        return count

    def service_get_all(self, binary=None, topic=None):
        query = sa.select(models.Service).order_by(models.Service.id)
        if binary:
            query = query.filter_by(binary=binary)
        if topic:
            query = query.filter_by(topic=topic)
        with self._session() as session:
            return [_as_dict(row, SERVICE_FIELDS)
                    for row in session.scalars(query)]

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

    def instance_get_all(self, host=None):
        query = sa.select(models.Instance).order_by(models.Instance.created_at)
        if host:
            query = query.filter_by(host=host)
        with self._session() as session:
            return [_as_dict(row, INSTANCE_FIELDS)
                    for row in session.scalars(query)]

    def instance_count_by_host(self):
        query = (sa.select(models.Instance.host, sa.func.count())
                 .where(models.Instance.host.is_not(None))
                 .group_by(models.Instance.host))
        with self._session() as session:
            return dict(session.execute(query).all())

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
        with self._session() as session:
            return [_as_dict(row, ('created_at',) + SAMPLE_FIELDS)
                    for row in session.scalars(query)]

    def inflight_samples_purge(self, older_than_seconds):
        """Delete samples older than the retention; returns how many."""
        cutoff = models.utcnow() - datetime.timedelta(
            seconds=older_than_seconds)
        with self._session() as session, session.begin():
            result = session.execute(
                sa.delete(models.InflightSample)
                .where(models.InflightSample.created_at < cutoff))
            return result.rowcount
