"""The inflight daemons share the probing through a tooz hash ring.

Every ``nova-lite-inflight`` is a member of one tooz group (``[inflight]
group`` on ``[coordination] backend_url``), joined as a *partitioned*
group: a consistent hash ring of the members.  Each round, a daemon probes
the services whose key ``topic.host`` the ring gives it, so with stable
membership each service is probed exactly once per round by the group.

Rounds are aligned to the wall clock: round k covers [k * probe_interval,
(k + 1) * probe_interval).  A member that joins during round k takes its
share from round k + 1, or k + 2 when less than 2 x watch_interval is left
of round k, so that every member has seen the join before that round
starts: the member's ``start_round`` is one of its tooz capabilities, and
for round r every member computes the ring without the members whose
``start_round`` is after r.  So all members agree on who probes what in
round r, and a join never makes a service probed twice.

A member that leaves (``stop``) or whose lease runs out (killed with -9:
``[inflight] membership_timeout`` after its last heartbeat) is dropped by
each survivor at its next ``run_watchers`` (every ``watch_interval``, on a
thread of its own, never inside a round); its services are probed again
from the next round boundary on.  See the README, *Several inflight
daemons*, for the worst case.

Fallback: when the backend is unreachable (the join fails, or
``run_watchers`` raises), probing never stops.  Rounds use the last known
ring (never joined: this member alone, so everything); the watcher keeps
trying to (re)join; a WARNING is logged on entering the fallback, INFO on
leaving it, and ``nova_lite_inflight_coordination_fallback`` is 1 in
between.  (tooz's own heart retries a failing heartbeat by itself, every
second, with a warning of its own.)

Each member has its own tooz coordinator, not the process's lock one
(``nova_lite.coordination``): its heartbeats and watchers are its own, and
nova-lite-all's inflight manager leaves the group without touching the
API's locks.
"""

import threading
import time
import urllib.parse

from oslo_log import log as logging
from tooz import coordination as tooz_coordination
from tooz import hashring
from tooz import partitioner

from nova_lite import concurrency
from nova_lite import coordination
from nova_lite import exception
from nova_lite.metrics import registry
from nova_lite import utils

LOG = logging.getLogger(__name__)

# Seconds a graceful stop waits for the watcher thread and for the leave.
_STOP_WAIT = 5.0


def prober_name(host, pid):
    """A prober's member id: host plus process id, e.g. ``i1-4242``."""
    return '%s-%d' % (host, pid)


def service_key(service):
    """The ring's key of a service row: ``topic.host``."""
    return '%s.%s' % (service['topic'], service['host'])


def validate(conf):
    """Raise ConfigError unless the lease outlives two watcher runs."""
    opts = conf.inflight
    if opts.membership_timeout < 2 * opts.watch_interval:
        raise exception.ConfigError(
            reason='[inflight] membership_timeout (%s) must be at least 2 x '
                   'watch_interval (%s): a live member would be dropped '
                   'between two reads of the group' % (
                       opts.membership_timeout, opts.watch_interval))


def _lease_option(scheme):
    """The tooz URL option that is a group member's lease."""
    if scheme == 'file' or scheme in ('zookeeper', 'kazoo'):
        return 'timeout'
    return 'membership_timeout'


def membership_url(conf):
    """(tooz URL, lease seconds, where the lease comes from): the
    coordination URL with ``[inflight] membership_timeout`` added as tooz's
    option, unless the URL sets that option itself (then the URL wins)."""
    url = coordination.backend_url(conf)
    parts = urllib.parse.urlsplit(url)
    option = _lease_option(parts.scheme)
    query = urllib.parse.parse_qs(parts.query)
    if option in query:
        return url, query[option][-1], 'the URL (%s)' % option
    seconds = conf.inflight.membership_timeout
    extra = urllib.parse.urlencode({option: seconds})
    query_text = '%s&%s' % (parts.query, extra) if parts.query else extra
    return (urllib.parse.urlunsplit(parts._replace(query=query_text)),
            seconds, '[inflight] membership_timeout')


