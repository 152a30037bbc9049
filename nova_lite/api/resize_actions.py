"""``POST /servers/{server_id}/action``: ``resize``, ``confirmResize`` and
``revertResize``.

The three are the conductor's guarded calls (``nova_lite.conductor.
resize``): the answer comes once the conductor has claimed the server and
recorded the work, before the resize is done; 409 (``conflictingRequest``)
while another action holds it or it is not in a state for it.
"""

from nova_lite.api import common
from nova_lite.api import faults
from nova_lite.api import policies
from nova_lite.api import servers
from nova_lite.compute import task_states
from nova_lite import exception

# Sent by Nova's clients; a fake or QEMU resize has no disk layout to keep.
_RESIZE_IGNORED = ('OS-DCF:diskConfig',)


def actions(deps):
    """The action table entries: body key -> ``handler(req, server_id,
    args)``."""
    return {
        'resize': lambda req, server_id, args: _resize(deps, req, server_id,
                                                       args),
        'confirmResize': lambda req, server_id, args: _end(
            deps, req, server_id, args, 'confirmResize', 'confirm_resize',
            204),
        'revertResize': lambda req, server_id, args: _end(
            deps, req, server_id, args, 'revertResize', 'revert_resize',
            202),
    }


def _resize(deps, req, server_id, args):
    """``{"resize": {"flavorRef": ID or link, "OS-DCF:diskConfig": ...}}``:
    202; 400 for an unknown flavor or the server's own."""
    common.check_object(args, 'resize', ('flavorRef',) + _RESIZE_IGNORED,
                        required=('flavorRef',))
    flavor_id = common.ref_id(args['flavorRef'], 'flavorRef')
    instance = servers.get_instance(deps, req, server_id,
                                    policies.SERVERS % 'resize')
    try:
        flavor = deps.db.flavor_get(flavor_id)
    except exception.FlavorNotFound as exc:
        raise faults.Fault(400, '%s.' % exc)
    # The state checks come first, as Nova's check_instance_state does: a
    # busy server, or one in VERIFY_RESIZE (whose flavor is already the new
    # one), is the conductor's 409, not a 400.  The conductor checks both
    # again in its transaction.
    if (flavor['flavorid'] == instance['flavorid'] and
            instance['task_state'] is None and instance['vm_state'] in
            task_states.allowed_vm_states('resize')):
        raise faults.Fault(400, str(exception.SameFlavor()))
    deps.conductor.resize_instance(common.context_of(req), server_id,
                                   flavor['flavorid'])
    return common.json_response(None, status=202)


def _end(deps, req, server_id, args, name, method, status):
    """``{"confirmResize": null}`` (204) or ``{"revertResize": null}``
    (202), of a server in VERIFY_RESIZE."""
    if args is not None:
        raise faults.Fault(400, 'Invalid input for %s: expected null' % name)
    servers.get_instance(deps, req, server_id, policies.SERVERS % method)
    getattr(deps.conductor, method)(common.context_of(req), server_id)
    return common.json_response(None, status=status)
