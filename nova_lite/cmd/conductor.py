"""nova-lite-conductor: the conductor daemon."""

from nova_lite import monkey_patch  # noqa: F401  (must be first)

import sys

from nova_lite.cmd import common
from nova_lite import service

BINARY = 'nova-lite-conductor'


def main(argv=None):
    conf = common.setup(BINARY, argv)
    with common.exit_on_error(BINARY):
        svc = service.Service(conf, binary=BINARY, topic='conductor')
        return common.serve([svc])


if __name__ == '__main__':
    sys.exit(main())
