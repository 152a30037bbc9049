"""Queries of the ``volumes`` table, mixed into ``nova_lite.db.api.API``
(which runs them off the hub like its own).

Every change of a volume's state is one compare-and-swap UPDATE (or
DELETE) that matches only in the state the change starts from: attach
only while ``available``, detach only while attached to that server,
delete only while ``available``.  Of two concurrent changes of one volume
the database lets exactly one match; the other finds nothing to change and
is told why.

Attach and detach also guard the server in the same transaction: a no-op
UPDATE of its row that matches only while it has no task and is in a
state that allows the change.  It row-locks the server (PostgreSQL,
MariaDB; SQLite locks the whole database) until the commit, so that two
attaches to one server pick their device names one after the other, and a
conductor's guarded action cannot begin in between.
"""

import re

import sqlalchemy as sa

from nova_lite.db import models
from nova_lite import exception

VOLUME_FIELDS = ('id', 'display_name', 'display_description', 'size',
                 'status', 'project_id', 'instance_uuid', 'device',
                 'created_at', 'updated_at')

AVAILABLE = 'available'
IN_USE = 'in-use'

# The vm_states a volume may be attached in or detached from (Nova's
# check_instance_state of attach_volume and detach_volume, of those
# nova_lite has).
ATTACH_VM_STATES = ('active', 'stopped', 'resized')

# Device names given in a request (Nova's schema), and the ones picked
# when none is: /dev/vdb ... /dev/vdz (vda is the root disk).
_DEVICE_RE = re.compile(r'^/dev/x?[a-z]?d?[a-z]+[0-9]*$')
_AUTO_DEVICES = tuple('/dev/vd%s' % chr(c)
                      for c in range(ord('b'), ord('z') + 1))


def _as_dict(row):
    return {name: getattr(row, name) for name in VOLUME_FIELDS}


