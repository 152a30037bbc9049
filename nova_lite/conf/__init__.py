"""nova_lite configuration: one module per option group.

``register_opts(conf)`` registers every group on the ``ConfigOpts`` it is
given.  Nothing here registers on a global at import time.
"""

from nova_lite.conf import api
from nova_lite.conf import base
from nova_lite.conf import cloud
from nova_lite.conf import compute
from nova_lite.conf import conductor
from nova_lite.conf import coordination
from nova_lite.conf import database
from nova_lite.conf import fake_driver
from nova_lite.conf import inflight
from nova_lite.conf import messaging
from nova_lite.conf import metrics
from nova_lite.conf import qemu
from nova_lite.conf import scheduler
from nova_lite.conf import statsd
from nova_lite.conf import upgrade_levels

# Every group module, in the order the sample config lists them.
GROUP_MODULES = (base, messaging, database, upgrade_levels, inflight, statsd,
                 metrics, conductor, compute, fake_driver, qemu, api, scheduler,
                 coordination, cloud)


def register_opts(conf):
    """Register every nova_lite option group on ``conf``."""
    for module in GROUP_MODULES:
        module.register_opts(conf)
