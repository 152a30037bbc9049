"""[coordination] options: the tooz backend that locks an instance and the
resources related to it (its volumes) while a workflow runs."""

from oslo_config import cfg

coordination_group = cfg.OptGroup(
    'coordination', title='Coordination (tooz)',
    help='Locks on instances and their volumes, held by the conductor for '
         'the whole of a workflow and tried by nova-lite-api before it '
         'changes a volume.')

_opts = [
    cfg.StrOpt('backend_url', default='',
               help='tooz backend URL.  Empty: file:// under '
                    '$state_path/locks, for daemons on one host (a lock '
                    'dies with its process).  Across hosts: '
                    'etcd3+http://HOST:2379 (a lock is an etcd lease that '
                    'its holder keeps alive; it ends lock_timeout seconds '
                    'after the holder dies: add ?lock_timeout=N to the '
                    'URL, default 30), redis:// or zookeeper://.',
               secret=True),
    cfg.FloatOpt('acquire_timeout', default=30.0, min=0.0,
                 help='How long a workflow waits for the locks of its '
                      'instance and volumes (another workflow, a volume '
                      'being attached, or a dead holder whose lease has '
                      'not run out yet) before it gives up.'),
]


def register_opts(conf):
    conf.register_group(coordination_group)
    conf.register_opts(_opts, group=coordination_group)


def list_opts():
    return [(coordination_group.name, _opts)]