def check_device(device):
    """``device`` if it is a device path Nova would accept; else
    ``InvalidDevicePath``."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise exception.InvalidDevicePath(device=device)
    return device


def _guard_instance(session, instance_uuid, action):
    """Row-lock the server until the commit, if it has no task and is in
    one of ``ATTACH_VM_STATES``; else a named error saying why not."""
    instance = models.Instance
    # Assigning a column to itself changes nothing (updated_at: not even
    # the onupdate timestamp), but takes the lock (MySQL drivers count
    # matched rows, as SQLAlchemy asks them to).
    matched = session.execute(
        sa.update(instance)
        .where(instance.uuid == instance_uuid,
               instance.task_state.is_(None),
               instance.vm_state.in_(ATTACH_VM_STATES))
        .values(updated_at=instance.updated_at)
        .execution_options(synchronize_session=False)).rowcount
    if matched == 1:
        return
    row = session.get(instance, instance_uuid)
    if row is None or row.vm_state == 'deleted':
        raise exception.InstanceNotFound(instance_uuid=instance_uuid)
    if row.task_state is not None:
        raise exception.InstanceActionInProgress(
            instance_uuid=instance_uuid, action=action,
            task_state=row.task_state)
    raise exception.InvalidState(instance_uuid=instance_uuid,
                                 state=row.vm_state, action=action)


class VolumeQueries:
    """Needs ``self._session()`` and ``self._rows()`` (``db.api.API``)."""

    def volume_ids_attached(self, instance_uuid):
        """The ids of the volumes attached to ``instance_uuid``, sorted
        (the order a workflow locks them in)."""
        query = (sa.select(models.Volume.id)
                 .where(models.Volume.instance_uuid == instance_uuid)
                 .order_by(models.Volume.id))
        with self._session() as session:
            return list(session.scalars(query))

    def volume_create(self, volume_id, size, project_id=None,
                      display_name=None, display_description=None):
        """A new ``available`` volume; returns it."""
        with self._session() as session, session.begin():
            row = models.Volume(
                id=volume_id, size=size, status=AVAILABLE,
                project_id=project_id, display_name=display_name,
                display_description=display_description)
            session.add(row)
        return _as_dict(row)

    def volume_get(self, volume_id):
        """The volume, or ``VolumeNotFound``."""
        with self._session() as session:
            row = session.get(models.Volume, volume_id)
            if row is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            return _as_dict(row)

    def volume_get_all(self, project_id=None, instance_uuid=None):
        """Volumes, oldest first: of one project (None: of all), or
        attached to one server."""
        query = sa.select(models.Volume).order_by(models.Volume.created_at,
                                                  models.Volume.id)
        if project_id is not None:
            query = query.filter_by(project_id=project_id)
        if instance_uuid is not None:
            query = query.filter_by(instance_uuid=instance_uuid)
        return self._rows(query, VOLUME_FIELDS)

    def volume_delete(self, volume_id):
        """Delete the volume while it is ``available``; ``VolumeInUse``
        when it is attached, ``VolumeNotFound`` when it is gone."""
        with self._session() as session, session.begin():
            deleted = session.execute(
                sa.delete(models.Volume)
                .where(models.Volume.id == volume_id,
                       models.Volume.status == AVAILABLE)
                .execution_options(synchronize_session=False)).rowcount
            if deleted == 1:
                return
            row = session.get(models.Volume, volume_id)
            if row is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            raise exception.VolumeInUse(volume_id=volume_id,
                                        action='delete',
                                        instance_uuid=row.instance_uuid)

    def volume_attach(self, volume_id, instance_uuid, device=None):
        """Attach the ``available`` volume to the server as ``device``
        (None: the first free of /dev/vdb ... /dev/vdz); returns it.

        ``InstanceNotFound``, ``InstanceActionInProgress`` or
        ``InvalidState`` for a server that cannot take it now,
        ``DevicePathInUse`` for a device name the server already uses,
        ``VolumeNotFound``, or ``VolumeInUse`` when it is attached (to
        this server or another).
        """
        if device is not None:
            check_device(device)
        volume = models.Volume
        with self._session() as session, session.begin():
            _guard_instance(session, instance_uuid, 'attach a volume to')
            # Read under the server's lock: the latest committed names.
            taken = set(session.scalars(
                sa.select(volume.device)
                .where(volume.instance_uuid == instance_uuid)
                .with_for_update()))
            if device is None:
                free = [d for d in _AUTO_DEVICES if d not in taken]
                if not free:
                    raise exception.DevicePathInUse(
                        device='every one of /dev/vdb-/dev/vdz',
                        instance_uuid=instance_uuid)
                device = free[0]
            elif device in taken:
                raise exception.DevicePathInUse(device=device,
                                                instance_uuid=instance_uuid)
            attached = session.execute(
                sa.update(volume)
                .where(volume.id == volume_id, volume.status == AVAILABLE)
                .values(status=IN_USE, instance_uuid=instance_uuid,
                        device=device, updated_at=models.utcnow())
                .execution_options(synchronize_session=False)).rowcount
            row = session.get(volume, volume_id)
            if row is None:
                raise exception.VolumeNotFound(volume_id=volume_id)
            if attached != 1:
                raise exception.VolumeInUse(
                    volume_id=volume_id, action='attach',
                    instance_uuid=row.instance_uuid)
            return _as_dict(row)

    def volume_detach(self, volume_id, instance_uuid):
        """Detach the volume from the server it is attached to; returns
        it, ``available``.  ``VolumeNotAttached`` when it is not attached
        there, and the server's errors as for ``volume_attach``."""
        volume = models.Volume
        with self._session() as session, session.begin():
            _guard_instance(session, instance_uuid, 'detach a volume from')
            detached = session.execute(
                sa.update(volume)
                .where(volume.id == volume_id,
                       volume.instance_uuid == instance_uuid,
                       volume.status == IN_USE)
                .values(status=AVAILABLE, instance_uuid=None, device=None,
                        updated_at=models.utcnow())
                .execution_options(synchronize_session=False)).rowcount
            if detached != 1:
                raise exception.VolumeNotAttached(
                    volume_id=volume_id, instance_uuid=instance_uuid)
            return _as_dict(session.get(volume, volume_id))

    def volume_detach_all(self, instance_uuid):
        """Detach every volume of a destroyed server, whatever its state
        (its destroy's last step: nothing can detach them through the API
        once the server is gone); how many."""
        volume = models.Volume
        with self._session() as session, session.begin():
            return session.execute(
                sa.update(volume)
                .where(volume.instance_uuid == instance_uuid)
                .values(status=AVAILABLE, instance_uuid=None, device=None,
                        updated_at=models.utcnow())
                .execution_options(synchronize_session=False)).rowcount
