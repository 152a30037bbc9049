"""Starting benchmark children on a chosen concurrency backend.

``nova_lite.monkey_patch`` picks a process's backend from the environment
variable named here, so a benchmark compares both backends in one run by
setting it per child.  The name is ``nova_lite.monkey_patch.ENV_VAR``,
repeated because importing that module would choose *this* process's backend
(and patch it with eventlet) before the benchmark has decided anything.
"""

import argparse
import contextlib
import os

ENV_VAR = 'NOVA_LITE_CONCURRENCY_BACKEND'
EVENTLET = 'eventlet'
THREADING = 'threading'
BACKENDS = (EVENTLET, THREADING)


def child_env(backend):
    """``os.environ`` with ``backend`` chosen, for subprocess's ``env``."""
    return dict(os.environ, **{ENV_VAR: backend})


@contextlib.contextmanager
def children_on(backend):
    """Children started inside the block (which inherit ``os.environ``,
    e.g. ``nova_lite.process.DaemonProcess``) run ``backend``.  This
    process keeps the backend it already has."""
    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = backend
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous


def backend_list(text):
    """argparse type: comma-separated backends, in the order given."""
    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            'expected backends from %s, comma-separated' % ', '.join(BACKENDS))
    return names
