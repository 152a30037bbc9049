"""[inflight] options of the inflight probe."""

from oslo_config import cfg

inflight_group = cfg.OptGroup('inflight', title='Inflight probe options')

# A service refuses an inflight probe that asks it to sleep longer than this:
# the sleep holds a greenthread, so an absurd value is a denial of service.
MAX_SLEEP_SECONDS = 60.0

_opts = [
    cfg.FloatOpt('probe_interval',
                 default=10.0, min=0.1,
                 help='Seconds between probe rounds. Rounds are aligned to '
                      'the wall clock: round k covers [k * probe_interval, '
                      '(k + 1) * probe_interval). Every registered service '
                      'is probed once per round by the inflight daemons as '
                      'a whole.'),
    cfg.FloatOpt('sleep_seconds',
                 default=1.0, min=0.0, max=MAX_SLEEP_SECONDS,
                 help='How long the probed service sleeps in a greenthread; '
                      'how late it wakes up is the greenthread overhead.'),
    cfg.FloatOpt('ping_timeout',
                 default=5.0, min=0.1,
                 help='Seconds to wait for one probe reply before counting '
                      'a timeout.'),
    cfg.IntOpt('max_concurrent_pings',
               default=100, min=1,
               help='Most probes in flight at once during a round. A round '
                    'takes about services / max_concurrent_pings * '
                    'sleep_seconds: 100 covers 500 services in a 10 s '
                    'interval with the default 1 s sleep.'),
    cfg.IntOpt('sample_retention',
               default=86400, min=60,
               help='Seconds to keep inflight samples in the database.'),
    cfg.IntOpt('membership_timeout',
               default=10, min=1,
               help='Lease, in seconds, of an inflight daemon in the tooz '
                    'group that shares the probing ([coordination] '
                    'backend_url): a daemon killed without leaving is '
                    'dropped from the group this long after its last '
                    'heartbeat. Passed to tooz as the URL option '
                    '(etcd3: membership_timeout, file: timeout) unless '
                    'the URL sets it already; then the URL wins. At least '
                    '2 x watch_interval.'),
    cfg.FloatOpt('watch_interval',
                 default=1.0, min=0.05,
                 help='Seconds between two reads of the group\'s membership '
                      '(tooz run_watchers), off the probe rounds.'),
    cfg.FloatOpt('slow_factor',
                 default=5.0, min=1.0,
                 help='A service is flagged "slow" in a round when its '
                      'round trip (less the sleep an inflight probe asks '
                      'for) is above this many times the median of the '
                      'round\'s, and above slow_floor_ms.'),
    cfg.FloatOpt('slow_floor_ms',
                 default=50.0, min=0.0,
                 help='No round trip at or below this many ms is flagged '
                      '"slow", however far above the round\'s median.'),
    cfg.StrOpt('rabbit_management_url',
               secret=True,
               help='The RabbitMQ management API of the broker probed '
                    '(e.g. http://monitor:PASSWORD@rabbit1:15672; a user '
                    'with the monitoring tag). When set, queue depths come '
                    'from it and include the unacknowledged messages: those '
                    'a consumer took and never acknowledged, as a frozen '
                    'or stuck service does with no prefetch limit (a '
                    'passive declare, used otherwise, sees only the ready '
                    'messages and the consumers).'),
    cfg.StrOpt('group',
               default='nova-lite-inflight',
               help='The tooz group the inflight daemons join to share the '
                    'probing (a consistent hash ring of topic.host keys).'),
]


def register_opts(conf):
    conf.register_group(inflight_group)
    conf.register_opts(_opts, group=inflight_group)


def list_opts():
    return [(inflight_group.name, _opts)]
