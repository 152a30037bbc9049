"""Counting the etcd operations of tooz clients, for the benchmarks.

tooz's ``etcd3+http://`` driver (etcd3gw) speaks etcd's JSON gateway: one
HTTP POST per operation (``/v3/kv/range``, ``/v3/kv/txn``,
``/v3/lease/keepalive``, ...).  ``EtcdCounter`` is a small HTTP proxy in
front of etcd that forwards each request and counts it by path, so a
benchmark gives its daemons ``counter.url`` and reads exactly their
operations, whatever else uses the same etcd.  Unary requests only: a
streaming watch would hang in it (tooz's group membership never watches).
"""

import collections
import http.client
import http.server
import threading
import urllib.parse

_HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding',
               'content-length', 'proxy-connection', 'upgrade', 'te',
               'trailer'}


class EtcdCounter:
    """Forwards to the etcd of tooz URL ``target`` and counts requests.

    ``url`` is the tooz URL to give clients (``target`` with this proxy's
    address); ``counts()`` a snapshot ``{path: requests}``.
    """

    def __init__(self, target):
        parsed = urllib.parse.urlsplit(target)
        self._upstream = (parsed.hostname, parsed.port or 2379)
        self._counts = collections.Counter()
        self._lock = threading.Lock()
        self._local = threading.local()
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_POST(self):
                counter._forward(self)

            do_GET = do_PUT = do_DELETE = do_POST

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                       Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name='etcd-counter', daemon=True)
        self._thread.start()
        netloc = '127.0.0.1:%d' % self._server.server_address[1]
        if parsed.username:
            netloc = '%s@%s' % (parsed.netloc.rsplit('@', 1)[0], netloc)
        self.url = urllib.parse.urlunsplit(parsed._replace(netloc=netloc))

    def _connection(self):
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = http.client.HTTPConnection(*self._upstream, timeout=60)
            self._local.conn = conn
        return conn

    def _forward(self, handler):
        length = int(handler.headers.get('Content-Length') or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in _HOP_BY_HOP and k.lower() != 'host'}
        try:
            conn = self._connection()
            try:
                conn.request(handler.command, handler.path, body, headers)
                answer = conn.getresponse()
            except (http.client.HTTPException, OSError):
                # A kept-alive connection etcd closed: once more, afresh.
                conn.close()
                conn.request(handler.command, handler.path, body, headers)
                answer = conn.getresponse()
            data = answer.read()
        except (http.client.HTTPException, OSError) as exc:
            self._local.conn = None
            handler.send_error(502, 'etcd unreachable: %s' % exc)
            return
        with self._lock:
            self._counts[handler.path.split('?')[0]] += 1
        handler.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header('Content-Length', str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def counts(self):
        with self._lock:
            return dict(self._counts)

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def delta(before, after):
    """``after - before`` per path, zeros left out."""
    return {path: after.get(path, 0) - before.get(path, 0)
            for path in set(after) | set(before)
            if after.get(path, 0) != before.get(path, 0)}
