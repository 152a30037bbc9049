"""oslo.policy defaults in code, as Nova's: a policy file may override.

Rule names are Nova's.  Services, hypervisors, live migration and the
extended server attributes are for admins; a server (and a volume) is for
its project's members and for admins.  ``[oslo_policy] policy_file``
(``policy.yaml`` next to the config file by default) overrides any rule;
``oslopolicy-sample-generator --namespace nova_lite`` lists them.
"""

from oslo_policy import policy

from nova_lite import exception

ADMIN = 'rule:admin_api'
ADMIN_OR_OWNER = 'rule:admin_or_owner'

SERVERS = 'os_compute_api:servers:%s'
EXTENDED_ATTRIBUTES = 'os_compute_api:os-extended-server-attributes'
MIGRATE_LIVE = 'os_compute_api:os-migrate-server:migrate_live'
SERVICES_LIST = 'os_compute_api:os-services:list'
SERVICES_UPDATE = 'os_compute_api:os-services:update'
HYPERVISORS_DETAIL = 'os_compute_api:os-hypervisors:list-detail'
VOLUMES = 'os_compute_api:os-volumes'
VOLUMES_ALL_PROJECTS = 'os_compute_api:os-volumes:all_tenants'
VOLUME_ATTACHMENTS = 'os_compute_api:os-volumes-attachments:%s'


def _rule(name, check, description, method, path):
    return policy.DocumentedRuleDefault(
        name=name, check_str=check, description=description,
        operations=[{'method': method, 'path': path}])


BASE_RULES = [
    policy.RuleDefault('context_is_admin', 'role:admin',
                       description='Who is an administrator.'),
    policy.RuleDefault('admin_api', 'role:admin',
                       description='Rules that are for administrators.'),
    policy.RuleDefault('admin_or_owner',
                       'rule:admin_api or project_id:%(project_id)s',
                       description='An administrator, or a member of the '
                                   'project that owns the resource.'),
]

API_RULES = [
    _rule(SERVERS % 'index', ADMIN_OR_OWNER, 'List servers', 'GET',
          '/servers'),
    _rule(SERVERS % 'detail', ADMIN_OR_OWNER, 'List servers with details',
          'GET', '/servers/detail'),
    _rule(SERVERS % 'index:get_all_tenants', ADMIN,
          'List the servers of all projects (all_tenants, deleted)', 'GET',
          '/servers'),
    _rule(SERVERS % 'detail:get_all_tenants', ADMIN,
          'List the servers of all projects with details', 'GET',
          '/servers/detail'),
    _rule(SERVERS % 'show', ADMIN_OR_OWNER, 'Show a server', 'GET',
          '/servers/{server_id}'),
    _rule(SERVERS % 'create', ADMIN_OR_OWNER, 'Create a server', 'POST',
          '/servers'),
    _rule(SERVERS % 'delete', ADMIN_OR_OWNER, 'Delete a server', 'DELETE',
          '/servers/{server_id}'),
    _rule(SERVERS % 'reboot', ADMIN_OR_OWNER, 'Reboot a server', 'POST',
          '/servers/{server_id}/action (reboot)'),
    _rule(SERVERS % 'resize', ADMIN_OR_OWNER, 'Resize a server', 'POST',
          '/servers/{server_id}/action (resize)'),
    _rule(SERVERS % 'confirm_resize', ADMIN_OR_OWNER,
          'Confirm the resize of a server', 'POST',
          '/servers/{server_id}/action (confirmResize)'),
    _rule(SERVERS % 'revert_resize', ADMIN_OR_OWNER,
          'Revert the resize of a server', 'POST',
          '/servers/{server_id}/action (revertResize)'),
    _rule(MIGRATE_LIVE, ADMIN, 'Live-migrate a server', 'POST',
          '/servers/{server_id}/action (os-migrateLive)'),
    _rule(EXTENDED_ATTRIBUTES, ADMIN,
          'Show OS-EXT-SRV-ATTR:* and OS-EXT-STS:* of a server', 'GET',
          '/servers/{server_id}'),
    _rule(SERVICES_LIST, ADMIN, 'List services', 'GET', '/os-services'),
    _rule(SERVICES_UPDATE, ADMIN, 'Enable or disable a service', 'PUT',
          '/os-services/{service_id}'),
    _rule(HYPERVISORS_DETAIL, ADMIN, 'List hypervisors with details',
          'GET', '/os-hypervisors/detail'),
    policy.DocumentedRuleDefault(
        name=VOLUMES, check_str=ADMIN_OR_OWNER,
        description='Create, list, show and delete volumes (the '
                    'os-volumes proxy API)',
        operations=[{'method': method, 'path': path} for method, path in (
            ('GET', '/os-volumes'), ('GET', '/os-volumes/detail'),
            ('GET', '/os-volumes/{volume_id}'), ('POST', '/os-volumes'),
            ('DELETE', '/os-volumes/{volume_id}'))]),
    _rule(VOLUMES_ALL_PROJECTS, ADMIN,
          'List the volumes of all projects (all_tenants)', 'GET',
          '/os-volumes'),
    _rule(VOLUME_ATTACHMENTS % 'index', ADMIN_OR_OWNER,
          'List the volumes attached to a server', 'GET',
          '/servers/{server_id}/os-volume_attachments'),
    _rule(VOLUME_ATTACHMENTS % 'show', ADMIN_OR_OWNER,
          'Show a volume attached to a server', 'GET',
          '/servers/{server_id}/os-volume_attachments/{volume_id}'),
    _rule(VOLUME_ATTACHMENTS % 'create', ADMIN_OR_OWNER,
          'Attach a volume to a server', 'POST',
          '/servers/{server_id}/os-volume_attachments'),
    _rule(VOLUME_ATTACHMENTS % 'delete', ADMIN_OR_OWNER,
          'Detach a volume from a server', 'DELETE',
          '/servers/{server_id}/os-volume_attachments/{volume_id}'),
]


def list_rules():
    """Every default rule (the ``oslo.policy.policies`` entry point)."""
    return BASE_RULES + API_RULES


class Policy:
    """An oslo.policy enforcer over this config, with our defaults."""

    def __init__(self, conf):
        self._enforcer = policy.Enforcer(conf)
        self._enforcer.register_defaults(list_rules())

    def authorize(self, context, rule, target=None, fatal=True):
        """True when ``context`` may; else ``PolicyNotAuthorized`` (or
        False when not ``fatal``).  ``target`` defaults to the caller's
        own project."""
        if target is None:
            target = {'project_id': context.project_id,
                      'user_id': context.user_id}
        return self._enforcer.authorize(
            rule, target, context, do_raise=fatal,
            exc=exception.PolicyNotAuthorized, action=rule)
