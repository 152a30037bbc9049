"""concurrency.serve_wsgi on the running backend: serves, refuses a taken
port, and stops gracefully (in-flight requests finish, new ones are
refused)."""

import http.client
import socket

import pytest

from nova_lite import concurrency


def _slow_app(started, release):
    def app(environ, start_response):
        started.set()
        release.wait(10)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'done']
    return app


def _get(port):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        conn.request('GET', '/')
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_serves_and_stops_after_the_request_in_flight():
    started, release = concurrency.Event(), concurrency.Event()
    server = concurrency.serve_wsgi(_slow_app(started, release),
                                    '127.0.0.1', 0, 4)
    port = server.port
    in_flight = concurrency.spawn(_get, port)
    assert started.wait(10)
    stopper = concurrency.spawn(server.stop, 10)
    concurrency.sleep(0.3)
    assert not stopper.dead, 'stop() must wait for the request in flight'
    release.set()
    assert stopper.wait() is True
    assert in_flight.wait() == (200, b'done')
    with pytest.raises(OSError):
        _get(port)


def test_stop_gives_up_after_its_timeout():
    started, release = concurrency.Event(), concurrency.Event()
    server = concurrency.serve_wsgi(_slow_app(started, release),
                                    '127.0.0.1', 0, 4)
    concurrency.spawn(_get, server.port)
    assert started.wait(10)
    assert server.stop(0.2) is False
    release.set()


def test_a_taken_port_is_an_oserror():
    with socket.socket() as holder:
        holder.bind(('127.0.0.1', 0))
        holder.listen(1)
        with pytest.raises(OSError):
            concurrency.serve_wsgi(lambda e, s: [], '127.0.0.1',
                                   holder.getsockname()[1], 1)
