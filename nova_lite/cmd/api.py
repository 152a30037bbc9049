"""nova-lite-api: the Compute API v2.1 subset, over HTTP."""

from nova_lite import monkey_patch  # noqa: F401  (must be first)

import sys

from nova_lite.api import service as api_service
from nova_lite.cmd import common

BINARY = api_service.BINARY


def main(argv=None):
    conf = common.setup(BINARY, argv)
    with common.exit_on_error(BINARY):
        svc = api_service.APIService(conf)
        return common.serve([svc])


if __name__ == '__main__':
    sys.exit(main())
