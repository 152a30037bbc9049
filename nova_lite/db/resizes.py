"""Queries of resizes (the ``migrations`` table and the claims it moves),
mixed into ``nova_lite.db.api.API`` (which runs them off the hub like its
own).

A resize has two claims at once, as Nova's placement keeps them: the
instance's old flavor on its source (consumer: the instance's uuid) and
its new flavor on the target (consumer: the migration's uuid).  Confirm
drops the first and hands the second to the instance; revert, or a failed
step, drops the second.  Every change of a resize's state is one
transaction with the compare-and-swap of its conductor work, so a step is
either recorded with its effects or not at all.
"""

import datetime

import sqlalchemy as sa
from oslo_serialization import jsonutils

from nova_lite.db import models
from nova_lite import exception

MIGRATION_FIELDS = ('id', 'uuid', 'instance_uuid', 'source_host',
                    'dest_host', 'old_flavor', 'new_flavor', 'status',
                    'attempts', 'failed_hosts', 'created_at', 'updated_at')

# Migration statuses, in the order a resize goes through them; a compute
# step is done once the status is at or past the one it sets.
SCHEDULING = 'scheduling'
PREPARED = 'prepared'
MIGRATED = 'migrated'
FINISHED = 'finished'
CONFIRMED = 'confirmed'
REVERTED = 'reverted'
ERROR = 'error'
PROGRESS = (SCHEDULING, PREPARED, MIGRATED, FINISHED)
ENDED = (CONFIRMED, REVERTED, ERROR)


def reached(migration, status):
    """Whether ``migration`` is at ``status`` or past it (an ended
    migration is past every step)."""
    if migration['status'] in ENDED:
        return True
    return PROGRESS.index(migration['status']) >= PROGRESS.index(status)


def _migration_dict(row):
    migration = db_api._as_dict(row, MIGRATION_FIELDS)
    for key in ('old_flavor', 'new_flavor'):
        migration[key] = jsonutils.loads(migration[key])
    migration['failed_hosts'] = [
        host for host in (migration['failed_hosts'] or '').split(',')
        if host]
    return migration


def _migration_values(values):
    """Column values from a dict in ``_migration_dict``'s form."""
    values = dict(values)
    if 'failed_hosts' in values:
        values['failed_hosts'] = ','.join(values['failed_hosts']) or None
    values['updated_at'] = models.utcnow()
    return values


def _migration_row(session, migration_uuid):
    row = session.scalars(sa.select(models.Migration).filter_by(
        uuid=migration_uuid)).one_or_none()
    if row is None:
        raise exception.MigrationNotFound(migration_uuid=migration_uuid)
    return row


def _rekey_claim(session, from_consumer, to_consumer):
    session.execute(
        sa.update(models.Allocation)
        .where(models.Allocation.instance_uuid == from_consumer)
        .values(instance_uuid=to_consumer)
        .execution_options(synchronize_session=False))


