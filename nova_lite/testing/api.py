"""A small HTTP client for nova-lite-api in tests (standard library only).

    client = api.APIClient('http://127.0.0.1:%d' % port, token='admin:admin')
    status, body, headers = client.post('/v2.1/servers', {'server': {...}})
    server = api.wait_for_server(client, server_id, 'ACTIVE')
"""

import http.client
import json
import socket
import urllib.parse

from nova_lite.testing import waiters


def free_port(host='127.0.0.1'):
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def __iter__(self):
        # status, body, headers = client.get(...)
        return iter((self.status, self.json, self.headers))

    def __repr__(self):
        return '<Response %s %s>' % (self.status, self.body[:200])


class APIClient:
    """JSON requests to ``base_url`` with ``X-Auth-Token: token`` (none
    when ``token`` is None)."""

    def __init__(self, base_url, token='admin:admin', timeout=60):
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.token = token
        self.timeout = timeout

    def request(self, method, path, body=None, headers=None, raw=None):
        """``body``: JSON-encoded; ``raw``: bytes sent as they are."""
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault('X-Auth-Token', self.token)
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers.setdefault('Content-Type', 'application/json')
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, resp.read().decode('utf-8'),
                            {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def get(self, path, **kwargs):
        return self.request('GET', path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request('POST', path, body=body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.request('PUT', path, body=body, **kwargs)

    def delete(self, path, **kwargs):
        return self.request('DELETE', path, **kwargs)


def wait_for_api(client, timeout=30):
    """Until ``GET /`` answers 200."""
    def _answers():
        return client.get('/').status == 200
    return waiters.wait_for(_answers, timeout=timeout,
                            what='nova-lite-api to answer GET /')


def wait_for_server(client, server_id, status, timeout=30, task_state=None):
    """Until the server shows ``status`` (and, for an admin,
    ``OS-EXT-STS:task_state`` None); returns it."""
    def _shown():
        resp = client.get('/v2.1/servers/%s' % server_id)
        if resp.status != 200:
            return None
        server = resp.json['server']
        if server['status'] != status:
            return None
        if server.get('OS-EXT-STS:task_state', task_state) != task_state:
            return None
        return server
    return waiters.wait_for(_shown, timeout=timeout, what='server %s to be '
                            '%s' % (server_id, status))


def wait_for_gone(client, server_id, timeout=30):
    """Until ``GET /servers/{id}`` answers 404."""
    return waiters.wait_for(
        lambda: client.get('/v2.1/servers/%s' % server_id).status == 404,
        timeout=timeout, what='server %s to be gone' % server_id)
