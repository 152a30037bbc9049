"""Parsing nova_lite configuration for daemons, tools and client programs.

    from nova_lite import config, rpc, context
    conf = config.parse_args(['--config-file', path])
    rpc.init(conf)

oslo.config checks option values only when they are read.  ``parse_args``
reads every option once, so a bad value fails at start-up with one line
instead of later inside a heartbeat.
"""

import configparser
import sys

from oslo_config import cfg
from oslo_log import log as logging

from nova_lite import conf as nova_conf
from nova_lite.conf import cloud as cloud_conf
from nova_lite import exception
from nova_lite import version

PROJECT = 'nova-lite'

# Bad usage of a command (its arguments, its config) exits with 2, like
# argparse; 1 is left for "ran, but the outcome was bad".
EXIT_USAGE = 2


def register_opts(conf):
    """Register nova_lite's and oslo.log's options on ``conf`` (idempotent)."""
    nova_conf.register_opts(conf)
    try:
        logging.register_options(conf)
    except cfg.ArgsAlreadyParsedError:
        pass  # already registered before an earlier parse of this conf


def parse_args(argv, conf=None, description=None, default_config_files=None):
    """Parse ``argv`` (without the program name) into ``conf``.

    ``conf`` defaults to the global ``cfg.CONF``: oslo.messaging's dispatcher
    reads some of its own options from there, so daemons must use it.
    ``default_config_files`` None searches oslo.config's usual places
    (~/.nova-lite/, /etc/nova-lite/); tests pass [].
    Raises ``exception.ConfigError`` for a missing file or a bad value.
    """
    conf = cfg.CONF if conf is None else conf
    register_opts(conf)
    try:
        conf(argv, project=PROJECT, version=version.version_string,
             description=description,
             default_config_files=default_config_files)
        _validate(conf)
        cloud_conf.apply(conf)
    except cfg.ConfigFilesNotFoundError as exc:
        raise exception.ConfigError(
            reason='config file not found: %s' % ', '.join(exc.config_files))
    except (cfg.Error, ValueError) as exc:
        raise exception.ConfigError(reason=str(exc))
    return conf


def parse_args_or_exit(argv, prog, conf=None, description=None):
    """``parse_args`` for a command's main(): a bad config exits 2."""
    try:
        return parse_args(argv, conf=conf, description=description)
    except exception.ConfigError as exc:
        print('%s: error: %s' % (prog, exc), file=sys.stderr)
        sys.exit(EXIT_USAGE)


def setup_logging(conf):
    logging.setup(conf, 'nova_lite')


def _validate(conf):
    """Read every registered option so bad values fail now."""
    for name in list(conf):
        value = getattr(conf, name)
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            for opt_name in list(value):
                getattr(value, opt_name)


def write_config_file(path, values):
    """Write ``{group: {option: value}}`` as an oslo.config INI file."""
    parser = configparser.ConfigParser(interpolation=None)
    for group, options in values.items():
        if group != 'DEFAULT':
            parser.add_section(group)
        for key, value in options.items():
            parser.set(group, key, str(value))
    with open(path, 'w') as handle:
        parser.write(handle)
    return path
