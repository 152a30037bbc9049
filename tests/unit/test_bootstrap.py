"""bin/nova-lite-dev's RabbitMQ start-up, against stub rabbitmq commands.

CI once failed because ``rabbitmqctl await_startup`` ran before the freshly
detached node had registered with epmd, and that fails at once instead of
waiting. These tests source the script and run ``ensure_rabbitmq`` with stub
``rabbitmq-server``/``rabbitmqctl`` on PATH that behave that way.
"""

import os
import pathlib
import signal
import socket
import stat
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'bin' / 'nova-lite-dev'

# await_startup fails until it has been asked $FAILS times, like a node that
# has not registered yet; status always says "not running".
RABBITMQCTL = """#!/bin/sh
state="$STUB_STATE"
case "$2" in
status) exit 69 ;;
await_startup)
    n=$(( $(cat "$state/attempts" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$state/attempts"
    if [ "$n" -le "$FAILS" ]; then
        echo "epmd reports: node 'rabbit' not running at all" >&2
        exit 69
    fi
    exit 0 ;;
esac
exit 64
"""
RABBITMQ_SERVER = """#!/bin/sh
echo "$*" >> "$STUB_STATE/server"
"""


@pytest.fixture
def stubs(tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for name, text in (('rabbitmqctl', RABBITMQCTL),
                       ('rabbitmq-server', RABBITMQ_SERVER)):
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def ensure_rabbitmq(stubs, fails, timeout):
    env = dict(os.environ,
               PATH='%s:%s' % (stubs / 'bin', os.environ['PATH']),
               STUB_STATE=str(stubs), FAILS=str(fails),
               NOVA_LITE_RABBIT_START_TIMEOUT=str(timeout),
               SCRIPT=str(SCRIPT))
    return subprocess.run(
        ['bash', '-c', 'source "$SCRIPT" && ensure_rabbitmq'], env=env,
        capture_output=True, text=True, timeout=60)


def test_retries_await_startup_until_the_node_registers(stubs):
    result = ensure_rabbitmq(stubs, fails=2, timeout=30)

    assert result.returncode == 0, result.stderr
    assert (stubs / 'server').read_text() == '-detached\n'
    assert (stubs / 'attempts').read_text().strip() == '3'
    assert 'rabbitmq-server is up' in result.stderr


def test_gives_up_after_the_deadline_with_rabbitmqctls_words(stubs):
    # 3 s, not 1: bash's SECONDS counts whole seconds, so a 1 s deadline
    # can pass right after the first attempt.
    result = ensure_rabbitmq(stubs, fails=1000, timeout=3)

    assert result.returncode == 1
    assert 'did not start within 3 s' in result.stderr
    assert 'not running at all' in result.stderr
    assert int((stubs / 'attempts').read_text()) >= 2


def test_sourcing_runs_nothing():
    result = subprocess.run(['bash', '-c', 'source "$SCRIPT"; echo sourced'],
                            env=dict(os.environ, SCRIPT=str(SCRIPT)),
                            capture_output=True, text=True, timeout=10)
    assert result.stdout == 'sourced\n'
    assert result.stderr == ''


# An etcd stand-in: records its arguments, then answers /health on the
# port of --listen-client-urls (or, with ETCD_FAILS set, exits at once
# like a server that cannot start).
ETCD = """#!/bin/sh
echo "$*" >> "$STUB_STATE/etcd"
echo $$ > "$STUB_STATE/etcd.pid"
[ -n "$ETCD_FAILS" ] && { echo "etcd: bind: address already in use" >&2; exit 1; }
url=$(echo "$*" | sed 's/.*--listen-client-urls \\([^ ]*\\).*/\\1/')
exec "$PYTHON" -c '
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{\\"health\\":\\"true\\"}")
    def log_message(self, *args):
        pass
port = int(sys.argv[1].rsplit(":", 1)[1])
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
' "$url"
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def ensure_etcd(tmp_path, **overrides):
    bindir = tmp_path / 'bin'
    bindir.mkdir(exist_ok=True)
    path = bindir / 'etcd'
    path.write_text(ETCD)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH='%s:%s' % (bindir, os.environ['PATH']),
               STUB_STATE=str(tmp_path), TMPDIR=str(tmp_path),
               PYTHON=sys.executable, NOVA_LITE_VENV=sys.prefix,
               SCRIPT=str(SCRIPT))
    env.pop('NOVA_LITE_TEST_ETCD_URL', None)
    env.update(overrides)
    return subprocess.run(
        ['bash', '-c', 'source "$SCRIPT" && ensure_etcd && '
         'echo "url=$NOVA_LITE_TEST_ETCD_URL"'], env=env,
        capture_output=True, text=True, timeout=60)


def test_ensure_etcd_starts_one_and_exports_its_url(tmp_path):
    port = _free_port()
    try:
        result = ensure_etcd(tmp_path, NOVA_LITE_TEST_ETCD_PORT=str(port))
        assert result.returncode == 0, result.stderr
        assert result.stdout == 'url=etcd3+http://127.0.0.1:%d\n' % port
        args = (tmp_path / 'etcd').read_text()
        assert ('--data-dir %s/nova-lite-etcd-%d/data' % (tmp_path, port)
                in args)
        # Answering now, it is used as it is: not started twice.
        again = ensure_etcd(tmp_path, NOVA_LITE_TEST_ETCD_PORT=str(port))
        assert again.stdout == result.stdout
        assert (tmp_path / 'etcd').read_text() == args
    finally:
        pid = tmp_path / 'etcd.pid'
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGKILL)


def test_ensure_etcd_gives_up_after_the_deadline_with_its_log(tmp_path):
    result = ensure_etcd(tmp_path, NOVA_LITE_TEST_ETCD_PORT=str(_free_port()),
                         ETCD_FAILS='1', NOVA_LITE_DB_START_TIMEOUT='3')
    assert result.returncode == 1
    assert 'etcd did not start within 3 s' in result.stderr
    assert 'server log: %s/nova-lite-etcd-' % tmp_path in result.stderr


def test_ensure_etcd_uses_a_given_url_and_starts_nothing(tmp_path):
    result = ensure_etcd(
        tmp_path, NOVA_LITE_TEST_ETCD_PORT=str(_free_port()),
        NOVA_LITE_TEST_ETCD_URL='etcd3+http://etcd.example:2379')
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'url=etcd3+http://etcd.example:2379\n'
    assert not (tmp_path / 'etcd').exists()


# apt-get stand-in: records its arguments; at install time records what the
# policy-rc.d says (101: no service may start), then "installs" stub
# promtool and prometheus.
APT_GET = """#!/bin/sh
echo "$*" >> "$STUB_STATE/apt-get"
case "$*" in
*install*)
    if [ -x "$NOVA_LITE_POLICY_RC_D" ]; then
        "$NOVA_LITE_POLICY_RC_D" prometheus start
        echo "policy $?" >> "$STUB_STATE/apt-get"
    fi
    for tool in promtool prometheus; do
        printf '#!/bin/sh\\n' > "$STUB_BIN/$tool"
        chmod 755 "$STUB_BIN/$tool"
    done ;;
