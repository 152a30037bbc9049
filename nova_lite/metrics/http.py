"""The per-process HTTP listener: ``/metrics``, ``/health``, ``/livez``,
``/readyz``.

It is not an attack surface: it binds loopback by default, answers GET (and
HEAD) only (405 otherwise), 404 for any other path, serves at most
``[metrics] max_connections`` connections at once and closes a connection
idle for ``[metrics] read_timeout``.  Every answer comes from memory
(prometheus-client's registry, the cached ``HealthState``): a request
never waits on the broker or the database.
"""

import json

import prometheus_client
from prometheus_client import exposition

HEALTH_TYPE = 'application/health+json'
_TEXT = 'text/plain; charset=utf-8'


def _answer(start_response, status, body, content_type=_TEXT, headers=()):
    if isinstance(body, str):
        body = body.encode('utf-8')
    start_response(status, [('Content-Type', content_type),
                            ('Content-Length', str(len(body)))] +
                   list(headers))
    return [body]


def make_app(health, max_age, registry=prometheus_client.REGISTRY):
    """The WSGI app over ``health`` (a ``HealthState``); ``max_age`` is
    ``/health``'s Cache-Control max-age in seconds."""
    cache = [('Cache-Control', 'max-age=%d' % max(1, int(max_age)))]

    def app(environ, start_response):
        method = environ.get('REQUEST_METHOD', 'GET')
        path = environ.get('PATH_INFO', '/')
        if path not in ROUTES:
            return _answer(start_response, '404 Not Found',
                           'not found; try /metrics, /health, /livez or '
                           '/readyz\n')
        if method not in ('GET', 'HEAD'):
            return _answer(start_response, '405 Method Not Allowed',
                           'only GET\n', headers=[('Allow', 'GET, HEAD')])
        status, body, content_type, headers = ROUTES[path](
            environ, health, registry, cache)
        if method == 'HEAD':
            # Length and type as for GET, no body.
            start_response(status, [('Content-Type', content_type),
                                    ('Content-Length', str(len(body)))] +
                           headers)
            return [b'']
        return _answer(start_response, status, body, content_type, headers)

    return app


def _metrics(environ, health, registry, cache):
    accept = environ.get('HTTP_ACCEPT')
    encoder, content_type = exposition.choose_encoder(accept)
    return '200 OK', encoder(registry), content_type, []


def _health(environ, health, registry, cache):
    body, code = health.report()
    text = json.dumps(body, indent=1, sort_keys=True) + '\n'
    status = '200 OK' if code == 200 else '503 Service Unavailable'
    return status, text.encode('utf-8'), HEALTH_TYPE, cache


def _probe(ok):
    if ok:
        return '200 OK', b'ok\n', _TEXT, []
    return '503 Service Unavailable', b'not ok\n', _TEXT, []


ROUTES = {
    '/metrics': _metrics,
    '/health': _health,
    '/livez': lambda environ, health, registry, cache: _probe(health.live()),
    '/readyz': lambda environ, health, registry, cache: _probe(
        health.ready()),
}
