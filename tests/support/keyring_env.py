"""A real Secret Service for tests: a private D-Bus session bus and an unlocked GNOME Keyring on
it, whose keyring files live in a temp folder. keyring's SecretService backend then works as on
a desktop. Both daemons are our children and are stopped afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

READY_TIMEOUT_S = 10.0


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} not found: install the Debian package {package}")
    return path


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _secrets_ready(env: dict[str, str]) -> bool:
    out = subprocess.run(
        ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
         "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"],
        env=env, capture_output=True, text=True, timeout=5)
    return out.returncode == 0 and "boolean true" in out.stdout


@contextmanager
def secret_service(root: Path, password: str = "test-login") -> Iterator[dict[str, str]]:
    """Yields the environment variables a process needs to reach the keyring
    (DBUS_SESSION_BUS_ADDRESS), with `root` holding the daemons' files."""
    dbus = _require("dbus-daemon", "dbus-daemon")
    gkd = _require("gnome-keyring-daemon", "gnome-keyring")
    _require("dbus-send", "dbus-bin")
    runtime = root / "runtime"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    daemon_env = dict(os.environ, HOME=str(root), XDG_DATA_HOME=str(root / "data"),
                      XDG_RUNTIME_DIR=str(runtime), XDG_CONFIG_HOME=str(root / "config"))
    bus = subprocess.Popen([dbus, "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, env=daemon_env, text=True)
    keyring_proc = None
    try:
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        if not address:
            raise RuntimeError("dbus-daemon did not print its address")
        daemon_env["DBUS_SESSION_BUS_ADDRESS"] = address
        # --foreground keeps the daemon our child (so we can stop it); the password on stdin
        # creates and unlocks the login keyring, as a desktop login does.
        keyring_proc = subprocess.Popen([gkd, "--foreground", "--unlock", "--components=secrets"],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=daemon_env, text=True)
        assert keyring_proc.stdin is not None
        keyring_proc.stdin.write(password)
        keyring_proc.stdin.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _secrets_ready(daemon_env):
            if keyring_proc.poll() is not None:
                raise RuntimeError(f"gnome-keyring-daemon exited with {keyring_proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the Secret Service did not appear on the session bus")
            time.sleep(0.05)
        yield {"DBUS_SESSION_BUS_ADDRESS": address}
    finally:
        if keyring_proc is not None:
            _stop(keyring_proc)
        _stop(bus)
        if bus.stdout is not None:
            bus.stdout.close()


def reset_keyring_backend() -> None:
    """keyring picks its backend once per process: pick again for the current environment."""
    import keyring.backend
    import keyring.core

    # The list of usable backends is also worked out once per process; forget it too.
    vars(keyring.backend.get_all_keyring).pop("saved_result", None)
    keyring.core.init_backend()


@pytest.fixture
def keyring_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """This process (and subprocesses given os.environ) use a fresh, real Secret Service."""
    root = tmp_path_factory.mktemp("secret-service")
    with secret_service(root) as env, pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        reset_keyring_backend()
        try:
            yield env
        finally:
            mp.undo()
            reset_keyring_backend()


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """No session bus at all: keyring finds no usable backend, as on a bare server."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
        mp.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        mp.setenv("XDG_RUNTIME_DIR", "/nonexistent-runtime-dir")  # no default bus socket either
        reset_keyring_backend()
        try:
            yield
        finally:
            mp.undo()
            reset_keyring_backend()
