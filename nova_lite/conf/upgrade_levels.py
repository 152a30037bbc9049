"""[upgrade_levels] options: RPC version caps for rolling upgrades."""

from oslo_config import cfg

from nova_lite.conf import base

upgrade_group = cfg.OptGroup(
    'upgrade_levels', title='RPC version caps',
    help='Cap the RPC version a client sends to each topic during a rolling '
         'upgrade. A value is a version such as 1.0, or "auto" for the '
         'lowest version reported by the live services of that topic.')

_opts = [
    cfg.StrOpt(topic, mutable=True,
               help='Version cap for the %s RPC API: a version such as 1.0, '
                    'or auto. Unset means no cap.' % topic)
    for topic in base.TOPICS
]


def register_opts(conf):
    conf.register_group(upgrade_group)
    conf.register_opts(_opts, group=upgrade_group)


def list_opts():
    return [(upgrade_group.name, _opts)]
