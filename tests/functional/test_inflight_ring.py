"""Several inflight daemons share the probing through a tooz group on a
real etcd: real daemon processes, a real broker, a dozen services.

Each service is probed exactly once per wall-clock round by the group as a
whole; a member killed with -9 has its services taken over within the
documented worst case; a member that joins takes a share from a later
round.  The samples' ``round_no`` and ``prober`` say who probed what when.

About 45-90 s per backend on a 2-core machine (2 min under heavy load):
it runs on both, since the ring's watcher and the round loop are a thread
or a greenthread of each.
"""

import json
import secrets
import signal
import subprocess
import sys
import time

import pytest

from nova_lite.testing import rounds
from nova_lite.testing import simulated
from nova_lite.testing import waiters

PROBE_INTERVAL = 2.0
MEMBERSHIP_TIMEOUT = 3      # [inflight] membership_timeout is an IntOpt
WATCH_INTERVAL = 0.5
PING_TIMEOUT = 1.0
# README, "Several inflight daemons": a member killed with -9 leaves its
# services unprobed at most about this long (its lease, the survivors' next
# watch, then at worst one round boundary missed and one round to reach
# them).
WORST_CASE = MEMBERSHIP_TIMEOUT + WATCH_INTERVAL + 2 * PROBE_INTERVAL
# Two busy cores shared with other test runs: a process that wakes late.
SLACK = 1.5
SIMULATED = 12


