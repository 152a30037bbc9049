"""nova-lite-ping: target parsing, usage errors (exit 2), output format."""

import pytest

from nova_lite.cmd import ping
from nova_lite.inflight import probe


@pytest.mark.parametrize('text,expected', [
    ('compute', ('compute', None)),
    ('compute@node-1.example', ('compute', 'node-1.example')),
])
def test_parse_target(text, expected):
    assert ping.parse_target(text) == expected


@pytest.mark.parametrize('text', ['compute@', '@host', 'com pute',
                                  'compute@a b', ''])
def test_parse_bad_target(text):
    with pytest.raises(ping.UsageError):
        ping.parse_target(text)


@pytest.mark.parametrize('args,message', [
    (['compute@'], 'bad target'),
    (['nosuchtopic'], "unknown topic 'nosuchtopic'"),
    (['compute', '-c', '0'], 'must be positive'),
    (['compute', '-c', '-3'], 'must be positive'),
    (['compute', '-i', '0'], 'must be positive'),
    (['compute', '-t', 'soon'], 'not a number'),
    (['compute', '--sleep', '-1'], 'must be between 0 and 60'),
    (['compute', '--sleep', '3600'], 'must be between 0 and 60'),
])
def test_bad_usage_exits_2_with_one_error_line(conf_fixture, db, capsys,
                                               args, message):
    argv = ['--config-file', conf_fixture.write_config_file()] + args
    try:
        code = ping.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    error_lines = [line for line in err.splitlines() if 'error:' in line]
    assert len(error_lines) == 1 and 'Traceback' not in err


def test_reply_and_summary_format():
    good = probe.Sample(topic='compute', host='h1', binary='nova-lite-compute',
                        version='1.0', to_service=1.0, in_service=1000.0,
                        greenthread_overhead=0.5, from_service=2.0,
                        total=1003.0, transit=3.0, greenthreads=5,
                        workers=2, backend='threading')
    skewed = probe.Sample(topic='compute', host='h2', binary='nova-lite-compute',
                          version='1.0', in_service=1000.0,
                          greenthread_overhead=0.5, total=1004.0,
                          transit=4.0, clock_offset=-40.0, skew=True,
                          greenthreads=5)
    lost = probe.Sample(topic='compute', host='h3', timed_out=True)
    assert ping.format_reply(1, good) == (
        'reply from h1 (nova-lite-compute 1.0): seq=1 to_service=1.00 ms '
        'in_service=1000.00 ms greenthread_overhead=0.50 ms '
        'from_service=2.00 ms total=1003.00 ms greenthreads=5 workers=2 '
        'backend=threading')
    # A baseapi 1.1 service's reply has neither field.
    assert ping.format_reply(2, skewed).split(' (clock')[0].endswith(
        'greenthreads=5 workers=- backend=-')
    assert 'to_service=skewed' in ping.format_reply(2, skewed)
    assert 'clock offset -40.00 ms' in ping.format_reply(2, skewed)
    assert ping.format_reply(3, lost) == (
        'timeout: seq=3 no reply from compute@h3')
    summary = ping.summarize([good, skewed, lost])
    assert (summary['sent'], summary['answered'], summary['lost']) == (3, 2, 1)
    # A skewed reply adds nothing to to_service: no latency from bad clocks.
    assert summary['to_service']['count'] == 1
    text = ping.format_summary('compute', summary)
    assert '3 probes sent, 2 answered, 33% lost' in text
    assert 'total                 min/avg/max/p99 = 1003.00/1003.50/1004.00/1004.00 ms' in text


def _answered(host, there_ms, back_ms, offset_ms=0.0):
    sent_at, in_service = 100.0, 0.001
    received_at = sent_at + (there_ms + offset_ms) / 1000.0
    total = there_ms / 1000.0 + in_service + back_ms / 1000.0
    return probe.sample_from_reply(
        'compute', sent_at, 5.0, sent_at + total, 5.0 + total,
        {'received_at': received_at, 'replied_at': received_at + in_service,
         'sleep_requested': 0.0, 'sleep_actual': 0.0, 'host': host,
         'binary': 'nova-lite-compute', 'version': '1.0', 'greenthreads': 2})


def test_summary_clock_offset_is_the_lowest_round_trips():
    # One uneven round trip (24.5 ms there, 3.4 ms back) among symmetric
    # ones, on a host whose clock is this one's: alone it says 10.55 ms.
    uneven = _answered('h1', 24.5, 3.4)
    assert uneven.clock_offset == pytest.approx(10.55)
    samples = [_answered('h1', 2.0, 2.0), uneven, _answered('h1', 3.0, 3.0),
               _answered('h2', 5.0, 1.0, offset_ms=-700.0),
               probe.Sample(topic='compute', host='h3', timed_out=True)]
    summary = ping.summarize(samples)
    assert summary['clock_offsets'] == {
        'h1': {'offset_ms': pytest.approx(0.0, abs=1e-6),
               'bound_ms': pytest.approx(2.0)},
        'h2': {'offset_ms': pytest.approx(-698.0),
               'bound_ms': pytest.approx(3.0)}}
    text = ping.format_summary('compute', summary)
    assert 'clock offset of h1: +0.00 ms ± 2.00 ms' in text
    assert 'clock offset of h2: -698.00 ms ± 3.00 ms' in text


def test_a_ping_is_a_round_trip_only():
    """A Nova service answers baseapi.ping: no phase but total, which
    prints as '-' and never as 0."""
    nova = probe.Sample(topic='conductor', host='ctl', total=2.75,
                        method=probe.PING)
    assert ping.format_reply(1, nova) == (
        'reply from ctl: seq=1 round trip only: to_service=- '
        'in_service=- greenthread_overhead=- from_service=- total=2.75 ms')
    summary = ping.summarize([nova, probe.Sample(
        topic='conductor', host='ctl', total=3.25, method=probe.PING)])
    assert summary['methods'] == ['ping']
    assert summary['total']['max'] == 3.25
    assert summary['in_service'] is None and summary['to_service'] is None
    text = ping.format_summary('conductor@ctl', summary)
    assert 'round trip only' in text
    assert 'in_service            -' in text.splitlines()
    assert 'total                 min/avg/max/p99 = 2.75/3.00/3.25/3.25 ms' \
        in text
    # Nothing answered: no phase line at all.
    lost = ping.summarize([probe.Sample(topic='conductor', host='ctl',
                                        timed_out=True, method=probe.PING)])
    assert 'total' not in ping.format_summary('conductor@ctl', lost)


def test_method_must_be_ping_or_inflight(conf_fixture, db, capsys):
    argv = ['--config-file', conf_fixture.write_config_file(), 'compute',
            '--method', 'echo']
    with pytest.raises(SystemExit) as exc:
        ping.main(argv)
    assert exc.value.code == 2
    assert "invalid choice: 'echo'" in capsys.readouterr().err
