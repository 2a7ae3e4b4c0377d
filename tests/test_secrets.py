"""`dictate secrets` against a real Secret Service (GNOME Keyring on a private D-Bus), through the
real CLI in subprocesses: from a pipe, from a terminal without echo, and with no backend at all."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from dictate import secrets
from dictate.errors import SecretsError
from tests.conftest import REPO, dictate_env
from tests.support.keyring_env import keyring_env, no_keyring  # noqa: F401 - fixtures

KEY = "sk-secret-test-51c0ffee2b7d4e8a9f30"


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], input=stdin, capture_output=True, text=True,
                          env=dictate_env(env), cwd=REPO, timeout=60)


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_set_status_delete_from_a_pipe(keyring_env, isolated_dirs):
    assert run("secrets", "status", "remote").stdout == "remote\tnot stored\n"

    done = run("secrets", "set", "remote", stdin=KEY + "\n")
    assert done.returncode == 0, done.stderr
    assert "stored the remote key in the keyring (keyring.backends.SecretService.Keyring)" in done.stderr
    # Another process (this one) reads it back from the same Secret Service.
    assert keyring.get_password(secrets.SERVICE, "remote") == KEY
    assert secrets.get(secrets.SecretKey.REMOTE) == KEY

    status = run("secrets", "status")
    assert status.returncode == 0 and status.stdout == "remote\tstored\n"
    assert "SecretService" in status.stderr

    assert run("secrets", "delete", "remote").stderr == "dictate: deleted the remote key from the keyring\n"
    assert secrets.get(secrets.SecretKey.REMOTE) is None
    assert run("secrets", "delete", "remote").stderr == "dictate: no remote key was stored\n"
    assert run("secrets", "status", "remote").stdout == "remote\tnot stored\n"

    for path in all_files(isolated_dirs):  # config, data, cache, log and state folders
        assert KEY.encode() not in path.read_bytes(), path


def test_set_from_a_terminal_prompts_without_echo(keyring_env):
    """A real pseudo-terminal as the controlling terminal: getpass turns echo off."""
    env = dictate_env()
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes `dictate secrets set remote` on the terminal
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "dictate", "secrets", "set", "remote"], env)
    seen = b""

    def read_until(marker: bytes, timeout_s: float = 20.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout_s
        while marker not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} on the terminal; saw {seen!r}"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk

    read_until(b"remote key (not shown): ")
    os.write(fd, KEY.encode() + b"\n")
    read_until(b"stored the remote key")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert KEY.encode() not in seen, "the key was echoed to the terminal"
    assert secrets.get(secrets.SecretKey.REMOTE) == KEY


def test_the_key_is_never_a_command_line_argument(keyring_env):
    done = run("secrets", "set", "remote", KEY)
    assert done.returncode == 2  # usage error
    assert secrets.get(secrets.SecretKey.REMOTE) is None


def test_empty_input_stores_nothing(keyring_env):
    done = run("secrets", "set", "remote", stdin="\n")
    assert done.returncode == 1
    assert done.stderr == "dictate: no key given for 'remote'; nothing stored\n"
    assert secrets.get(secrets.SecretKey.REMOTE) is None


def test_unknown_name_is_a_usage_error(keyring_env):
    done = run("secrets", "set", "github", stdin=KEY)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_no_backend_says_so_and_how_to_get_one(no_keyring, isolated_dirs):
    env = {"XDG_RUNTIME_DIR": "/nonexistent-runtime-dir"}
    env_run = dict(os.environ, **env)
    env_run.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "dictate", "secrets", "set", "remote"], input=KEY, text=True,
                          capture_output=True, env=dictate_env({**env_run}), cwd=REPO, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("dictate: no safe keyring backend is available: install and start a Secret Service")
    assert "gnome-keyring" in lines[0] and "does not store secrets in plain text" in lines[0]
    status = subprocess.run([sys.executable, "-m", "dictate", "secrets", "status"], text=True, capture_output=True,
                            env=dictate_env({**env_run}), cwd=REPO, timeout=60)
    assert status.returncode == 1 and "no safe keyring backend" in status.stderr
    # Nothing was written in plain text anywhere.
    for path in all_files(isolated_dirs):
        assert KEY.encode() not in path.read_bytes(), path
    # In process too: a clear SecretsError, not a silent None.
    with pytest.raises(SecretsError, match="no safe keyring backend"):
        secrets.get(secrets.SecretKey.REMOTE)
    assert secrets.backend_name() == "none" and not secrets.available()


# Test backends all take constructor arguments: keyring registers every KeyringBackend subclass and
# would otherwise choose one of them as this process's default.
class PlaintextKeyring(KeyringBackend):
    """Stands in for keyrings.alt's plaintext file backend (which must never be installed)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def get_password(self, service, username):
        return self.path.read_text() if self.path.exists() else None

    def set_password(self, service, username, password):
        self.path.write_text(password)

    def delete_password(self, service, username):
        self.path.unlink()


