"""The inflight report, aggregated by the database.

A day of samples at 500 services is millions of rows, so nothing here loads
them: counts come from one GROUP BY, and each percentile is the row at its
nearest rank, picked with window functions (SQLite 3.25+, PostgreSQL,
MariaDB 10.2+, MySQL 8).  The integer arithmetic is exact on every
database, and equals ``nova_lite.inflight.stats.percentile``.

Each service's ``probers``: how many samples (answered or not) each
inflight daemon took in the window; ``-`` for samples stored before
probers were recorded.

Each service's latest sample (answered or not) gives what the sweep saw
last: how it was probed (``method``), its heartbeat (``up``,
``heartbeat_age``), its ``topic.host`` queue (``queue_messages``,
``queue_unacked``, ``queue_consumers``) and its ``flags``: the state
now, not the window's.

Each host's clock offset to the reference (the database server's clock)
is NTP-style: the window's sample with the lowest bound (the lowest round
trip, plus its prober's own bound), whichever prober took it; every
service of the host shows it.
"""

import sqlalchemy as sa

from nova_lite.db import models

_S = models.InflightSample


def _literal(text):
    # Inline, not a bound parameter: PostgreSQL accepts a GROUP BY
    # expression only if it is the very one selected, binds and all.
    return sa.literal_column("'%s'" % text)


# One report row per service; a probe of no particular host is '*'.
_KEYS = (_S.topic.label('topic'),
         sa.func.coalesce(_S.host, _literal('*')).label('host'),
         sa.func.coalesce(_S.binary, _literal('-')).label('binary'))
_TIMED_OUT = _S.timed_out.is_(sa.true())
_FAILED = sa.and_(_S.error.is_not(None), _S.error != '')
_ANSWERED = sa.and_(sa.not_(_TIMED_OUT), sa.not_(_FAILED))


def _count(condition):
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _counts(cutoff):
    return (sa.select(*_KEYS,
                      _count(_ANSWERED).label('samples'),
                      _count(_TIMED_OUT).label('timeouts'),
                      _count(_FAILED).label('errors'),
                      _count(sa.and_(_ANSWERED, _S.skew.is_(sa.true())))
                      .label('skewed'),
                      sa.func.max(sa.case((_ANSWERED, _S.workers)))
                      .label('workers_max'))
            .where(_S.created_at >= cutoff)
            .group_by(*_KEYS))


def _ranked(cutoff, phases):
    """Every answered value of every phase with its rank in its service
    and phase, and how many there are."""
    keys = [key.element for key in _KEYS]
    per_phase = []
    for index, phase in enumerate(phases):
        value = getattr(_S, phase)
        per_phase.append(
            sa.select(*_KEYS,
                      sa.literal_column(str(index)).label('phase'),
                      value.label('value'),
                      sa.func.row_number().over(partition_by=keys,
                                                order_by=value)
                      .label('rank'),
                      sa.func.count().over(partition_by=keys).label('n'))
            .where(_S.created_at >= cutoff, _ANSWERED, value.is_not(None)))
    return sa.union_all(*per_phase).subquery('ranked')


def _is_rank_of(ranked, pct):
    # The nearest rank is ceil(pct * n / 100): the least rank whose
    # rank * 100 reaches pct * n.
    return sa.and_(ranked.c.rank * 100 >= ranked.c.n * pct,
                   (ranked.c.rank - 1) * 100 < ranked.c.n * pct)


def _summary_rows(cutoff, phases, percentiles):
    ranked = _ranked(cutoff, phases)
    return sa.select(ranked).where(sa.or_(
        ranked.c.rank == ranked.c.n,
        *[_is_rank_of(ranked, pct) for pct in percentiles]))


def _latest_backends(cutoff):
    keys = [key.element for key in _KEYS]
    latest = (sa.select(*_KEYS, _S.backend,
                        sa.func.row_number().over(
                            partition_by=keys, order_by=_S.id.desc())
                        .label('age'))
              .where(_S.created_at >= cutoff, _ANSWERED,
                     _S.backend.is_not(None), _S.backend != '')
              .subquery('latest'))
    return sa.select(latest).where(latest.c.age == 1)


_LATEST = ('method', 'up', 'heartbeat_age', 'queue_messages',
           'queue_unacked', 'queue_consumers', 'flags')


