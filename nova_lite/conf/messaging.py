"""[DEFAULT] messaging options nova_lite relies on.

oslo.messaging owns ``transport_url``, ``control_exchange`` and
``rpc_response_timeout``.  nova_lite registers oslo.messaging's own option
objects (so the two never conflict) and only changes their defaults.  The
sample config lists them with nova_lite's defaults, because oslo.messaging's
full option list would drown the file.
"""

import copy

from oslo_config import cfg
from oslo_messaging import opts as messaging_opts

DEFAULT_TRANSPORT_URL = 'rabbit://guest:guest@localhost:5672/'

# oslo.messaging option name -> nova_lite default.
_DEFAULTS = {
    'transport_url': DEFAULT_TRANSPORT_URL,
    'control_exchange': 'nova_lite',
    'rpc_response_timeout': 60,
}

# Size the pool of sending connections to the executor's pool, so that as many
# concurrent callers as the server has workers never hit "Connection pool
# limit exceeded".
_RABBIT_DEFAULTS = {
    'rpc_conn_pool_size': 64,
}
EXECUTOR_THREAD_POOL_SIZE = 64

# [oslo_messaging_rabbit] for a RabbitMQ cluster (README, "Production
# messaging"): quorum queues for the servers' queues and for the reply and
# fanout ones, replicated on a majority of nodes, so a node that dies
# loses none of what they hold; heartbeats so that a silent peer is given
# up within 30 s.  ``nova-lite-dev deploy --rabbit-cluster N`` writes them.
CLUSTER_RABBIT_OPTIONS = {
    'rabbit_quorum_queue': True,
    'rabbit_transient_quorum_queue': True,
    'heartbeat_timeout_threshold': 30,
}


def _oslo_opts(group):
    # oslo.messaging names its [DEFAULT] group None.
    for name, opts in messaging_opts.list_opts():
        if (name or 'DEFAULT') == group:
            return list(opts)
    return []


def _owned_opts():
    return [opt for opt in _oslo_opts('DEFAULT') if opt.name in _DEFAULTS]


def register_opts(conf):
    conf.register_opts(_owned_opts())
    for name, value in _DEFAULTS.items():
        conf.set_default(name, value)
    conf.register_opts(_oslo_opts('DEFAULT'))
    conf.set_default('executor_thread_pool_size', EXECUTOR_THREAD_POOL_SIZE)
    rabbit = _oslo_opts('oslo_messaging_rabbit')
    conf.register_opts(rabbit, group='oslo_messaging_rabbit')
    for name, value in _RABBIT_DEFAULTS.items():
        conf.set_default(name, value, group='oslo_messaging_rabbit')


def list_opts():
    opts = []
    for opt in _owned_opts():
        opt = copy.deepcopy(opt)
        opt.default = _DEFAULTS[opt.name]
        opts.append(opt)
    return [('DEFAULT', opts)]
