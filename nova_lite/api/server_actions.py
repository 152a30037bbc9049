"""``POST /servers/{server_id}/action``: ``reboot`` and ``os-migrateLive``
(and the resize actions of ``nova_lite.api.resize_actions``).

Both are the conductor's guarded calls: 202 once the conductor has claimed
the server, 409 (``conflictingRequest``) while another action holds it.
"""

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import policies
from nova_lite.api import resize_actions
from nova_lite.api import servers

_REBOOT_TYPES = ('SOFT', 'HARD')


class Controller:
    def __init__(self, deps):
        self.deps = deps
        self._actions = {'reboot': self._reboot,
                         'os-migrateLive': self._migrate_live}
        self._actions.update(resize_actions.actions(deps))

    def action(self, req, server_id):
        name, args = common.single_key(common.json_body(req), self._actions)
        return self._actions[name](req, server_id, args)

    def _reboot(self, req, server_id, args):
        """``{"reboot": {"type": "SOFT" | "HARD"}}``; the fake and QEMU
        drivers reboot the same way for both."""
        common.check_object(args, 'reboot', ('type',), required=('type',))
        if (not isinstance(args['type'], str) or
                args['type'].upper() not in _REBOOT_TYPES):
            raise faults.Fault(400, 'Invalid input for field/attribute '
                               'type: %r is not one of SOFT, HARD' %
                               (args['type'],))
        servers.get_instance(self.deps, req, server_id,
                             policies.SERVERS % 'reboot')
        self.deps.conductor.reboot_instance(common.context_of(req),
                                            server_id)
        return common.json_response(None, status=202)

    def _migrate_live(self, req, server_id, args):
        """``{"os-migrateLive": {"host": H | null, "block_migration": B,
        "disk_over_commit": B}}`` as microversion 2.1 sends it.

        ``host`` null or left out lets the scheduler pick.  The two flags
        are checked and ignored: a fake or QEMU live migration always
        copies the disk.
        """
        common.check_object(args, 'os-migrateLive',
                            ('host', 'block_migration', 'disk_over_commit'))
        for flag in ('block_migration', 'disk_over_commit'):
            if flag in args:
                common.boolean(args[flag], flag)
        host = args.get('host')
        if host is not None:
            host = common.string(host, 'host')
        servers.get_instance(self.deps, req, server_id,
                             policies.MIGRATE_LIVE)
        self.deps.conductor.migrate_instance(common.context_of(req),
                                             server_id, dest=host)
        return common.json_response(None, status=202)


def routes(deps):
    controller = Controller(deps)
    return [('POST', '/servers/{server_id}/action', controller.action)]
