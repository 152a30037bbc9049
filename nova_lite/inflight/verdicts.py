"""What a round's numbers mean for an operator: each sample's flags.

    unreachable   up by its heartbeat, yet the probe timed out: its RPC
                  consumer is stuck (a known oslo.messaging failure mode
                  after a broker failover) or the process is frozen or
                  gone while its heartbeat is still fresh.
    no_consumers  its ``topic.host`` queue holds ready messages and
                  nobody consumes them.
    slow          its round trip is above ``slow_factor`` times the
                  median of the round's, and above ``slow_floor_ms``
                  (so that 0.4 ms against a 0.05 ms median is not slow).

The round trips compared are ``round_trip(sample)``: a ping's total, an
inflight probe's total less the sleep it asked for (its transit plus
the greenthread overhead), so that pinged and inflight-probed services
of one cloud compare.  The median is of the samples this prober took in
the round (with several probers, a hash ring's share of the cloud).
"""

import statistics

UNREACHABLE = 'unreachable'
NO_CONSUMERS = 'no_consumers'
SLOW = 'slow'
FLAGS = (UNREACHABLE, NO_CONSUMERS, SLOW)


def round_trip(sample):
    """The sample's round trip in ms, less any sleep it asked for; None
    when it was not answered."""
    if not sample.answered or sample.total is None:
        return None
    if sample.in_service is None:
        return sample.total
    return max(0.0, sample.total - sample.in_service +
               (sample.greenthread_overhead or 0.0))


def median_round_trip(samples):
    """The median of the answered samples' round trips, or None."""
    values = [v for v in map(round_trip, samples) if v is not None]
    return statistics.median(values) if values else None


def flags_of(sample, median, slow_factor, slow_floor_ms):
    """The flags of one sample, given the round's median round trip."""
    flags = []
    if sample.up and sample.timed_out:
        flags.append(UNREACHABLE)
    if sample.queue_messages and sample.queue_consumers == 0:
        flags.append(NO_CONSUMERS)
    value = round_trip(sample)
    if (value is not None and median is not None and
            value > slow_factor * median and value > slow_floor_ms):
        flags.append(SLOW)
    return flags


def flag_round(samples, slow_factor, slow_floor_ms):
    """Set every sample's ``flags`` from the round they were taken in;
    returns the round's median round trip (ms, or None)."""
    median = median_round_trip(samples)
    for sample in samples:
        sample.flags = flags_of(sample, median, slow_factor, slow_floor_ms)
    return median