class _Chain(KeyringBackend):
    """Behaves like keyring's ChainerBackend: tries its backends in priority order."""

    priority = 10  # type: ignore[assignment]

    def __init__(self, first, *rest) -> None:  # arguments required: keyring must never pick it on its own
        super().__init__()
        self.backends = sorted([first, *rest], key=lambda b: b.priority, reverse=True)

    def get_password(self, service, username):
        return next((p for b in self.backends if (p := b.get_password(service, username)) is not None), None)

    def set_password(self, service, username, password):
        for b in self.backends:
            try:
                return b.set_password(service, username, password)
            except keyring.errors.KeyringError:
                continue
        raise keyring.errors.PasswordSetError("no backend took it")

    def delete_password(self, service, username):
        for b in self.backends:
            b.delete_password(service, username)


class LockedKeyring(KeyringBackend):
    """A Secret Service whose collection stays locked."""

    priority = 5  # type: ignore[assignment]

    def __init__(self, reason: str) -> None:  # arguments required: keyring must never pick it on its own
        super().__init__()
        self.reason = reason

    def get_password(self, service, username):
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service, username, password):
        raise keyring.errors.KeyringLocked("locked")

    def delete_password(self, service, username):
        raise keyring.errors.KeyringLocked("locked")


def test_plaintext_backend_refused_unless_named_explicitly(tmp_path, monkeypatch):
    file = tmp_path / "plain.txt"
    plain = PlaintextKeyring(file)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    previous = keyring.get_keyring()
    try:
        keyring.set_keyring(plain)
        with pytest.raises(SecretsError, match="no safe keyring backend"):
            secrets.set(secrets.SecretKey.REMOTE, KEY)
        assert not file.exists()
        # The user asked for it by name: allowed, with a warning.
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.PlaintextKeyring")
        secrets.set(secrets.SecretKey.REMOTE, KEY)
        assert file.read_text() == KEY
    finally:
        keyring.set_keyring(previous)


def test_chain_with_a_plaintext_backend_uses_only_the_safe_one(keyring_env, tmp_path, monkeypatch):
    """keyring's chainer writes to the next backend when the first fails; we never spill that way."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    file = tmp_path / "plain.txt"
    real = keyring.get_keyring()
    try:
        keyring.set_keyring(_Chain(PlaintextKeyring(file), real))
        secrets.set(secrets.SecretKey.REMOTE, KEY)
        assert not file.exists()
        assert real.get_password(secrets.SERVICE, "remote") == KEY
        # The safe backend is locked: a clear error, and still nothing in the plaintext file.
        keyring.set_keyring(_Chain(PlaintextKeyring(file), LockedKeyring("test")))
        with pytest.raises(SecretsError, match=r"^the keyring refused to store 'remote' \(KeyringLocked\); is it locked\?$"):
            secrets.set(secrets.SecretKey.REMOTE, KEY)
        assert not file.exists()
    finally:
        keyring.set_keyring(real)
