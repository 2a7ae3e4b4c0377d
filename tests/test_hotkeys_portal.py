"""Wayland hotkeys through the XDG GlobalShortcuts portal, over a real private D-Bus session bus:
a bus with no portal (what most Wayland desktops without the portal look like to us), and a bus
with a stand-in portal process (tests/support/fake_portal.py) for the whole conversation."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from dictate.config import Config
from dictate.hotkeys import HotkeyBindings, HotkeyError, create_listener, support
from dictate.hotkeys.portal import PortalHotkeyListener
from dictate.types import Command, CommandKind, RecordingMode
from tests.conftest import REPO, dictate_env

pytest.importorskip("jeepney", reason="jeepney is a runtime dependency on Linux")
pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (dbus-daemon package)")


@pytest.fixture
def bus() -> Iterator[str]:
    """A private session bus; yields its address."""
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def start_portal(address: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.fake_portal", address, *args], cwd=REPO,
                            env=dictate_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def portal(bus: str) -> Iterator[str]:
    proc = start_portal(bus)
    try:
        yield bus
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def control(address: str, method: str, *args: str) -> str:
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    conn = open_dbus_connection(bus=address)
    try:
        target = DBusAddress("/control", "org.freedesktop.portal.Desktop", "org.example.FakePortal")
        reply = conn.send_and_get_reply(new_method_call(target, method, "s" if args else None, args), timeout=5)
        return reply.body[0] if reply.body else ""
    finally:
        conn.close()


def wayland_env(address: str) -> dict[str, str]:
    return {"WAYLAND_DISPLAY": "wayland-test", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0",
            "DBUS_SESSION_BUS_ADDRESS": address}


def take(q: "queue.Queue[Command]", n: int, timeout_s: float = 5.0) -> list[CommandKind]:
    got = [q.get(timeout=timeout_s).kind for _ in range(n)]
    time.sleep(0.3)
    while not q.empty():
        got.append(q.get_nowait().kind)
    return got


def test_no_portal_on_the_bus_means_no_listener_and_no_push_to_talk(bus: str) -> None:
    env = wayland_env(bus)
    found = support(env)
    assert found.backend == "none" and not found.available
    assert found.push_to_talk is False
    assert "push-to-talk is impossible" in found.reason
    assert "`dictate toggle`" in found.fix and "shortcut settings" in found.fix
    assert create_listener(Config(), lambda c: None, env=env) is None


def test_support_in_a_dbus_run_session_without_portal(tmp_path: Path) -> None:
    """The same, the way a user's session would run it: a whole process inside dbus-run-session."""
    if shutil.which("dbus-run-session") is None:
        pytest.skip("needs dbus-run-session (dbus-daemon package)")
    code = ("import json, os\nfrom dictate.hotkeys import support\n"
            "os.environ.update(WAYLAND_DISPLAY='wayland-test', XDG_SESSION_TYPE='wayland')\n"
            "s = support()\nprint(json.dumps([s.backend, s.push_to_talk, s.reason, s.fix]))\n")
    env = dictate_env({"HOME": str(tmp_path)})
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    run = subprocess.run(["dbus-run-session", "--", sys.executable, "-c", code], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    backend, ptt, reason, fix = json.loads(run.stdout.strip().splitlines()[-1])
    assert (backend, ptt) == ("none", False)
    assert "GlobalShortcuts portal" in reason and "dictate toggle" in fix


def test_portal_push_to_talk_and_cancel_over_dbus(portal: str) -> None:
    env = wayland_env(portal)
    found = support(env)
    assert (found.backend, found.push_to_talk) == ("portal", True)
    assert "version 1" in found.reason
    q: "queue.Queue[Command]" = queue.Queue()
    listener = create_listener(Config(), q.put, env=env)
    assert isinstance(listener, PortalHotkeyListener)
    listener.start()
    try:
        state = json.loads(control(portal, "State"))
        assert state["session"] == listener.session_handle
        assert {(s["id"], s["preferred_trigger"]) for s in state["bound"]} == {
            ("dictate", "CTRL+ALT+space"), ("cancel", "CTRL+ALT+SHIFT+space")}
        assert listener.triggers == {"dictate": "Press CTRL+ALT+space", "cancel": "Press CTRL+ALT+SHIFT+space"}
        control(portal, "Press", "dictate")
        assert take(q, 1) == [CommandKind.PTT_DOWN]
        control(portal, "Press", "dictate")  # a repeated Activated while held is not a new press
        control(portal, "Release", "dictate")
        assert take(q, 1) == [CommandKind.PTT_UP]
        control(portal, "Press", "cancel")
        control(portal, "Release", "cancel")
        assert take(q, 1) == [CommandKind.CANCEL]
    finally:
        listener.stop()
    assert json.loads(control(portal, "State"))["closed"] is True


def test_portal_toggle_once_per_press(portal: str) -> None:
    q: "queue.Queue[Command]" = queue.Queue()
    listener = PortalHotkeyListener(HotkeyBindings("F9", None), RecordingMode.TOGGLE, q.put, env=wayland_env(portal))
    listener.start()
    try:
        assert [s["id"] for s in json.loads(control(portal, "State"))["bound"]] == ["dictate"]
        for _ in range(2):
            control(portal, "Press", "dictate")
            control(portal, "Release", "dictate")
        control(portal, "Press", "cancel")  # not bound: ignored
        assert take(q, 2) == [CommandKind.TOGGLE, CommandKind.TOGGLE]
    finally:
        listener.stop()


def test_portal_refusing_the_shortcuts_gives_a_clear_error(bus: str) -> None:
    proc = start_portal(bus, "--refuse")
    try:
        listener = PortalHotkeyListener(HotkeyBindings("F9"), RecordingMode.TOGGLE, lambda c: None,
                                        env=wayland_env(bus))
        with pytest.raises(HotkeyError, match="BindShortcuts: the request was cancelled"):
            listener.start()
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_portal_listener_without_a_bus_gives_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    listener = PortalHotkeyListener(HotkeyBindings("F9"), RecordingMode.TOGGLE, lambda c: None, env=env)
    with pytest.raises(HotkeyError, match="no D-Bus session bus"):
        listener.start()


def doctor_hotkeys(env: dict[str, str]) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "dictate", "doctor"], cwd=REPO, env=dictate_env(env),
                         capture_output=True, text=True, timeout=120)
    lines = run.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[1:2] == ["hotkeys"])
    return lines[at:at + 2]


def test_doctor_on_wayland_without_and_with_the_portal(bus: str) -> None:
    line, fix = doctor_hotkeys(wayland_env(bus))
    # A warning, not a failure: the desktop's own shortcuts can run `dictate toggle` instead.
    assert line.startswith("warn") and "push-to-talk is impossible" in line, line
    assert "fix: bind `dictate toggle`" in fix
    proc = start_portal(bus)
    try:
        line = doctor_hotkeys(wayland_env(bus))[0]
        assert line.startswith("ok") and "portal: Wayland: the desktop's GlobalShortcuts portal" in line, line
        assert "push-to-talk works" in line
    finally:
        proc.terminate()
        proc.wait(timeout=5)
