"""The cached health state and the listener's WSGI app."""

import io
import json
import time
import types

import pytest

from nova_lite.metrics import health
from nova_lite.metrics import http
from nova_lite.metrics import watchdog


class _Watchdog:
    def __init__(self, worst=0.0, stalled=0.0):
        self._worst, self._stalled = worst, stalled

    def worst(self, seconds):
        return self._worst

    def stalled_for(self):
        return self._stalled


def _service(**values):
    defaults = dict(topic='compute', host='h1', heartbeat_ok_at=time.time(),
                    heartbeat_failed_at=None)
    defaults.update(values)
    return types.SimpleNamespace(**defaults)


def _state(conf, service=None, watchdog_=None, ping_ok_ago=0.0,
           ping_error=None):
    state = health.HealthState(conf, watchdog_ or _Watchdog(), '1.0')
    ping = health.SelfPing(conf, service or _service())
    if ping_ok_ago is not None:
        ping.last_ok_at = time.time() - ping_ok_ago
        ping.last_rtt = 0.004
    ping.last_error = ping_error
    state.pings.append(ping)   # not started: no thread, no broker
    return state


def _checks(body, name):
    return [entry['status'] for entry in body['checks'][name]]


def test_all_well_is_pass(conf):
    body, code = _state(conf).report()
    assert (body['status'], code) == ('pass', 200)
    assert body['serviceId'] == 'compute.h1'
    assert body['version'] == '1.0'
    entry = body['checks']['rpc:self'][0]
    assert entry['observedValue'] == 4.0 and entry['observedUnit'] == 'ms'
    assert entry['time'].endswith('+00:00')


def test_self_round_trip_fails_after_two_intervals(conf):
    interval = conf.metrics.health_interval
    recent_failure = _state(conf, ping_ok_ago=interval * 1.5,
                            ping_error='MessageDeliveryFailure')
    body, code = recent_failure.report()
    assert _checks(body, 'rpc:self') == ['warn'] and code == 200
    long_failure = _state(conf, ping_ok_ago=interval * 2.1,
                          ping_error='MessagingTimeout')
    body, code = long_failure.report()
    assert (body['status'], code) == ('fail', 503)
    assert not long_failure.ready()


def test_never_answered_fails_two_intervals_after_start(conf):
    state = _state(conf, ping_ok_ago=None)
    assert _checks(state.report()[0], 'rpc:self') == ['warn']
    state.pings[0].started_at -= 2.1 * conf.metrics.health_interval
    assert state.report()[1] == 503


def test_heartbeats_failing_past_service_down_time_fail(conf):
    down = conf.service_down_time
    failing = _service(heartbeat_ok_at=time.time() - down / 2,
                       heartbeat_failed_at=time.time() - 1)
    body, code = _state(conf, service=failing).report()
    assert _checks(body, 'database:heartbeat') == ['warn'] and code == 200
    failed = _service(heartbeat_ok_at=time.time() - down - 1,
                      heartbeat_failed_at=time.time() - down)
    state = _state(conf, service=failed)
    assert state.report()[1] == 503
    assert not state.ready()


def test_hub_lag_warns_never_fails(conf):
    lag = conf.metrics.lag_warn_ms / 1000.0 * 50
    body, code = _state(conf, watchdog_=_Watchdog(worst=lag)).report()
    assert _checks(body, 'hub:lag') == ['warn']
    assert (body['status'], code) == ('warn', 200)


def test_ready_and_live(conf):
    assert _state(conf).ready()
    assert not health.HealthState(conf, _Watchdog(), '1.0').ready()
    assert _state(conf).live()
    assert not _state(conf, watchdog_=_Watchdog(stalled=30)).live()


def _get(app, path, method='GET'):
    result = {}

    def start_response(status, headers):
        result['status'] = status
        result['headers'] = dict(headers)

    body = b''.join(app({'REQUEST_METHOD': method, 'PATH_INFO': path,
                         'wsgi.input': io.BytesIO()}, start_response))
    return result['status'], result['headers'], body


def test_app_routes(conf):
    app = http.make_app(_state(conf), max_age=10)
    status, headers, body = _get(app, '/health')
    assert status == '200 OK'
    assert headers['Content-Type'] == 'application/health+json'
    assert headers['Cache-Control'] == 'max-age=10'
    assert json.loads(body)['status'] == 'pass'
    status, headers, body = _get(app, '/metrics')
    assert status == '200 OK'
    assert b'nova_lite_hub_lag_seconds_bucket' in body
    assert b'process_cpu_seconds_total' in body or b'python_info' in body
    assert _get(app, '/livez')[0] == '200 OK'
    assert _get(app, '/readyz')[0] == '200 OK'
    assert _get(app, '/nope')[0] == '404 Not Found'
    status, headers, _ = _get(app, '/health', method='POST')
    assert status == '405 Method Not Allowed'
    assert headers['Allow'] == 'GET, HEAD'
    status, headers, body = _get(app, '/health', method='HEAD')
    assert status == '200 OK' and body == b''
    assert int(headers['Content-Length']) > 0


def test_failing_health_is_503(conf):
    app = http.make_app(_state(conf, ping_ok_ago=1e6), max_age=10)
    status, _, body = _get(app, '/health')
    assert status == '503 Service Unavailable'
    assert json.loads(body)['status'] == 'fail'
    assert _get(app, '/readyz')[0] == '503 Service Unavailable'


@pytest.mark.parametrize('lags, window, expected', [
    ([0.001, 0.2, 0.003], 60, 0.2),
    ([], 60, 0.0),
])
def test_watchdog_worst_over_a_window(lags, window, expected):
    dog = watchdog.HubWatchdog(window=window)
    now = time.monotonic()
    for lag in lags:
        dog._record(now, lag)
    assert dog.worst(10) == expected


def test_watchdog_forgets_old_lags():
    dog = watchdog.HubWatchdog(window=5)
    now = time.monotonic()
    dog._record(now - 30, 1.0)
    dog._record(now, 0.002)
    assert dog.worst(60) == 0.002
