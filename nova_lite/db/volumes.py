"""Queries of the ``volumes`` table, mixed into ``nova_lite.db.api.API``
(which runs them off the hub like its own)."""

import sqlalchemy as sa

from nova_lite.db import models

VOLUME_FIELDS = ('id', 'display_name', 'display_description', 'size',
                 'status', 'project_id', 'instance_uuid', 'device',
                 'created_at', 'updated_at')


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
