"""Read-only SQLAlchemy engines on Nova's databases, and Nova's cell URL
templates.

nova_lite never writes to a Nova database.  Besides issuing nothing but
SELECTs, each engine makes the database refuse writes:

- SQLite: the file is opened with ``mode=ro`` (a URI filename) and
  ``PRAGMA query_only``; a missing file is an error, never a new database;
- PostgreSQL: ``default_transaction_read_only = on`` for the session;
- MySQL/MariaDB: ``SET SESSION TRANSACTION READ ONLY`` on connect.
"""

import os
from urllib import parse as urlparse

import sqlalchemy as sa


def engine(url):
    """A read-only engine on ``url`` (a SQLAlchemy URL string)."""
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == 'sqlite':
        readonly = sa.create_engine(_sqlite_ro_url(parsed),
                                    poolclass=sa.pool.NullPool)
        sa.event.listen(readonly, 'connect', _sqlite_query_only)
        return readonly
    if backend == 'postgresql':
        # libpq's options, honoured by psycopg and psycopg2 alike.
        return sa.create_engine(
            parsed, pool_pre_ping=True, pool_recycle=3600,
            connect_args={'options': '-c default_transaction_read_only=on'})
    readonly = sa.create_engine(parsed, pool_pre_ping=True,
                                pool_recycle=3600)
    if readonly.dialect.name in ('mysql', 'mariadb'):
        sa.event.listen(readonly, 'connect', _mysql_read_only)
    return readonly


def _sqlite_ro_url(parsed):
    path = parsed.database
    if not path or path == ':memory:' or path.startswith('file:'):
        return parsed
    uri = 'file:%s' % urlparse.quote(os.path.abspath(path))
    return parsed.set(database=uri, query=dict(parsed.query, mode='ro',
                                                uri='true'))


def _sqlite_query_only(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA query_only = ON')
    # Nova's services write their heartbeats into the same file.
    cursor.execute('PRAGMA busy_timeout = 10000')
    cursor.close()


def _mysql_read_only(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute('SET SESSION TRANSACTION READ ONLY')
    cursor.close()


def _parse_netloc(netloc):
    """user:pass@host:port -> the template keys Nova derives from it."""
    userpass, _, hostport = netloc.rpartition('@')
    these = {'username': userpass, 'password': None, 'hostname': hostport,
             'port': None}
    if ':' in userpass:
        these['username'], these['password'] = userpass.split(':', 1)
    if hostport.startswith('['):
        end = hostport.find(']')
        these['hostname'], these['port'] = hostport[1:end], hostport[end + 1:]
    elif ':' in hostport:
        these['hostname'], these['port'] = hostport.split(':', 1)
    return these


def format_cell_url(template, default):
    """A cell mapping's ``database_connection``, with Nova's template
    variables (``{scheme}``, ``{username}``, ``{password}``, ``{hostname}``,
    ``{port}``, ``{path}``, ``{query}``, ``{fragment}``, and ``{username1}``
    ... for multi-host URLs) filled from ``default``, as Nova's
    ``CellMapping.format_db_url`` fills them from Nova's [database]
    connection.  A URL without ``{`` is returned as it is, and so is one
    that cannot be filled (as Nova does; connecting to it then fails with
    a clear error)."""
    if '{' not in template:
        return template
    try:
        return _format(template, default)
    except (KeyError, ValueError, IndexError):
        return template


def _format(template, default):
    url = urlparse.urlparse(default)
    subs = {
        'username': url.username, 'password': url.password,
        'hostname': url.hostname, 'port': url.port, 'scheme': url.scheme,
        'query': url.query, 'fragment': url.fragment,
        'path': url.path.lstrip('/'),
    }
    if ',' in url.netloc:
        for index, netloc in enumerate(url.netloc.split(','), start=1):
            for key, value in _parse_netloc(netloc).items():
                subs['%s%i' % (key, index)] = value
    return template.format(**subs)
