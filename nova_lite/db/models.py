"""SQLAlchemy models. The schema itself is owned by the Alembic migrations;
a unit test checks that the two agree.
"""

import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy import orm

# MySQL/MariaDB: DATETIME keeps whole seconds unless given a precision
# (heartbeats and inflight sample windows need microseconds), and FLOAT is
# single precision (PostgreSQL's and SQLite's are double).  Migration 005
# brings older MySQL schemas to these.
DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql',
                                      'mariadb')
Float = sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), 'mysql', 'mariadb')


def utcnow():
    """Naive UTC now: what every timestamp column stores."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Base(orm.DeclarativeBase):
    pass


class TimestampMixin:
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, default=utcnow, nullable=False)
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        DateTime, onupdate=utcnow)


class Service(TimestampMixin, Base):
    """One running (or once running) service: a (host, binary) pair."""

    __tablename__ = 'services'
    __table_args__ = (sa.UniqueConstraint('host', 'binary',
                                          name='uniq_services0host0binary'),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    binary: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    topic: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    # The RPC API version the service's manager serves, e.g. "1.1".
    version: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    report_count: orm.Mapped[int] = orm.mapped_column(default=0)
    disabled: orm.Mapped[bool] = orm.mapped_column(default=False)
    disabled_reason: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255))
    # Written by every heartbeat; what up/down is judged on.
    last_seen_up: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        DateTime)
    # host:port of the process's /metrics listener; None without one.
    metrics_address: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255))


class HostClock(Base):
    """A host's clock offset to the reference clock (the database
    server's), NTP-style from the lowest-round-trip probes of a window."""

    __tablename__ = 'host_clocks'

    host: orm.Mapped[str] = orm.mapped_column(sa.String(255),
                                              primary_key=True)
    # This host's wall clock minus the reference, and the error bound
    # (half the lowest round trip), in ms.
    offset_ms: orm.Mapped[float] = orm.mapped_column(Float)
    bound_ms: orm.Mapped[float] = orm.mapped_column(Float)
    # The inflight daemon's host that measured it.
    measured_by: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    updated_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, default=utcnow, onupdate=utcnow)


class Instance(TimestampMixin, Base):
    __tablename__ = 'instances'

    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                      index=True)
    vm_state: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    task_state: orm.Mapped[str | None] = orm.mapped_column(sa.String(32))
    power_state: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    fault: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    # What the Compute API shows (migration 006); None for instances built
    # without the API.
    display_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    project_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                            index=True)
    user_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    # No image service: the value the client sent, kept as it came.
    image_ref: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    # The flavor as it was at build time (a later change of the flavor
    # does not resize the instance).
    flavorid: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    flavor_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    vcpus: orm.Mapped[int | None] = orm.mapped_column()
    memory_mb: orm.Mapped[int | None] = orm.mapped_column()
    root_gb: orm.Mapped[int | None] = orm.mapped_column()


class Flavor(TimestampMixin, Base):
    """A size an instance is built with (Nova's flavor, without extra
    specs); ``db sync`` seeds Nova's historical m1.* defaults."""

    __tablename__ = 'flavors'
    __table_args__ = (
        sa.UniqueConstraint('flavorid', name='uniq_flavors0flavorid'),
        sa.UniqueConstraint('name', name='uniq_flavors0name'))

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    # The id the API shows ("1", or a uuid).
    flavorid: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    vcpus: orm.Mapped[int] = orm.mapped_column()
    memory_mb: orm.Mapped[int] = orm.mapped_column()
    root_gb: orm.Mapped[int] = orm.mapped_column()


class ComputeNode(TimestampMixin, Base):
    """The capacity a compute host reports when it starts."""

    __tablename__ = 'compute_nodes'
    __table_args__ = (
        sa.UniqueConstraint('host', name='uniq_compute_nodes0host'),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    hypervisor_type: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    vcpus: orm.Mapped[int] = orm.mapped_column()
    memory_mb: orm.Mapped[int] = orm.mapped_column()
    local_gb: orm.Mapped[int] = orm.mapped_column()
    # What the scheduler's claims (``allocations``) add up to here.
    vcpus_used: orm.Mapped[int] = orm.mapped_column(server_default='0')
    memory_mb_used: orm.Mapped[int] = orm.mapped_column(server_default='0')
    local_gb_used: orm.Mapped[int] = orm.mapped_column(server_default='0')


class Allocation(TimestampMixin, Base):
    """The resources the scheduler claimed for one consumer on a host.

    The consumer (``instance_uuid``) is an instance, for the host it runs
    on, or a resize's migration (its ``uuid``), for the resize's target
    until the resize is confirmed (then the claim becomes the
    instance's) or reverted (then it is dropped).
    """

    __tablename__ = 'allocations'
    __table_args__ = (
        sa.UniqueConstraint('instance_uuid',
                            name='uniq_allocations0instance_uuid'),
        sa.Index('ix_allocations_host', 'host'))

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    vcpus: orm.Mapped[int] = orm.mapped_column()
    memory_mb: orm.Mapped[int] = orm.mapped_column()
    local_gb: orm.Mapped[int] = orm.mapped_column()


class ConductorWork(TimestampMixin, Base):
    """One conductor action on one instance, until the conductor's part is
    done; what another conductor takes over when this one dies."""

    __tablename__ = 'conductor_work'
    __table_args__ = (sa.Index('ix_conductor_work_unfinished',
                               'finished_at', 'conductor_host'),)

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    # build, reboot, destroy or migrate.
    action: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    # Where the action has got to (see nova_lite.conductor.work).
    step: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    # The compute host the action was sent (or is to be sent) to, and the
    # migration destination.
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    dest: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    # The conductor that owns the work; changes on takeover.
    conductor_host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    takeovers: orm.Mapped[int] = orm.mapped_column(default=0)
    # The resize (``migrations.uuid``) a resize work drives (migration 008).
    migration_uuid: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(36))
    finished_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        DateTime)