def _latest_states(cutoff):
    """Each service's latest sample's sweep columns."""
    keys = [key.element for key in _KEYS]
    latest = (sa.select(*_KEYS, *[getattr(_S, name) for name in _LATEST],
                        sa.func.row_number().over(
                            partition_by=keys, order_by=_S.id.desc())
                        .label('age'))
              .where(_S.created_at >= cutoff)
              .subquery('latest_states'))
    return sa.select(latest).where(latest.c.age == 1)


def _state(row):
    return {
        'method': row.method,
        'up': None if row.up is None else bool(row.up),
        'heartbeat_age': (None if row.heartbeat_age is None
                          else float(row.heartbeat_age)),
        'queue_messages': row.queue_messages,
        'queue_unacked': row.queue_unacked,
        'queue_consumers': row.queue_consumers,
        'flags': row.flags.split(',') if row.flags else [],
    }


def _clock_offsets(cutoff):
    """Each host's answered sample with the lowest clock offset bound."""
    host = _KEYS[1]
    ranked = (sa.select(host, _S.clock_offset, _S.clock_offset_bound,
                        sa.func.row_number().over(
                            partition_by=host.element,
                            order_by=[_S.clock_offset_bound, _S.id.desc()])
                        .label('tightest'))
              .where(_S.created_at >= cutoff, _ANSWERED,
                     _S.clock_offset.is_not(None),
                     _S.clock_offset_bound.is_not(None))
              .subquery('clocks'))
    return sa.select(ranked).where(ranked.c.tightest == 1)


def _probers(cutoff):
    """Samples per service and prober."""
    prober = sa.func.coalesce(_S.prober, _literal('-')).label('prober')
    return (sa.select(*_KEYS, prober, sa.func.count().label('taken'))
            .where(_S.created_at >= cutoff)
            .group_by(*_KEYS, prober))


def _key(row):
    return (row.topic, row.host, row.binary)


def inflight_report(session, cutoff, phases, percentiles):
    """One dict per (topic, host, binary) with samples since ``cutoff``,
    sorted: answered ``samples``, ``timeouts``, ``errors``, ``skewed``,
    ``workers_max``, the latest ``backend``, for each phase ``{'pNN':
    ..., 'max': ...}`` over the answered samples (None without any), and
    the host's ``clock_offset_ms`` and ``clock_offset_bound_ms`` (see
    above; None without any), ``probers`` ({prober: samples taken},
    timeouts and errors included), and the latest sample's ``method``,
    ``up``, ``heartbeat_age``, ``queue_messages``, ``queue_unacked``,
    ``queue_consumers`` (None where not known) and ``flags`` (a list)."""
    rows = {}
    for row in session.execute(_counts(cutoff)):
        rows[_key(row)] = dict(
            topic=row.topic, host=row.host, binary=row.binary,
            # MySQL's SUM is a DECIMAL.
            samples=int(row.samples), timeouts=int(row.timeouts),
            errors=int(row.errors), skewed=int(row.skewed),
            workers_max=(None if row.workers_max is None
                         else int(row.workers_max)),
            backend=None, **{phase: None for phase in phases},
            clock_offset_ms=None, clock_offset_bound_ms=None, probers={},
            **dict(dict.fromkeys(_LATEST), flags=[]))
    # Sorted by name here: a collation may order '-' anywhere.
    for row in sorted(session.execute(_probers(cutoff)),
                      key=lambda r: r.prober):
        rows[_key(row)]['probers'][row.prober] = int(row.taken)
    for row in session.execute(_latest_backends(cutoff)):
        rows[_key(row)]['backend'] = row.backend
    for row in session.execute(_latest_states(cutoff)):
        rows[_key(row)].update(_state(row))
    clocks = {row.host: row
              for row in session.execute(_clock_offsets(cutoff))}
    for row in rows.values():
        clock = clocks.get(row['host'])
        if clock is not None:
            row['clock_offset_ms'] = float(clock.clock_offset)
            row['clock_offset_bound_ms'] = float(clock.clock_offset_bound)
    names = ['p%d' % pct for pct in percentiles] + ['max']
    for row in session.execute(_summary_rows(cutoff, phases, percentiles)):
        phase = phases[row.phase]
        summary = rows[_key(row)][phase]
        if summary is None:
            summary = rows[_key(row)][phase] = dict.fromkeys(names)
        value = float(row.value)
        if row.rank == row.n:
            summary['max'] = value
        for pct in percentiles:
            if row.rank * 100 >= row.n * pct > (row.rank - 1) * 100:
                summary['p%d' % pct] = value
    return [rows[key] for key in sorted(rows)]
