"""[api] options of nova-lite-api."""

from oslo_config import cfg

api_group = cfg.OptGroup('api', title='Compute API options')

_opts = [
    cfg.HostAddressOpt('host', default='0.0.0.0',
                       help='Address nova-lite-api listens on.'),
    cfg.PortOpt('port', default=8774,
                help='TCP port nova-lite-api listens on (Nova\'s 8774).'),
    cfg.IntOpt('workers', default=64, min=1,
               help='HTTP requests served at once: the size of the green '
                    'pool of eventlet\'s WSGI server, or of the native '
                    'thread pool of the threaded server under the '
                    'threading backend. More wait for a free worker.'),
    cfg.StrOpt('auth_strategy', default='keystone',
               choices=(('noauth2', 'Development only: "X-Auth-Token: '
                         'user:project"; the user "admin" has the admin '
                         'role. No password is checked.'),
                        ('keystone', 'keystonemiddleware\'s auth_token in '
                         'front of the API; configure it in '
                         '[keystone_authtoken].')),
               help='How requests are authenticated.'),
    cfg.IntOpt('max_request_body_size', default=114688, min=1,
               help='Largest request body in bytes; a larger one gets 413 '
                    'before it is read.'),
]


def register_opts(conf):
    conf.register_group(api_group)
    conf.register_opts(_opts, group=api_group)


def list_opts():
    return [(api_group.name, _opts)]
