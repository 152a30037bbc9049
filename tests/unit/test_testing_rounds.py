"""The exactly-once arithmetic of nova_lite.testing.rounds."""

import datetime

from nova_lite.testing import rounds


def _sample(host, prober, round_no, created, topic='sim'):
    return {'topic': topic, 'host': host, 'prober': prober,
            'round_no': round_no, 'timed_out': False, 'created': created}


def test_epoch_of_naive_aware_and_text():
    naive = datetime.datetime(2026, 1, 2, 3, 4, 5, 500000)
    assert rounds.epoch(naive) == naive.replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert rounds.epoch('2026-01-02 03:04:05.500000') == rounds.epoch(naive)
    aware = datetime.datetime(2026, 1, 2, 4, 4, 5, 500000,
                              tzinfo=datetime.timezone(
                                  datetime.timedelta(hours=1)))
    assert rounds.epoch(aware) == rounds.epoch(naive)
    assert rounds.epoch(None) is None


def test_coverage_counts_once_duplicates_and_misses():
    created = {'sim.a': 0.0, 'sim.b': 0.0, 'sim.c': 0.0,
               'sim.late': 25.0}        # registered during round 2
    samples = [
        # Round 1: exactly once, shared by p1 and p2.
        _sample('a', 'p1', 1, 11), _sample('b', 'p2', 1, 11),
        _sample('c', 'p2', 1, 11),
        # Round 2: b twice, c missing; late seen once (no miss either way).
        _sample('a', 'p1', 2, 21), _sample('b', 'p1', 2, 21),
        _sample('b', 'p2', 2, 21), _sample('late', 'p1', 2, 21),
        # Round 3: late is expected now, and missing.
        _sample('a', 'p1', 3, 31), _sample('b', 'p1', 3, 31),
        _sample('c', 'p1', 3, 31),
    ]
    one, two, three = rounds.coverage(samples, created, [1, 2, 3], 10.0)
    assert one == {'round': 1, 'expected': 3, 'once': 3, 'duplicates': {},
                   'misses': [], 'probers': {'p1': 1, 'p2': 2}}
    assert two['duplicates'] == {'sim.b': ['p1', 'p2']}
    assert two['misses'] == ['sim.c'] and two['once'] == 1
    assert two['expected'] == 3
    assert three['expected'] == 4 and three['misses'] == ['sim.late']
    assert three['once'] == 3


def test_a_round_nobody_wrote_misses_everything():
    [result] = rounds.coverage([], {'sim.a': 0.0}, [5], 2.0)
    assert result['misses'] == ['sim.a'] and result['once'] == 0


def test_max_gaps_and_last_round():
    samples = [_sample('a', 'p1', 1, 10.0), _sample('a', 'p2', 3, 17.5),
               _sample('a', 'p2', 2, 12.0), _sample('b', 'p1', 1, 10.0)]
    assert rounds.max_gaps(samples) == {'sim.a': 5.5, 'sim.b': 0.0}
    assert rounds.max_gaps(samples, {'sim.b'}) == {'sim.b': 0.0}
    assert rounds.last_round(samples, 'p2') == 3
    assert rounds.last_round(samples, 'nobody') is None


def test_skipped_rounds_from_the_log():
    log = ('... WARNING nova_lite.inflight.manager Inflight round 100 took '
           '2.50s, longer than its 2.0s interval; the next round starts at '
           'the next boundary\n'
           '... ERROR nova_lite.inflight.manager Inflight round 200 failed\n')
    # 100 overran by up to 2.5 s after it started late: 101..103 at most;
    # 200 failed.
    assert rounds.skipped_rounds(log, 2.0) == {101, 102, 103, 200}
    assert rounds.skipped_rounds('all quiet', 2.0) == set()


def test_misses_are_explained_only_by_the_skipping_members_share():
    samples = [_sample('a', 'p1', 1, 10), _sample('b', 'p2', 1, 10),
               _sample('c', 'p2', 1, 10), _sample('a', 'p1', 2, 20)]
    created = {'sim.a': 0.0, 'sim.b': 0.0, 'sim.c': 0.0}
    [two] = rounds.coverage(samples, created, [2], 10.0)
    assert two['misses'] == ['sim.b', 'sim.c']
    assert rounds.explained_misses(two, samples, {'p1': set(), 'p2': {2}})
    # Nobody said so, or the one who did probed in that round anyway.
    assert not rounds.explained_misses(two, samples, {'p2': set()})
    assert not rounds.explained_misses(two, samples, {'p1': {2}})
    # p2 skipped, but a miss outside its share is the ring's fault.
    samples.remove(_sample('c', 'p2', 1, 10))
    samples.append(_sample('c', 'p1', 1, 10))
    assert not rounds.explained_misses(two, samples, {'p2': {2}})
