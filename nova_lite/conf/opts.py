"""The oslo.config.opts entry point: every option nova_lite defines.

``oslo-config-generator --namespace nova_lite`` writes etc/nova-lite.conf
from this list, and a unit test fails when the checked-in file drifts.
"""

import nova_lite.conf


def list_opts():
    result = []
    for module in nova_lite.conf.GROUP_MODULES:
        result.extend(module.list_opts())
    return result