class MigrationQueries:
    """Needs ``self._session()`` and ``self._rows()`` (``db.api.API``)."""

    def resize_create(self, instance_uuid, migration_uuid, new_flavor,
                      conductor_host, task_state, allowed_vm_states):
        """Claim the instance for a resize to ``new_flavor`` (instance
        columns, see ``db.api.flavor_columns``), and record its migration
        and its conductor work (step ``scheduling``), in one transaction;
        returns the work.

        Refused as ``instance_begin_action`` refuses, and with
        ``SameFlavor`` when the instance has that flavor already.
        """
        with self._session() as session, session.begin():
            instance = db_api._begin_action(
                session, instance_uuid, 'resize', task_state,
                allowed_vm_states)
            if instance['flavorid'] == new_flavor['flavorid']:
                raise exception.SameFlavor()
            old_flavor = {key: instance[key] for key in db_api.FLAVOR_COLUMNS}
            session.add(models.Migration(
                uuid=migration_uuid, instance_uuid=instance_uuid,
                source_host=instance['host'],
                old_flavor=jsonutils.dumps(old_flavor),
                new_flavor=jsonutils.dumps(new_flavor), status=SCHEDULING,
                attempts=0))
            work = models.ConductorWork(
                instance_uuid=instance_uuid, action='resize',
                step='scheduling', conductor_host=conductor_host,
                host=instance['host'], migration_uuid=migration_uuid,
                takeovers=0)
            session.add(work)
            session.flush()
            return db_api._as_dict(work, db_api.WORK_FIELDS)

    def resize_begin(self, instance_uuid, action, step, conductor_host,
                     task_state, allowed_vm_states):
        """Claim a resized instance for ``action`` (confirm or revert) of
        its finished migration, and record the work (at ``step``) in one
        transaction; returns the work."""
        with self._session() as session, session.begin():
            db_api._begin_action(session, instance_uuid, action, task_state,
                                 allowed_vm_states)
            row = session.scalars(
                sa.select(models.Migration)
                .filter_by(instance_uuid=instance_uuid, status=FINISHED)
                .order_by(models.Migration.id.desc())).first()
            if row is None:
                raise exception.InvalidState(
                    instance_uuid=instance_uuid, action=action,
                    state='without a finished resize')
            work = models.ConductorWork(
                instance_uuid=instance_uuid, action=action, step=step,
                conductor_host=conductor_host, host=row.source_host,
                dest=row.dest_host, migration_uuid=row.uuid, takeovers=0)
            session.add(work)
            session.flush()
            return db_api._as_dict(work, db_api.WORK_FIELDS)

    def migration_get(self, migration_uuid):
        """The migration as a dict: flavors as dicts, failed_hosts a
        list."""
        with self._session() as session:
            return _migration_dict(_migration_row(session, migration_uuid))

    def migration_get_all(self, instance_uuid=None, status=None):
        """Migrations, oldest first, as ``migration_get`` returns them."""
        query = sa.select(models.Migration).order_by(models.Migration.id)
        if instance_uuid:
            query = query.filter_by(instance_uuid=instance_uuid)
        if status:
            query = query.filter_by(status=status)
        with self._session() as session:
            return [_migration_dict(row) for row in session.scalars(query)]

    def migration_advance(self, migration_uuid, status, expected, host,
                          side):
        """A compute step's mark: ``status`` in one UPDATE that matches
        only while the migration is ``expected`` and ``host`` is its
        ``side`` (``source`` or ``dest``: a late step of an earlier
        attempt, on a host that is the other side now, matches nothing);
        whether it matched."""
        migration = models.Migration
        side_host = (migration.dest_host if side == 'dest'
                     else migration.source_host)
        with self._session() as session, session.begin():
            return session.execute(
                sa.update(migration)
                .where(migration.uuid == migration_uuid,
                       migration.status == expected,
                       side_host == host)
                .values(status=status, updated_at=models.utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount == 1

    def migration_finish(self, migration_uuid, host):
        """The target's last step: the instance now runs on ``host`` with
        the new flavor, ``resized`` (the conductor frees it); the
        migration ``finished``.
        One transaction, and only from ``migrated`` to ``host``; whether
        it matched."""
        migration = models.Migration
        with self._session() as session, session.begin():
            matched = session.execute(
                sa.update(migration)
                .where(migration.uuid == migration_uuid,
                       migration.status == MIGRATED,
                       migration.dest_host == host)
                .values(status=FINISHED, updated_at=models.utcnow())
                .execution_options(synchronize_session=False)).rowcount
            if matched != 1:
                return False
            row = _migration_row(session, migration_uuid)
            # Its task_state stays until the conductor records the end of
            # the resize: a finish it saw fail (a timeout) is rolled back
            # with no confirm or revert let in meanwhile.
            db_api._update_instance(session, row.instance_uuid, dict(
                jsonutils.loads(row.new_flavor), host=host,
                vm_state='resized', power_state='running', fault=None))
            return True

    def resize_step(self, work, step, migration=None, instance=None,
                    finished=False, release_claim=False, **values):
        """Record that ``work`` (a resize, confirm or revert) reached
        ``step``, with ``migration`` and ``instance`` column values and,
        with ``release_claim``, the migration's claim dropped: all in one
        transaction, and only while the work is still ours
        (``WorkTakenOver``, as ``work_update``).  Returns the work."""
        values.update(step=step, updated_at=models.utcnow())
        if finished:
            values['finished_at'] = values['updated_at']
        with self._session() as session, session.begin():
            owned = session.execute(
                db_api._update_if_still_owned(work).values(**values)
            ).rowcount
            if owned != 1:
                raise exception.WorkTakenOver(
                    work_id=work['id'], action=work['action'],
                    instance_uuid=work['instance_uuid'])
            if release_claim:
                db_api._release(session, work['migration_uuid'])
            if migration:
                session.execute(
                    sa.update(models.Migration)
                    .where(models.Migration.uuid == work['migration_uuid'])
                    .values(**_migration_values(migration))
                    .execution_options(synchronize_session=False))
            if instance:
                db_api._update_instance(session, work['instance_uuid'],
                                        instance)
        return dict(work, **values)

    def migration_abort(self, migration_uuid):
        """End a migration that has not ended (nor finished: that one
        waits for its confirm or revert): ``error``, its claim released,
        in one transaction; whether it did."""
        migration = models.Migration
        with self._session() as session, session.begin():
            ended = session.execute(
                sa.update(migration)
                .where(migration.uuid == migration_uuid,
                       # A finished one waits for its confirm or revert.
                       migration.status.not_in(ENDED + (FINISHED,)))
                .values(status=ERROR, updated_at=models.utcnow())
                .execution_options(synchronize_session=False)).rowcount
            if ended:
                db_api._release(session, migration_uuid)
            return ended == 1

    def resize_confirm(self, work):
        """End a confirm: the instance's claim on its source is dropped
        and the migration's claim on the target becomes the instance's;
        the migration ``confirmed``, the instance ``active`` and free; the
        work finished.  One transaction."""
        with self._session() as session, session.begin():
            owned = session.execute(
                db_api._update_if_still_owned(work).values(
                    step='done', updated_at=models.utcnow(),
                    finished_at=models.utcnow())).rowcount
            if owned != 1:
                raise exception.WorkTakenOver(
                    work_id=work['id'], action=work['action'],
                    instance_uuid=work['instance_uuid'])
            self._confirm(session, work['instance_uuid'],
                          work['migration_uuid'])
            db_api._update_instance(session, work['instance_uuid'],
                             dict(vm_state='active', task_state=None))

    def migration_confirm_deleted(self, instance_uuid):
        """A deleted instance's resizes that wait for confirmation are
        confirmed (as Nova does on delete), so that no claim of theirs
        is left behind; how many."""
        with self._session() as session, session.begin():
            rows = list(session.scalars(sa.select(models.Migration).filter_by(
                instance_uuid=instance_uuid, status=FINISHED)))
            for row in rows:
                self._confirm(session, instance_uuid, row.uuid)
                db_api._release(session, instance_uuid)
            return len(rows)

    @staticmethod
    def _confirm(session, instance_uuid, migration_uuid):
        db_api._release(session, instance_uuid)
        _rekey_claim(session, migration_uuid, instance_uuid)
        session.execute(
            sa.update(models.Migration)
            .where(models.Migration.uuid == migration_uuid)
            .values(status=CONFIRMED, updated_at=models.utcnow())
            .execution_options(synchronize_session=False))

    def migrations_to_confirm(self, window):
        """Migrations ``finished`` more than ``window`` seconds ago."""
        cutoff = models.utcnow() - datetime.timedelta(seconds=window)
        query = (sa.select(models.Migration)
                 .where(models.Migration.status == FINISHED,
                        models.Migration.updated_at < cutoff)
                 .order_by(models.Migration.id))
        with self._session() as session:
            return [_migration_dict(row) for row in session.scalars(query)]


# Last: db.api imports this module for its API class, and the helpers
# above use db.api's transaction pieces only when called.
from nova_lite.db import api as db_api  # noqa: E402