esac
"""


def ensure_prometheus(tmp_path, installed=False, policy_exists=False):
    """``ensure_prometheus`` with a PATH of stubs only (and id as root),
    so that the real promtool is not found."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    stubs = {'apt-get': APT_GET, 'id': '#!/bin/sh\necho 0\n'}
    if installed:
        stubs.update(promtool='#!/bin/sh\n', prometheus='#!/bin/sh\n')
    for name, text in stubs.items():
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    for tool in ('chmod', 'rm'):
        (bindir / tool).symlink_to(subprocess.run(
            ['bash', '-c', 'command -v ' + tool], capture_output=True,
            text=True, check=True).stdout.strip())
    policy = tmp_path / 'policy-rc.d'
    if policy_exists:
        policy.write_text('#!/bin/sh\nexit 0\n')
        policy.chmod(0o755)
    env = {'PATH': str(bindir), 'STUB_STATE': str(tmp_path),
           'STUB_BIN': str(bindir), 'NOVA_LITE_POLICY_RC_D': str(policy),
           'SCRIPT': str(SCRIPT)}
    result = subprocess.run(
        ['/bin/bash', '-c', 'source "$SCRIPT" && ensure_prometheus && '
         'command -v promtool prometheus'], env=env, capture_output=True,
        text=True, timeout=60)
    calls = tmp_path / 'apt-get'
    return result, (calls.read_text().splitlines() if calls.exists()
                    else []), policy


def test_ensure_prometheus_installs_it_and_starts_no_system_server(
        tmp_path):
    result, calls, policy = ensure_prometheus(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == ['update -qq',
                     'install -y -qq --no-install-recommends prometheus',
                     'policy 101']
    assert result.stdout.split() == [str(tmp_path / 'bin' / 'promtool'),
                                     str(tmp_path / 'bin' / 'prometheus')]
    assert not policy.exists()


def test_ensure_prometheus_leaves_a_policy_of_its_own(tmp_path):
    result, calls, policy = ensure_prometheus(tmp_path, policy_exists=True)
    assert result.returncode == 0, result.stderr
    assert calls[-1] == 'policy 0'
    assert policy.read_text() == '#!/bin/sh\nexit 0\n'


def test_ensure_prometheus_installed_already_installs_nothing(tmp_path):
    result, calls, _ = ensure_prometheus(tmp_path, installed=True)
    assert result.returncode == 0, result.stderr
    assert calls == []
