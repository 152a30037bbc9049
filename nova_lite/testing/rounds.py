"""Who probed what, round by round: the exactly-once checks on the
samples of several inflight daemons sharing the probing (the ring's
functional test and ``benchmarks/inflight_bench.py --probers``).

A sample of a ring round carries ``round_no`` (wall-clock round k covers
[k x interval, (k+1) x interval)) and ``prober`` (``HOST-PID``).  With
stable membership every service registered before round k starts has
exactly one sample of round k.
"""

import collections
import datetime
import math
import re

import sqlalchemy as sa

_EPOCH = datetime.datetime(1970, 1, 1)


def epoch(value):
    """A naive UTC datetime from the database as seconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return (value - _EPOCH).total_seconds()


def key(row):
    """A service's ring key: ``topic.host``."""
    return '%s.%s' % (row['topic'], row['host'])


def round_samples(db, min_round=None):
    """Ring samples (``round_no`` set), oldest first, as dicts with
    topic, host, prober, round_no, timed_out and created (epoch s)."""
    query = ('SELECT topic, host, prober, round_no, timed_out, created_at '
             'FROM inflight_samples WHERE round_no IS NOT NULL')
    params = {}
    if min_round is not None:
        query += ' AND round_no >= :min_round'
        params['min_round'] = min_round
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text(query + ' ORDER BY id'), params)
        return [{'topic': r.topic, 'host': r.host, 'prober': r.prober,
                 'round_no': int(r.round_no), 'timed_out': bool(r.timed_out),
                 'created': epoch(r.created_at)} for r in rows]


def services_created(db):
    """{ring key: registration time (epoch s)} of every service row."""
    return {key(s): epoch(s['created_at']) for s in db.service_get_all()}


def by_round(samples):
    """{round_no: {ring key: [prober, ...]}}."""
    rounds = collections.defaultdict(lambda: collections.defaultdict(list))
    for sample in samples:
        rounds[sample['round_no']][key(sample)].append(sample['prober'])
    return rounds


def last_round(samples, prober):
    """The highest round ``prober`` wrote samples for, or None."""
    return max((s['round_no'] for s in samples if s['prober'] == prober),
               default=None)


def coverage(samples, created, rounds, interval):
    """Per round in ``rounds``: ``{'round', 'expected', 'once',
    'duplicates': {key: [probers]}, 'misses': [keys], 'probers':
    {prober: samples}}``.

    ``created`` is ``services_created``.  A service is expected in round k
    if it was registered before k started; one registered during round k
    may have been seen or not by the member that owns it, so it is no miss
    then, but two samples of it are still a duplicate.
    """
    probed = by_round(samples)
    result = []
    for round_no in rounds:
        start = round_no * interval
        expected = {k for k, t in created.items() if t < start}
        seen = probed.get(round_no, {})
        duplicates = {k: sorted(p) for k, p in seen.items() if len(p) > 1}
        misses = sorted(expected - set(seen))
        counts = collections.Counter(p for ps in seen.values() for p in ps)
        result.append({
            'round': round_no, 'expected': len(expected),
            'once': sum(1 for k in expected if len(seen.get(k, ())) == 1),
            'duplicates': duplicates, 'misses': misses,
            'probers': dict(counts)})
    return result


def max_gaps(samples, keys=None):
    """{ring key: the longest time (s) between two consecutive samples of
    that service}, over ``keys`` (default: every key sampled)."""
    times = collections.defaultdict(list)
    for sample in samples:
        times[key(sample)].append(sample['created'])
    gaps = {}
    for name, stamps in times.items():
        if keys is not None and name not in keys:
            continue
        stamps.sort()
        gaps[name] = max((b - a for a, b in zip(stamps, stamps[1:])),
                         default=0.0)
    return gaps


_OVERRUN = re.compile(r'Inflight round (\d+) took ([0-9.]+)s')
_FAILED = re.compile(r'Inflight round (\d+) failed')


def skipped_rounds(log_text, interval):
    """The rounds an inflight daemon's log says it did not probe: a failed
    round, and the boundaries after a round that overran (the daemon starts
    the next round at the next boundary; an upper bound, since the log
    gives the round's length, not how late it started)."""
    skipped = set()
    for match in _FAILED.finditer(log_text):
        skipped.add(int(match.group(1)))
    for match in _OVERRUN.finditer(log_text):
        round_no, took = int(match.group(1)), float(match.group(2))
        skipped.update(range(round_no + 1,
                             round_no + 2 + math.ceil(took / interval)))
    return skipped


def explained_misses(result, samples, skipped):
    """True when every miss of the round ``result`` (from ``coverage``)
    belongs to a prober that said it skipped that round (``skipped``:
    {prober: skipped_rounds(...)}): the service was in that prober's share
    in the prober's last round before it.  A ring that lost a service, or
    gave it to nobody, is not explained."""
    round_no = result['round']
    shares = {}
    for prober, rounds in skipped.items():
        if round_no not in rounds or prober in result['probers']:
            continue
        before = [s for s in samples
                  if s['prober'] == prober and s['round_no'] < round_no]
        if before:
            last = max(s['round_no'] for s in before)
            shares[prober] = {key(s) for s in before if s['round_no'] == last}
    return bool(shares) and set(result['misses']) <= set().union(
        *shares.values())
