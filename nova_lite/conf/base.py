"""[DEFAULT] options of every nova_lite service."""

import os
import socket

from oslo_config import cfg

# The topics a manager can be configured for; each gets a <topic>_manager
# option so a deployment (or a test) can swap in its own manager class.
TOPICS = ('conductor', 'scheduler', 'compute', 'inflight', 'api')

_default_opts = [
    cfg.StrOpt('host',
               default=socket.gethostname(),
               sample_default='<hostname>',
               help='Name of this node. Used as the server of the topic.host '
                    'queue and as the host column of the services table. '
                    'Must be unique per binary.'),
    cfg.StrOpt('state_path',
               default=os.path.join(os.getcwd(), 'state'),
               sample_default='$cwd/state',
               help='Directory for state such as the default SQLite '
                    'database.'),
    cfg.IntOpt('report_interval',
               default=10, min=1,
               help='Seconds between heartbeats written to the services '
                    'table.'),
    cfg.IntOpt('service_down_time',
               default=60, min=1,
               help='A service whose last heartbeat is older than this many '
                    'seconds is reported as down. Should be well above '
                    'report_interval.'),
    cfg.IntOpt('periodic_interval',
               default=60, min=1,
               help='Seconds between runs of a manager\'s periodic tasks.'),
    cfg.IntOpt('periodic_fuzzy_delay',
               default=60, min=0,
               help='Upper bound, in seconds, of a random delay before the '
                    'first periodic task run, so that services started '
                    'together do not all run their tasks at once.'),
    cfg.IntOpt('graceful_shutdown_timeout',
               default=30, min=0,
               help='On SIGTERM or SIGINT, the service stops consuming and '
                    'exits within this many seconds, even when an RPC '
                    'handler or a periodic task is stuck. 0 exits without '
                    'waiting for them.'),
    cfg.StrOpt('concurrency_backend',
               default='eventlet', choices=('eventlet', 'threading'),
               help='eventlet: greenthreads on a monkey-patched standard '
                    'library. threading: native threads; eventlet is never '
                    'imported. The environment variable '
                    'NOVA_LITE_CONCURRENCY_BACKEND wins over this option. It '
                    'is read from the --config-file files before anything '
                    'else is imported, so it cannot come from a config '
                    'directory.'),
    cfg.IntOpt('resize_confirm_window',
               default=0, min=0,
               help='Seconds after which a resize that waits in '
                    'VERIFY_RESIZE is confirmed automatically by a '
                    'conductor. 0 never confirms automatically.'),
    cfg.BoolOpt('allow_resize_to_same_host',
                default=False,
                help='Let the scheduler choose the host an instance is on '
                     'as the target of its resize (with room for both '
                     'flavors there).'),
]

_manager_opts = [
    cfg.StrOpt('%s_manager' % topic,
               help='Manager class for the %s topic, as "module:Class". '
                    'Unset means the built-in manager listed in '
                    'nova_lite.service.SERVICE_MANAGERS.' % topic)
    for topic in TOPICS
]


def register_opts(conf):
    conf.register_opts(_default_opts + _manager_opts)


def list_opts():
    return [('DEFAULT', _default_opts + _manager_opts)]
