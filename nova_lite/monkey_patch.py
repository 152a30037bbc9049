"""The one place nova_lite chooses its concurrency backend.

Every ``nova_lite.cmd`` module imports this first, before anything that might
import ``socket``, ``threading`` or ``time``; tests import it from
``conftest.py`` for the same reason.  The backend is, in order:

1. the environment variable ``NOVA_LITE_CONCURRENCY_BACKEND``;
2. ``[DEFAULT] concurrency_backend`` in the ``--config-file`` files of the
   command line (read here with configparser, because oslo.config is not
   parsed yet and eventlet must be patched before anything imports it);
3. ``eventlet``, the design card's default.

``eventlet`` monkey-patches the standard library.  ``threading`` never
imports eventlet at all: an import hook refuses it, so the libraries that
would load it when it is installed (futurist, oslo.utils' eventletutils,
oslo.messaging) take their no-eventlet path, and ``'eventlet' not in
sys.modules`` holds in a running daemon.

eventlet 0.41 and oslo.messaging's eventlet executor announce their own
deprecation on every start; only those known warnings are silenced.
"""

import configparser
import importlib.abc
import os
import sys
import warnings

ENV_VAR = 'NOVA_LITE_CONCURRENCY_BACKEND'
EVENTLET = 'eventlet'
THREADING = 'threading'
BACKENDS = (EVENTLET, THREADING)
DEFAULT_BACKEND = EVENTLET

_KNOWN_DEPRECATIONS = (
    # eventlet itself, on import.
    r'(?s).*Eventlet is deprecated',
    # oslo.messaging's eventlet executor, on every get_rpc_server().
    r"(?s).*Using the 'executor' argument is deprecated",
    r'(?s).*Eventlet usages are deprecated',
    r'(?s).*eventletutils module is deprecated',
    r"(?s).*Using class 'Green(Future|ThreadPoolExecutor)'",
    r"(?s).*The 'oslo_service.eventlet_backdoor' module",
    # oslo.log, when it sees eventlet patching.
    r'(?s).*Eventlet support is deprecated',
    # dnspython (imported by eventlet, and by openstacksdk for [cloud]
    # services_from = api) touches cryptography's DSA on import;
    # cryptography 46+ warns about it.  Nothing here uses DSA.
    r'(?s).*DSA is deprecated',
)


class BackendError(SystemExit):
    """A bad backend name: one line and exit status 2 (bad usage)."""

    def __init__(self, message):
        super().__init__(2)
        self.message = message


def _config_files(argv):
    """The ``--config-file`` paths in ``argv``, in order."""
    paths = []
    for index, arg in enumerate(argv):
        if arg == '--config-file' and index + 1 < len(argv):
            paths.append(argv[index + 1])
        elif arg.startswith('--config-file='):
            paths.append(arg.split('=', 1)[1])
    return paths


def _from_config_files(argv):
    """The last ``[DEFAULT] concurrency_backend`` set in those files.

    A value that is not a backend is left to oslo.config, whose choices
    reject it with one line when the command parses its config.
    """
    chosen = None
    for path in _config_files(argv):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(path)
        except configparser.Error:
            continue          # oslo.config reports a broken file properly
        value = parser.defaults().get('concurrency_backend', '').strip()
        if value in BACKENDS:
            chosen = value
    return chosen


def choose(argv=None, environ=None):
    """``(backend, where it came from)``; ``BackendError`` for a bad env."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, '').strip()
    if value:
        if value not in BACKENDS:
            raise BackendError('%s must be one of %s, got %r' % (
                ENV_VAR, ', '.join(BACKENDS), value))
        return value, ENV_VAR
    from_file = _from_config_files(sys.argv[1:] if argv is None else argv)
    if from_file:
        return from_file, '[DEFAULT] concurrency_backend'
    return DEFAULT_BACKEND, 'default'


class _RefuseEventlet(importlib.abc.MetaPathFinder):
    """Under the threading backend, ``import eventlet`` fails as if eventlet
    were not installed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'eventlet' or fullname.startswith('eventlet.'):
            raise ImportError('eventlet is disabled: the concurrency backend '
                              'is threading', name=fullname)
        return None


def _patch_eventlet():
    import eventlet

    if not eventlet.patcher.is_monkey_patched('socket'):
        eventlet.monkey_patch()


def _activate(backend):
    for message in _KNOWN_DEPRECATIONS:
        warnings.filterwarnings('ignore', message=message)
    if backend == EVENTLET:
        _patch_eventlet()
    elif not any(isinstance(f, _RefuseEventlet) for f in sys.meta_path):
        if 'eventlet' in sys.modules:
            raise BackendError('the threading backend was chosen after '
                               'eventlet was imported; import '
                               'nova_lite.monkey_patch first')
        sys.meta_path.insert(0, _RefuseEventlet())
    # oslo.messaging imports oslo.service, whose components (periodic
    # tasks, looping calls) follow the backend chosen here.
    from oslo_service import backend as oslo_backend
    oslo_backend.init_backend(oslo_backend.BackendType(backend))


try:
    BACKEND, SOURCE = choose()
    _activate(BACKEND)
except BackendError as _exc:
    sys.stderr.write('nova_lite: error: %s\n' % _exc.message)
    raise