class Migration(TimestampMixin, Base):
    """One resize of one instance (Nova's ``migrations`` row): from its
    source to a target the scheduler chose, its flavors before and after,
    and how far it got."""

    __tablename__ = 'migrations'
    __table_args__ = (
        sa.UniqueConstraint('uuid', name='uniq_migrations0uuid'),
        sa.Index('ix_migrations_instance_uuid', 'instance_uuid'),
        sa.Index('ix_migrations_status', 'status'))

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    # The consumer of the target's claim (``allocations.instance_uuid``).
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    instance_uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36))
    source_host: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    # None until the scheduler has chosen (and claimed on) a target.
    dest_host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    # The flavor snapshots, as JSON objects with the instance's flavor
    # columns (flavorid, flavor_name, vcpus, memory_mb, root_gb).
    old_flavor: orm.Mapped[str] = orm.mapped_column(sa.Text)
    new_flavor: orm.Mapped[str] = orm.mapped_column(sa.Text)
    status: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    # Scheduling attempts so far, and the targets that failed (a
    # comma-separated list): a retry excludes them, also after takeover.
    attempts: orm.Mapped[int] = orm.mapped_column(server_default='0')
    failed_hosts: orm.Mapped[str | None] = orm.mapped_column(sa.Text)


class Volume(TimestampMixin, Base):
    """A volume of the os-volumes proxy API: a size and, once attached,
    the instance (and device name) it is attached to."""

    __tablename__ = 'volumes'
    __table_args__ = (
        sa.Index('ix_volumes_project_id', 'project_id'),
        sa.Index('ix_volumes_instance_uuid', 'instance_uuid'))

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    display_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    display_description: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255))
    size: orm.Mapped[int] = orm.mapped_column()
    # available or in-use.
    status: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    project_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    instance_uuid: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    device: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))


class InflightSample(Base):
    """One inflight probe of one service; phases in ms."""

    __tablename__ = 'inflight_samples'
    __table_args__ = (sa.Index('ix_inflight_samples_created_at',
                               'created_at'),
                      sa.Index('ix_inflight_samples_prober_created_at',
                               'prober', 'created_at'),
                      sa.Index('ix_inflight_samples_round_no', 'round_no'))

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, default=utcnow, nullable=False)
    topic: orm.Mapped[str] = orm.mapped_column(sa.String(255))
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    binary: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    to_service: orm.Mapped[float | None] = orm.mapped_column(Float)
    in_service: orm.Mapped[float | None] = orm.mapped_column(Float)
    greenthread_overhead: orm.Mapped[float | None] = orm.mapped_column(
        Float)
    from_service: orm.Mapped[float | None] = orm.mapped_column(Float)
    total: orm.Mapped[float | None] = orm.mapped_column(Float)
    # The service's clock minus the reference clock (the database
    # server's), and its error bound, in ms (nova_lite.inflight.clocks).
    clock_offset: orm.Mapped[float | None] = orm.mapped_column(Float)
    clock_offset_bound: orm.Mapped[float | None] = orm.mapped_column(Float)
    skew: orm.Mapped[bool] = orm.mapped_column(default=False)
    greenthreads: orm.Mapped[int | None] = orm.mapped_column()
    workers: orm.Mapped[int | None] = orm.mapped_column()
    backend: orm.Mapped[str | None] = orm.mapped_column(sa.String(16))
    timed_out: orm.Mapped[bool] = orm.mapped_column(default=False)
    error: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    # The inflight daemon that took it (host-pid, its member id in the
    # group) and the wall-clock round k; None for probe_now's samples.
    prober: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    round_no: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger)
    # How it was probed (inflight or ping), what the service list said of
    # the service (up by heartbeat, the heartbeat's age in s), its
    # topic.host queue then (ready and unacknowledged messages, consumers),
    # and the round's flags, comma-separated (nova_lite.inflight.verdicts).
    method: orm.Mapped[str | None] = orm.mapped_column(sa.String(16))
    up: orm.Mapped[bool | None] = orm.mapped_column()
    heartbeat_age: orm.Mapped[float | None] = orm.mapped_column(Float)
    queue_messages: orm.Mapped[int | None] = orm.mapped_column()
    queue_unacked: orm.Mapped[int | None] = orm.mapped_column()
    queue_consumers: orm.Mapped[int | None] = orm.mapped_column()
    flags: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
