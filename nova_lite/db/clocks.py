"""Clock queries, mixed into ``nova_lite.db.api.API`` (which runs them off
the hub like its own): the database server's clock, and ``host_clocks``.

The database server's clock is the one reference of a deployment: every
host's offset is its wall clock minus the server's, so that offsets that
different inflight daemons measured compose (``nova_lite.inflight.clocks``).

``reference_offset`` measures this host's offset the NTP way: a few
``SELECT <server now>`` round trips on one connection, timed in the thread
that runs them, and the one with the lowest round trip kept.  The server
read its clock somewhere inside the round trip, so the midpoint is off by
at most half of it: that is the bound.

SQLite is a file on this host, and has no clock of its own: the reference
is this host's clock, and the offset is 0 with a bound of 0.
"""

import time

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from nova_lite.db import models

CLOCK_FIELDS = ('host', 'offset_ms', 'bound_ms', 'measured_by', 'updated_at')

# The server's wall clock, in seconds since the epoch, when the statement
# runs (not when its transaction began).  MySQL/MariaDB: microseconds from
# the epoch to UTC_TIMESTAMP(6), which no session time zone can shift.
_SERVER_NOW = {
    'postgresql': 'SELECT extract(epoch FROM clock_timestamp())',
    'mysql': "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', "
             "UTC_TIMESTAMP(6)) / 1000000.0",
    'mariadb': "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', "
               "UTC_TIMESTAMP(6)) / 1000000.0",
}

_UPSERTS = {'postgresql': postgresql.insert, 'sqlite': sqlite.insert}


def round_trip_offset(sent_at, server_at, round_trip):
    """``(offset_ms, bound_ms)`` of this host's clock minus the server's,
    from one exchange: sent at ``sent_at`` (this host's wall clock), the
    server's clock read as ``server_at``, answered ``round_trip`` seconds
    (this host's monotonic clock) after sending."""
    midpoint = sent_at + round_trip / 2.0
    return (midpoint - server_at) * 1000.0, round_trip / 2.0 * 1000.0


def _upsert(dialect, rows):
    """INSERT ``rows`` into host_clocks, replacing a host's row if any."""
    table = models.HostClock.__table__
    changed = ('offset_ms', 'bound_ms', 'measured_by', 'updated_at')
    if dialect in ('mysql', 'mariadb'):
        statement = mysql.insert(table).values(rows)
        return statement.on_duplicate_key_update(
            {name: statement.inserted[name] for name in changed})
    statement = _UPSERTS[dialect](table).values(rows)
    return statement.on_conflict_do_update(
        index_elements=['host'],
        set_={name: statement.excluded[name] for name in changed})


class ClockQueries:
    """The reference clock (the database server's) and ``host_clocks``."""

    def reference_offset(self, probes=3):
        """``{'offset_ms', 'bound_ms'}``: this host's wall clock minus the
        database server's, from the lowest of ``probes`` round trips (see
        the module docstring); 0 and 0 on SQLite."""
        query = _SERVER_NOW.get(self.engine.dialect.name)
        if query is None:
            return {'offset_ms': 0.0, 'bound_ms': 0.0}
        best = None
        with self.engine.connect() as connection:
            statement = sa.text(query)
            # The first statement of a connection may pay for more than a
            # round trip (authentication, a pool's ping): not timed.
            connection.execute(statement)
            for _ in range(probes):
                sent_at = time.time()
                sent_mono = time.monotonic()
                server_at = float(connection.execute(statement).scalar())
                round_trip = time.monotonic() - sent_mono
                if best is None or round_trip < best[2]:
                    best = (sent_at, server_at, round_trip)
        offset_ms, bound_ms = round_trip_offset(*best)
        return {'offset_ms': offset_ms, 'bound_ms': bound_ms}

    def host_clocks_set(self, clocks):
        """Create or replace the ``host_clocks`` row of each of ``clocks``
        (dicts with host, offset_ms, bound_ms, measured_by) in one
        transaction."""
        now = models.utcnow()
        # Sorted: two inflight daemons writing the same hosts lock their
        # rows in the same order, and never deadlock each other.
        rows = [{'host': clock['host'], 'offset_ms': clock['offset_ms'],
                 'bound_ms': clock['bound_ms'],
                 'measured_by': clock['measured_by'], 'updated_at': now}
                for clock in sorted(clocks, key=lambda c: c['host'])]
        if not rows:
            return
        with self._session() as session, session.begin():
            session.execute(_upsert(self.engine.dialect.name, rows))

    def host_clock_get(self, host):
        """``host``'s ``host_clocks`` row as a dict, or None."""
        rows = self._rows(sa.select(models.HostClock).filter_by(host=host),
                          CLOCK_FIELDS)
        return rows[0] if rows else None

    def host_clock_get_all(self):
        """Every ``host_clocks`` row, by host."""
        return self._rows(sa.select(models.HostClock)
                          .order_by(models.HostClock.host), CLOCK_FIELDS)
