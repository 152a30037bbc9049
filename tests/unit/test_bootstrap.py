"""bin/nova-lite-dev's RabbitMQ start-up, against stub rabbitmq commands.

CI once failed because ``rabbitmqctl await_startup`` ran before the freshly
detached node had registered with epmd, and that fails at once instead of
waiting. These tests source the script and run ``ensure_rabbitmq`` with stub
``rabbitmq-server``/``rabbitmqctl`` on PATH that behave that way.
"""

import os
import pathlib
import stat
import subprocess

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
