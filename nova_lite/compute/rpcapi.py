"""Client side of the compute RPC API."""

from nova_lite import rpc


class ComputeRPCAPI(rpc.RPCAPIBase):
    """Client side of the compute RPC API.

    1.0 - Initial version: spawn(instance_uuid), get_info(instance_uuid).
    1.1 - Add reboot, destroy, migrate(dest), adopt_migrated, get_stats,
          block_job_start, block_job_info, block_job_abort(flags).
    1.2 - spawn, reboot, destroy and migrate take the conductor's work_id:
          the host carries out each work once, and only the instance's
          newest.
    1.3 - Add pre_live_migration (call) and
          rollback_live_migration_at_destination (cast), to the
          destination of a live migration.
    1.4 - Add the resize calls: prep_resize, resize_instance,
          finish_resize, confirm_resize, revert_resize,
          finish_revert_resize (each with the migration's uuid).
    """

    TOPIC = 'compute'

    def _cast(self, ctxt, host, method, version, **kwargs):
        self._require(method, version, server=host).cast(ctxt, method,
                                                         **kwargs)

    def _cast_work(self, ctxt, host, method, version, work_id, **kwargs):
        """Cast ``method`` with ``work_id`` where the host takes it (1.2);
        an older host gets the request without it."""
        if work_id is not None and self.can_send_version('1.2'):
            version, kwargs['work_id'] = '1.2', work_id
        self._cast(ctxt, host, method, version, **kwargs)

    def _call(self, ctxt, host, method, version, timeout=None, **kwargs):
        return self._require(method, version, server=host,
                             timeout=timeout).call(ctxt, method, **kwargs)

    def spawn(self, ctxt, host, instance_uuid, work_id=None):
        """Cast: boot ``instance_uuid`` on ``host``."""
        self._cast_work(ctxt, host, 'spawn', '1.0', work_id,
                        instance_uuid=instance_uuid)

    def reboot(self, ctxt, host, instance_uuid, work_id=None):
        """Cast: reboot the instance."""
        self._cast_work(ctxt, host, 'reboot', '1.1', work_id,
                        instance_uuid=instance_uuid)

    def destroy(self, ctxt, host, instance_uuid, work_id=None):
        """Cast: destroy the instance."""
        self._cast_work(ctxt, host, 'destroy', '1.1', work_id,
                        instance_uuid=instance_uuid)

    def migrate(self, ctxt, host, instance_uuid, dest, work_id=None):
        """Cast: live-migrate the instance from ``host`` to ``dest``."""
        self._cast_work(ctxt, host, 'migrate', '1.1', work_id,
                        instance_uuid=instance_uuid, dest=dest)

    def pre_live_migration(self, ctxt, host, instance_uuid, source_data):
        """Call (to the destination ``host``): prepare to receive the
        instance; returns the ``migrate_data`` for the source's driver.
        Raises ``MigrationPreCheckError`` when ``host`` cannot take it."""
        return self._call(ctxt, host, 'pre_live_migration', '1.3',
                          instance_uuid=instance_uuid,
                          source_data=source_data)

    def rollback_live_migration_at_destination(self, ctxt, host,
                                               instance_uuid):
        """Cast (to the destination ``host``): undo pre_live_migration
        of a migration that failed."""
        self._cast(ctxt, host, 'rollback_live_migration_at_destination',
                   '1.3', instance_uuid=instance_uuid)

    def adopt_migrated(self, ctxt, host, instance_uuid, power_state):
        """Cast: ``host`` takes over an instance migrated to it."""
        self._cast(ctxt, host, 'adopt_migrated', '1.1',
                   instance_uuid=instance_uuid, power_state=power_state)

    def get_info(self, ctxt, host, instance_uuid):
        """Call: a dict with the instance's ``state`` on ``host``."""
        return self._call(ctxt, host, 'get_info', '1.0',
                          instance_uuid=instance_uuid)

    def get_stats(self, ctxt, host, instance_uuid, timeout=None):
        """Call: monitor statistics (a QUERY job)."""
        return self._call(ctxt, host, 'get_stats', '1.1', timeout=timeout,
                          instance_uuid=instance_uuid)

    def block_job_start(self, ctxt, host, instance_uuid, disk, kind):
        """Call: start a block job; returns its first info."""
        return self._call(ctxt, host, 'block_job_start', '1.1',
                          instance_uuid=instance_uuid, disk=disk, kind=kind)

    def block_job_info(self, ctxt, host, instance_uuid, disk):
        """Call: the block job's progress, or None."""
        return self._call(ctxt, host, 'block_job_info', '1.1',
                          instance_uuid=instance_uuid, disk=disk)

    def block_job_abort(self, ctxt, host, instance_uuid, disk, flags=0,
                        timeout=None):
        """Call: end a block job; flags ABORT_ASYNC=1, PIVOT=2."""
        return self._call(ctxt, host, 'block_job_abort', '1.1',
                          timeout=timeout, instance_uuid=instance_uuid,
                          disk=disk, flags=flags)

    def _resize_call(self, ctxt, host, method, instance_uuid, migration_uuid,
                     timeout):
        return self._call(ctxt, host, method, '1.4', timeout=timeout,
                          instance_uuid=instance_uuid,
                          migration_uuid=migration_uuid)

    def prep_resize(self, ctxt, host, instance_uuid, migration_uuid,
                    timeout=None):
        """Call (to the target ``host``): prepare for the resize."""
        return self._resize_call(ctxt, host, 'prep_resize', instance_uuid,
                                 migration_uuid, timeout)

    def resize_instance(self, ctxt, host, instance_uuid, migration_uuid,
                        timeout=None):
        """Call (to the source ``host``): power off, hand the disk over."""
        return self._resize_call(ctxt, host, 'resize_instance',
                                 instance_uuid, migration_uuid, timeout)

    def finish_resize(self, ctxt, host, instance_uuid, migration_uuid,
                      timeout=None):
        """Call (to the target ``host``): start it with the new flavor."""
        return self._resize_call(ctxt, host, 'finish_resize', instance_uuid,
                                 migration_uuid, timeout)

    def confirm_resize(self, ctxt, host, instance_uuid, migration_uuid,
                       timeout=None):
        """Call (to the source ``host``): drop the old copy."""
        return self._resize_call(ctxt, host, 'confirm_resize', instance_uuid,
                                 migration_uuid, timeout)

    def revert_resize(self, ctxt, host, instance_uuid, migration_uuid,
                      timeout=None):
        """Call (to the target ``host``): drop the new copy, or what a
        failed resize left there."""
        return self._resize_call(ctxt, host, 'revert_resize', instance_uuid,
                                 migration_uuid, timeout)

    def finish_revert_resize(self, ctxt, host, instance_uuid, migration_uuid,
                             timeout=None):
        """Call (to the source ``host``): start the old copy again."""
        return self._resize_call(ctxt, host, 'finish_revert_resize',
                                 instance_uuid, migration_uuid, timeout)
