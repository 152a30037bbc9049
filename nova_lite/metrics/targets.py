"""Prometheus service discovery from the services table (file_sd).

``nova-lite-manage metrics targets`` and the dev deploy write what
``file_sd_groups`` returns: one group per metrics address, labelled with
the ``topic``, ``host`` and ``binary`` of the services behind it::

    [{"targets": ["127.0.0.1:40123"],
      "labels": {"topic": "compute", "host": "cpu1",
                 "binary": "nova-lite-compute"}}]

nova-lite-all serves all of its services on one listener: its address is
listed once, and each label joins the distinct values of its services,
sorted, with commas (``topic="compute,conductor,inflight,scheduler"``).
A daemon's own RPC series carry their own ``topic`` label; with
``honor_labels: true`` Prometheus keeps it, and the target's labels only
fill in what a series lacks (``host``, ``binary``, or ``topic`` on the
process-wide series such as ``nova_lite_hub_lag_seconds``).

A listener bound to a wildcard address (``[metrics] bind_host =
0.0.0.0`` or ``::``) cannot be scraped at that address: the service's
``host`` takes its place.

Services that are down stay listed: Prometheus then shows ``up == 0`` for
them, which is what an alert wants to see.
"""

import json
import os
import tempfile

from nova_lite import exception

LABELS = ('topic', 'host', 'binary')
_WILDCARDS = ('0.0.0.0', '::', '[::]', '')


def scrape_address(service):
    """Where a scraper reaches ``service``'s listener, or None."""
    address = service.get('metrics_address')
    if not address:
        return None
    host, sep, port = address.rpartition(':')
    if sep and host in _WILDCARDS:
        host = service['host']
        return '%s:%s' % ('[%s]' % host if ':' in host else host, port)
    return address


def endpoints(services):
    """``{address: [service, ...]}`` of every service with a listener,
    in the order of ``services``."""
    found = {}
    for svc in services:
        address = scrape_address(svc)
        if address is not None:
            found.setdefault(address, []).append(svc)
    return found


def _join(values):
    return ','.join(sorted({str(value) for value in values}))


def file_sd_groups(services):
    """The file_sd JSON value (a list) for ``services`` (rows of the
    services table), one group per address, sorted by host and address."""
    groups = []
    for address, behind in endpoints(services).items():
        groups.append({'targets': [address], 'labels': {
            label: _join(svc[label] for svc in behind) for label in LABELS}})
    groups.sort(key=lambda g: (g['labels']['host'], g['targets'][0]))
    return groups


def to_json(groups):
    return json.dumps(groups, indent=2) + '\n'


def write_atomically(path, text):
    """Replace ``path`` with ``text`` in one rename.

    Prometheus re-reads a file_sd file whenever it changes: it must never
    see half of one.  The temporary file sits in the same directory (a
    rename does not cross file systems) and its name does not end in
    ``.json``, so a ``*.json`` file_sd pattern never matches it.
    Raises ``TargetsWriteError``.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp',
                                   dir=directory)
    except OSError as exc:
        raise exception.TargetsWriteError(path=path,
                                          reason=exc.strerror or exc)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            # mkstemp's 0600 would hide it from a Prometheus running as
            # another user.
            os.fchmod(handle.fileno(), 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise exception.TargetsWriteError(path=path,
                                          reason=exc.strerror or exc)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def scrape_config(targets_file, rule_files=(), interval=15.0,
                  job='nova_lite'):
    """A Prometheus configuration (a dict; JSON is YAML) that scrapes the
    daemons of ``targets_file`` every ``interval`` seconds, as
    etc/prometheus/prometheus.yml does, and evaluates ``rule_files``."""
    every = '%gs' % interval
    return {
        'global': {'scrape_interval': every,
                   'scrape_timeout': '%gs' % min(interval, 10.0),
                   'evaluation_interval': every},
        'rule_files': list(rule_files),
        'scrape_configs': [{
            'job_name': job,
            # The daemons' series carry their own topic (and, on the
            # inflight daemon's, host) labels: keep them, rather than let
            # the target's labels rename them exported_topic/exported_host.
            'honor_labels': True,
            'file_sd_configs': [{'files': [targets_file],
                                 'refresh_interval': every}],
        }],
    }


def write_file_sd(path, services):
    """Write ``services``' file_sd groups to ``path``; returns them."""
    groups = file_sd_groups(services)
    write_atomically(path, to_json(groups))
    return groups
