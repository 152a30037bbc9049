"""The cached Nova venv: built once under a lock, marked only when pip
succeeded, a named one-line error when it did not."""

import os
import shutil
import sys
import threading
import time

import pytest

from nova_lite.testing import nova_venv


@pytest.fixture
def fake_build(monkeypatch):
    """``_build`` replaced by one that takes a while and counts its calls
    (the real one runs pip)."""
    calls = []

    def build(path, python, log_path):
        calls.append(path)
        time.sleep(0.3)
        shutil.rmtree(path, ignore_errors=True)     # as the real one does
        os.makedirs(os.path.join(path, 'bin'))
        os.symlink(sys.executable, os.path.join(path, 'bin', 'python'))
        with open(os.path.join(path, nova_venv.MARKER), 'w') as handle:
            handle.write(nova_venv._wanted())

    monkeypatch.setattr(nova_venv, '_build', build)
    return calls


def test_two_callers_build_it_once(tmp_path, fake_build):
    path = str(tmp_path / 'venv')
    results = []
    threads = [threading.Thread(
        target=lambda: results.append(nova_venv.ensure(path)))
        for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert fake_build == [path]
    assert sorted(r.build_seconds is None for r in results) == [False, True]
    assert nova_venv.ensure(path).build_seconds is None


def test_a_venv_without_marker_is_rebuilt(tmp_path, fake_build):
    path = tmp_path / 'venv'
    (path / 'bin').mkdir(parents=True)     # pip died half-way
    assert not nova_venv.is_installed(str(path))
    venv = nova_venv.ensure(str(path))
    assert fake_build == [str(path)]
    assert venv.bin('nova-manage') == str(path / 'bin' / 'nova-manage')


def test_new_requirements_rebuild_it(tmp_path, fake_build, monkeypatch):
    path = str(tmp_path / 'venv')
    nova_venv.ensure(path)
    monkeypatch.setattr(nova_venv, 'REQUIREMENTS',
                        nova_venv.REQUIREMENTS + ('extra',))
    assert not nova_venv.is_installed(path)
    nova_venv.ensure(path)
    assert fake_build == [path, path]


def test_a_venv_whose_python_is_gone_is_rebuilt(tmp_path, fake_build):
    path = str(tmp_path / 'venv')
    nova_venv.ensure(path)
    python = os.path.join(path, 'bin', 'python')
    os.unlink(python)
    os.symlink(str(tmp_path / 'removed-python3'), python)
    assert not nova_venv.is_installed(path)


def test_the_path_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(nova_venv.ENV_PATH, '/somewhere/else')
    assert nova_venv.default_path() == '/somewhere/else'


def test_pip_failing_is_a_named_one_line_error(tmp_path, monkeypatch):
    """A real venv and a real pip, asked for a package file that does not
    exist (no network needed): NovaVenvError, no marker."""
    missing = str(tmp_path / 'no-such-package-1.0.tar.gz')
    monkeypatch.setattr(nova_venv, 'REQUIREMENTS', (missing,))
    path = str(tmp_path / 'venv')
    with pytest.raises(nova_venv.NovaVenvError) as info:
        nova_venv.ensure(path)
    message = str(info.value)
    assert '\n' not in message
    assert 'Cannot build the Nova venv at %s' % path in message
    assert 'pip install' in message and path + '.log' in message
    assert not nova_venv.is_installed(path)