@pytest.fixture
def ring(factory, db, conf_fixture, etcd_url):
    """Twelve simulated services (two processes), and a function that
    starts an inflight daemon in this test's own tooz group (its ``sim``:
    the ``SimulatedServices``)."""
    group = 'nova-lite-inflight-test-%s' % secrets.token_hex(4)
    sim = simulated.SimulatedServices(
        [conf_fixture.write_config_file('sim.conf')], SIMULATED,
        conf_fixture.state_path, per_process=SIMULATED // 2)
    try:
        waiters.wait_for(
            lambda: len(db.service_get_all(binary=simulated.BINARY)) >= SIMULATED,
            timeout=60, interval=0.2, what='%d simulated services' % SIMULATED)
        options = {
            'coordination': {'backend_url': etcd_url},
            'inflight': {'probe_interval': PROBE_INTERVAL,
                         'sleep_seconds': 0.05,
                         'ping_timeout': PING_TIMEOUT,
                         'membership_timeout': MEMBERSHIP_TIMEOUT,
                         'watch_interval': WATCH_INTERVAL,
                         'group': group},
        }

        def start(host):
            daemon = factory.start_daemon('nova-lite-inflight', host,
                                          extra=options)
            daemon.prober = '%s-%d' % (host, daemon.pid)
            return daemon

        start.sim = sim
        yield start
    finally:
        sim.stop()


def _up(db, daemons):
    for daemon in daemons:
        try:
            waiters.wait_for_service(db, daemon.host, daemon.binary,
                                     timeout=60)
        except waiters.WaitTimeout:
            pytest.fail('%s never came up:\n%s' % (
                daemon.host, daemon.log_text()[-3000:]))


def _logs(daemons):
    return '\n'.join('--- %s ---\n%s' % (d.prober, d.log_text()[-2500:])
                     for d in daemons)


def _wait_rounds_done(db, live, last, daemons):
    """Wait until every prober in ``live`` has written a round after
    ``last``: its rounds up to ``last`` are all in the database (a prober's
    rounds never overlap, and it writes a round's samples at its end)."""
    try:
        waiters.wait_for(
            lambda: all((rounds.last_round(rounds.round_samples(db, last),
                                           p) or -1) > last for p in live),
            timeout=(last + 2) * PROBE_INTERVAL - time.time() + 30,
            interval=0.2, what='rounds after %d from %s' % (last, live))
    except waiters.WaitTimeout:
        pytest.fail('the probers did not get past round %d:\n%s' % (
            last, _logs(daemons)))


def _check_rounds(db, first, last, daemons, live):
    """Check rounds first .. last; the number of them that were clean.

    No round has a duplicate or a prober outside ``live``.  A round with
    misses is allowed only where a member said it skipped that round (an
    overrun or a failed round: logged and counted, README "Several inflight
    daemons"), and the misses are exactly from that member's share.
    """
    _wait_rounds_done(db, live, last, daemons)
    samples = rounds.round_samples(db, first - 5)
    checked = rounds.coverage(samples, rounds.services_created(db),
                              range(first, last + 1), PROBE_INTERVAL)
    skipped = {d.prober: rounds.skipped_rounds(d.log_text(), PROBE_INTERVAL)
               for d in daemons}
    clean = 0
    for result in checked:
        assert result['expected'] >= SIMULATED, result
        assert not result['duplicates'], (
            'round %d probed twice: %s' % (result['round'], result))
        # The group shares the work: only live members probed.
        assert set(result['probers']) <= set(live), result
        if not result['misses']:
            assert result['once'] == result['expected'], result
            clean += 1
            continue
        assert rounds.explained_misses(result, samples, skipped), (
            'round %d not exactly once: %s\n%s' % (
                result['round'], result, _logs(daemons)))
        print('round %d: a member skipped it, as its log says: %s' % (
            result['round'], result['misses']))
    return clean


def _assert_exactly_once(db, first, count, daemons, live):
    """``count`` clean rounds from ``first`` on, each service probed exactly
    once; a round a member skipped (see ``_check_rounds``) is checked, then
    one more round is awaited, at most three times."""
    last = first + count - 1
    while True:
        clean = _check_rounds(db, first, last, daemons, live)
        if clean >= count:
            return
        assert last < first + count + 2, (
            'only %d clean rounds in %d..%d' % (clean, first, last))
        last += 1


def _first_round_with(db, probers, since, daemons):
    """The first round >= ``since`` in which every one of ``probers``
    wrote samples."""
    def _find():
        per_round = {}
        for sample in rounds.round_samples(db, since):
            per_round.setdefault(sample['round_no'], set()).add(
                sample['prober'])
        return min((r for r, seen in per_round.items()
                    if set(probers) <= seen), default=None)
    try:
        return waiters.wait_for(_find, timeout=60, interval=0.2,
                                what='a round probed by %s' % probers)
    except waiters.WaitTimeout:
        pytest.fail('no round probed by all of %s:\n%s' % (
            probers, _logs(daemons)))


def test_ring_probes_each_service_once_and_takes_over(ring, db, conf_fixture):
    daemons = [ring('i%d' % n) for n in (1, 2, 3)]
    _up(db, daemons)
    probers = [d.prober for d in daemons]

    # 1. Stable membership: once all three have a share, three consecutive
    # rounds probe every service exactly once between them.
    start = _first_round_with(db, probers, 0, daemons)
    _assert_exactly_once(db, start + 1, 3, daemons, probers)

    # 2. kill -9 a member that owns services: its services are probed again
    # by the others within the worst case, then exactly once per round.
    samples = rounds.round_samples(db, start)
    victim = daemons[1]
    victim_round = rounds.last_round(samples, victim.prober)
    owned = {rounds.key(s) for s in samples
             if s['prober'] == victim.prober and
             s['round_no'] == victim_round}
    assert owned, 'the victim %s owned nothing in round %d' % (
        victim.prober, victim_round)
    victim.signal(signal.SIGKILL)
    killed_at = time.time()
    victim.wait(timeout=10)
    survivors = [d.prober for d in daemons if d is not victim]

    def _taken_over():
        taken = {}
        for sample in rounds.round_samples(db, victim_round):
            name = rounds.key(sample)
            if (name in owned and sample['prober'] in survivors and
                    sample['created'] >= killed_at and name not in taken):
                taken[name] = sample
        return taken if set(taken) == owned else None
    try:
        taken = waiters.wait_for(_taken_over, timeout=WORST_CASE + 30,
                                 interval=0.2, what='the takeover')
    except waiters.WaitTimeout:
        pytest.fail('the survivors never probed all of %s:\n%s' % (
            sorted(owned), _logs(daemons)))
    took = max(s['created'] for s in taken.values()) - killed_at
    assert took <= WORST_CASE + SLACK, (
        'services unprobed %.1f s after the kill; worst case %.1f s' % (
            took, WORST_CASE))
    after = max(s['round_no'] for s in taken.values())
    print('killed %s (round %d, %d services): taken over in %.1f s (worst '
          'case %.1f s), by round %d' % (victim.prober, victim_round,
                                         len(owned), took, WORST_CASE, after))
    _assert_exactly_once(db, after + 1, 3, daemons, survivors)

    # 3. A fourth member: it takes a share from a later round than the
    # one it started in, and rounds are exactly once again.
    spawned_round = int(time.time() // PROBE_INTERVAL)
    fourth = ring('i4')
    daemons.append(fourth)
    _up(db, [fourth])
    joined = _first_round_with(db, [fourth.prober], spawned_round, daemons)
    assert joined > spawned_round
    print('%s started in round %d, first probed in round %d' % (
        fourth.prober, spawned_round, joined))
    live = survivors + [fourth.prober]
    # While it joins the others leave it out (its start_round is later),
    # and from its first round on the four agree on who probes what: every
    # round from its start to two after its first is exactly once (or
    # skipped by a member that says so, and then only its share missing).
    window = (spawned_round + 1, joined + 2)
    clean = _check_rounds(db, window[0], window[1], daemons, live)
    assert clean >= 1, 'no clean round in %d..%d' % window

    # 4. The report says who probed each service.
    cli = subprocess.run(
        [sys.executable, '-m', 'nova_lite.cmd.manage', '--config-file',
         conf_fixture.write_config_file('cli.conf'), 'inflight', 'report',
         '--json'], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    report = {(r['topic'], r['host']): r for r in json.loads(cli.stdout)}
    everyone = set(probers) | {fourth.prober}
    sim = ring.sim
    for topic, host in (sim.services[0], sim.services[-1]):
        row = report[(topic, host)]
        assert row['probers'], row
        assert set(row['probers']) <= everyone, row
        assert sum(row['probers'].values()) == row['samples'], row
    # Over the run every member probed some simulated service.
    seen = set()
    for name in sim.services:
        seen |= set(report[name]['probers'])
    assert everyone <= seen, (everyone, seen)