class _Partitioner(partitioner.Partitioner):
    """tooz's Partitioner, keeping each member's ``start_round`` too.

    Built as ``join_partitioned_group`` builds one (after
    ``join_group_create`` with the capabilities ``weight`` and, here,
    ``start_round``).  The watchers are registered before the members are
    read, so a member that joins or leaves in between is never missed (an
    add is idempotent, a leave of an unknown member is ignored).  The ring
    and the start rounds change under ``lock``, only after the I/O, so a
    round reading them never waits on the backend.
    """

    def __init__(self, coordinator, group_id, lock, on_event):
        # Not super().__init__: it reads the members before it watches.
        self.partitions = self.DEFAULT_PARTITION_NUMBER
        self.group_id = group_id
        self._coord = coordinator
        self._lock = lock
        self._on_event = on_event
        self.ring = hashring.HashRing([], partitions=self.partitions)
        self.start_rounds = {}
        self._coord.watch_join_group(self.group_id, self._on_member_join)
        self._coord.watch_leave_group(self.group_id, self._on_member_leave)
        for member in self._coord.get_members(self.group_id).get():
            self._add(member)

    def _add(self, member):
        try:
            raw = self._coord.get_member_capabilities(self.group_id,
                                                      member).get()
        except tooz_coordination.MemberNotJoined:
            return      # gone already: its leave needs no event
        raw = raw if isinstance(raw, dict) else {}
        with self._lock:
            self.ring.add_node(member, raw.get('weight', 1))
            # A member without one (another version) counts from now on.
            self.start_rounds[member] = raw.get('start_round', 0)

    def _on_member_join(self, event):
        self._add(event.member_id)
        self._on_event('join', event.member_id)

    def _on_member_leave(self, event):
        with self._lock:
            try:
                self.ring.remove_node(event.member_id)
            except hashring.UnknownNode:
                pass
            self.start_rounds.pop(event.member_id, None)
        self._on_event('leave', event.member_id)

    def members(self):
        """{member: start_round}, a copy (call under the lock)."""
        return dict(self.start_rounds)


