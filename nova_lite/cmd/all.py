"""nova-lite-all: every service in one process, for development (the API
too, on ``[api] host`` and ``port``)."""

from nova_lite import monkey_patch  # noqa: F401  (must be first)

import sys

from nova_lite.api import service as api_service
from nova_lite.cmd import common
from nova_lite.db import api as db_api
from nova_lite import service

# (binary, topic) of each service nova-lite-all runs, in start order.
ALL_SERVICES = (
    ('nova-lite-conductor', 'conductor'),
    ('nova-lite-scheduler', 'scheduler'),
    ('nova-lite-compute', 'compute'),
    ('nova-lite-inflight', 'inflight'),
)


def main(argv=None):
    conf = common.setup('nova-lite-all', argv)
    with common.exit_on_error('nova-lite-all'):
        db = db_api.API(conf)
        services = [service.Service(conf, binary=binary, topic=topic, db=db)
                    for binary, topic in ALL_SERVICES]
        services.append(api_service.APIService(conf, db=db))
        return common.serve(services)


if __name__ == '__main__':
    sys.exit(main())
