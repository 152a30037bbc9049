"""The inflight daemon's Prometheus series."""

import datetime

import prometheus_client

from nova_lite.cloud import base as cloud_base
from nova_lite.inflight import probe
from nova_lite.inflight import sinks


def _value(name, **labels):
    return prometheus_client.REGISTRY.get_sample_value(name, labels)


def _row(topic, host, seen_ago=0):
    """A service source's row, 60 s service_down_time."""
    return cloud_base.service(
        id=1, topic=topic, host=host, binary='b', disabled=False,
        status='up' if seen_ago < 60 else 'down', heartbeat_age=seen_ago,
        updated_at=cloud_base.utcnow() - datetime.timedelta(
            seconds=seen_ago))


def test_round_sets_the_series(conf):
    sink = sinks.PrometheusSink(conf)
    before = _value('nova_lite_inflight_seconds_count', topic='pt',
                    phase='total') or 0
    timeouts = _value('nova_lite_inflight_timeouts_total', topic='pt',
                      host='b') or 0
    answered = probe.Sample(topic='pt', host='a', to_service=2.0,
                            in_service=1000.0, greenthread_overhead=1.0,
                            from_service=3.0, total=1005.0)
    lost = probe.Sample(topic='pt', host='b', timed_out=True)
    sink.emit([answered, lost], {'pt': {'messages': 4, 'consumers': 2}},
              [_row('pt', 'a'), _row('pt', 'b', seen_ago=3600)])
    assert _value('nova_lite_inflight_seconds_count', topic='pt',
                  phase='total') == before + 1
    assert _value('nova_lite_inflight_last_seconds', topic='pt', host='a',
                  phase='in_service') == 1.0
    assert _value('nova_lite_inflight_timeouts_total', topic='pt',
                  host='b') == timeouts + 1
    assert _value('nova_lite_service_reachable', topic='pt', host='a') == 1
    assert _value('nova_lite_service_reachable', topic='pt', host='b') == 0
    assert _value('nova_lite_service_up', topic='pt', host='a') == 1
    assert _value('nova_lite_service_up', topic='pt', host='b') == 0
    assert _value('nova_lite_queue_messages', queue='pt') == 4
    assert _value('nova_lite_queue_consumers', queue='pt') == 2
    assert _value('nova_lite_service_heartbeat_age_seconds', topic='pt',
                  host='b') >= 3600
    assert _value('nova_lite_service_flag', topic='pt', host='b',
                  flag='unreachable') == 0

    # b leaves the services table: its series go with it.
    sink.emit([answered], {}, [_row('pt', 'a')])
    assert _value('nova_lite_service_up', topic='pt', host='b') is None
    assert _value('nova_lite_service_reachable', topic='pt',
                  host='b') is None
    assert _value('nova_lite_service_heartbeat_age_seconds', topic='pt',
                  host='b') is None
    assert _value('nova_lite_service_flag', topic='pt', host='b',
                  flag='unreachable') is None
    assert _value('nova_lite_service_up', topic='pt', host='a') == 1
    # And a queue no longer read: pt's.
    assert _value('nova_lite_queue_messages', queue='pt') is None


def test_a_stuck_consumer_is_up_unreachable_and_flagged(conf):
    """Up by heartbeat, timed out by RPC: reachable 0 while up 1, the
    flag 1; its queue holds the probe with nobody consuming."""
    sink = sinks.PrometheusSink(conf)
    stuck = probe.Sample(topic='pu', host='c.example.org', timed_out=True,
                         method=probe.PING, up=True, heartbeat_age=2.0,
                         queue_messages=3, queue_consumers=0,
                         flags=['unreachable', 'no_consumers'])
    sink.emit([stuck], {'pu.c.example.org': {'messages': 3, 'consumers': 0}},
              [_row('pu', 'c.example.org', seen_ago=2)])
    labels = dict(topic='pu', host='c.example.org')
    assert _value('nova_lite_service_reachable', **labels) == 0
    assert _value('nova_lite_service_up', **labels) == 1
    assert _value('nova_lite_service_flag', flag='unreachable',
                  **labels) == 1
    assert _value('nova_lite_service_flag', flag='no_consumers',
                  **labels) == 1
    assert _value('nova_lite_service_flag', flag='slow', **labels) == 0
    assert _value('nova_lite_queue_messages', queue='pu.c.example.org') == 3

    # It answers again: the flags come down.
    sink.emit([probe.Sample(topic='pu', host='c.example.org', total=3.0,
                            method=probe.PING, up=True)], {},
              [_row('pu', 'c.example.org')])
    assert _value('nova_lite_service_reachable', **labels) == 1
    assert _value('nova_lite_service_flag', flag='unreachable',
                  **labels) == 0


def test_per_service_series_can_be_turned_off(conf):
    conf.set_override('per_service_series', False, group='metrics')
    sink = sinks.PrometheusSink(conf)
    sample = probe.Sample(topic='pq', host='a', to_service=2.0,
                          in_service=1000.0, greenthread_overhead=1.0,
                          from_service=3.0, total=1005.0)
    sink.emit([sample], {}, [_row('pq', 'a')])
    assert _value('nova_lite_inflight_last_seconds', topic='pq', host='a',
                  phase='total') is None
    assert _value('nova_lite_inflight_seconds_count', topic='pq',
                  phase='total') >= 1