class ProbeRing:
    """This inflight daemon's membership of the probing group.

    ``start()`` joins (or enters the fallback) and starts the watcher;
    ``share(services, round_no)`` gives the services this member probes in
    that round; ``stop()`` leaves the group.  ``member_id`` is the prober's
    name (``prober_name``).
    """

    def __init__(self, conf, member_id, clock=time.time):
        validate(conf)
        self.conf = conf
        self.member_id = member_id
        self._me = member_id.encode()
        self.group = conf.inflight.group.encode()
        self.url, self.lease, self._lease_from = membership_url(conf)
        self.interval = conf.inflight.probe_interval
        self.watch_interval = conf.inflight.watch_interval
        self._clock = clock
        self._coord = None
        self._partitioner = None
        # Guards the ring and the start rounds: held for no I/O, so the
        # round never waits on the backend (see _Partitioner).
        self._lock = threading.Lock()
        self._expelled = False
        self.fallback = False
        self.rebalances = 0
        self._stopping = concurrency.Event()
        self._watcher = None

    # -- lifecycle -----------------------------------------------------

    def start(self):
        """Join now (one try), then watch on a thread of its own."""
        LOG.info('Sharing the probing as %s in group %s on %s; membership '
                 'timeout %s s, from %s', self.member_id,
                 self.group.decode(), utils.mask_url(self.url), self.lease,
                 self._lease_from)
        self.watch_once()
        self._watcher = concurrency.spawn(self._watch_loop)

    def stop(self):
        """Leave the group (best effort, bounded) and stop the
        coordinator: the others take this member's services from their
        next round."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(_STOP_WAIT)
        leaving = concurrency.spawn(self._leave)
        if not leaving.join(_STOP_WAIT):
            LOG.warning('Could not leave group %s within %ss; its lease '
                        'runs out', self.group.decode(), _STOP_WAIT)

    def _leave(self):
        coord, part = self._coord, self._partitioner
        self._coord = self._partitioner = None
        if coord is None:
            return
        try:
            if part is not None:
                part.stop()
            coord.leave_group(self.group).get()
            LOG.info('Left probing group %s as %s', self.group.decode(),
                     self.member_id)
        except Exception as exc:  # noqa: BLE001 - its lease runs out
            LOG.warning('Could not leave probing group %s (%s)',
                        self.group.decode(), utils.mask_url(str(exc)))
        _stop_quietly(coord)

    # -- the watcher -------------------------------------------------------

    def _watch_loop(self):
        while not self._stopping.wait(self.watch_interval):
            self.watch_once()

    def watch_once(self):
        """One pass of the watcher: (re)join if needed, else run tooz's
        watchers; any failure means the fallback until one succeeds."""
        try:
            if self._partitioner is None:
                self._join()
            else:
                self._coord.run_watchers()
                if self._expelled:
                    self._rejoin()
        except Exception as exc:  # noqa: BLE001 - tooz raises many kinds
            self._enter_fallback(exc)
        else:
            self._leave_fallback()
        registry.INFLIGHT_MEMBERS.set(self.members())

    def _join(self):
        coord = tooz_coordination.get_coordinator(self.url, self._me)
        try:
            coord.start(start_heart=True)
            self._join_group(coord)
            part = _Partitioner(coord, self.group, self._lock, self._seen)
        except BaseException:
            _stop_quietly(coord)
            raise
        self._coord, self._partitioner = coord, part
        LOG.info('Joined probing group %s as %s: %d members',
                 self.group.decode(), self.member_id, self.members())

    def _join_group(self, coord):
        start_round = self.next_start_round()
        capabilities = {'weight': 1, 'start_round': start_round}
        try:
            # What join_partitioned_group does, plus start_round.
            coord.join_group_create(self.group, capabilities=capabilities)
        except tooz_coordination.MemberAlreadyExist:
            # A stale entry of ours (the file driver keeps an expired
            # member's file): replace it.
            coord.leave_group(self.group).get()
            coord.join_group_create(self.group, capabilities=capabilities)
        LOG.info('Probing group %s: %s probes its share from round %d',
                 self.group.decode(), self.member_id, start_round)

    def _rejoin(self):
        LOG.warning('Probing group %s dropped %s (its lease ran out); '
                    'joining again', self.group.decode(), self.member_id)
        try:
            self._coord.leave_group(self.group).get()
        except Exception:  # noqa: BLE001 - most likely gone already
            pass
        self._join_group(self._coord)
        self._expelled = False

    def _seen(self, kind, member):
        """A join or a leave, from tooz's watchers."""
        self.rebalances += 1
        registry.INFLIGHT_REBALANCES.inc()
        if member == self._me:
            self._expelled = kind == 'leave'
        LOG.info('Probing group %s: %s %s', self.group.decode(),
                 member.decode() if isinstance(member, bytes) else member,
                 'joined' if kind == 'join' else 'left')

    def _enter_fallback(self, exc):
        if not self.fallback:
            LOG.warning('Coordination backend %s unreachable (%s): probing '
                        'the last known share (%s) until it answers',
                        utils.mask_url(self.url),
                        utils.mask_url(_one_line(exc)),
                        'everything' if self._partitioner is None
                        else '%d members' % self.members())
        self.fallback = True
        registry.INFLIGHT_COORDINATION_FALLBACK.set(1)

    def _leave_fallback(self):
        if self.fallback:
            LOG.info('Coordination backend %s answers again: %d members',
                     utils.mask_url(self.url), self.members())
        self.fallback = False
        registry.INFLIGHT_COORDINATION_FALLBACK.set(0)

    # -- rounds ------------------------------------------------------------

    def round_of(self, when):
        """The wall-clock round that ``when`` (epoch seconds) falls in."""
        return int(when // self.interval)

    def next_start_round(self):
        """The first round a member joining now may probe: the next one,
        or the one after when the next starts within 2 x watch_interval
        (the others might not have seen the join by then)."""
        now = self._clock()
        k = self.round_of(now)
        left = (k + 1) * self.interval - now
        return k + 1 if left >= 2 * self.watch_interval else k + 2

    def members(self):
        """How many members this one knows of (1 before it joined)."""
        part = self._partitioner
        if part is None:
            return 1
        with self._lock:
            return len(part.ring.nodes)

    def share(self, services, round_no):
        """The services (rows with topic and host) this member probes in
        round ``round_no``: those the ring of that round's members gives
        it.  Never joined: all of them; stopped: none."""
        part = self._partitioner
        if self._stopping.is_set():
            mine = []
        elif part is None:
            mine = list(services)
        else:
            with self._lock:
                mine = self._share_locked(part, services, round_no)
        registry.INFLIGHT_OWNED_SERVICES.set(len(mine))
        return mine

    def _share_locked(self, part, services, round_no):
        members = part.members()
        if not members:
            return list(services)       # nobody at all: better twice
        counted = {m for m, start in members.items() if start <= round_no}
        if not counted:
            # Everyone joined for a later round (a cold start): the ones
            # that joined first probe, so a round is never left out.
            first = min(members.values())
            counted = {m for m, start in members.items() if start == first}
        if self._me not in counted:
            return []
        ignore = set(members) - counted
        return [s for s in services
                if part.belongs_to_self(service_key(s),
                                        ignore_members=ignore)]


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return '%s: %s' % (type(exc).__name__, text[0]) if text else (
        type(exc).__name__)


def _stop_quietly(coord):
    try:
        coord.stop()
    except Exception:  # noqa: BLE001 - stopping anyway
        LOG.debug('Cannot stop the probing group coordinator',
                  exc_info=True)
