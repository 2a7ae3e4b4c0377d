"""Desktop notifications over D-Bus with a real notification server: dunst on a private session
bus, drawing on Xvfb. The note-ready notification carries "Open"; `dunstctl action` invokes it as
a click would, and the action runs on the GUI thread. Without a server the notifier says so and
the tray's balloons are used."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QThread  # noqa: E402

from dictate.ui.notify import DesktopNotifications  # noqa: E402
from tests.support.xserver import XServer, wait_for  # noqa: E402

needs = pytest.mark.skipif(not shutil.which("dunst") or not shutil.which("dbus-daemon") or not shutil.which("Xvfb"),
                           reason="needs dunst, dbus-daemon and Xvfb (packaging/install-system-deps.sh --test)")


@pytest.fixture
def bus() -> Iterator[str]:
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = proc.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()


def _dunstctl(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["dunstctl", *args], env=env, capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


@needs
def test_note_ready_notification_with_open_through_a_real_server(qtbot, bus, tmp_path):
    from tests.test_app import keep_screenshot

    with XServer() as x:
        env = {**x.env, "DBUS_SESSION_BUS_ADDRESS": bus, "HOME": str(tmp_path)}
        conf = tmp_path / "dunstrc"
        conf.write_text("[global]\n    geometry = \"360x5-20+40\"\n    font = DejaVu Sans 10\n"
                        "    frame_width = 1\n    frame_color = \"#6a6a6a\"\n"
                        "[urgency_normal]\n    background = \"#2b2b30\"\n    foreground = \"#f0f0f0\"\n"
                        "    timeout = 0\n")
        dunst = subprocess.Popen(["dunst", "-config", str(conf)], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            n = DesktopNotifications({"DBUS_SESSION_BUS_ADDRESS": bus})
            # dunst takes its bus name once it is up.
            wait_for(lambda: n.start(), 15, 0.2, "dunst on the bus")
            assert "actions" in n.capabilities and "body" in n.capabilities
            opened = []
            gui = QThread.currentThread()
            n.notify("dictate: note ready", "Meeting with the design team\nnote saved",
                     action=("Open", lambda: opened.append(QThread.currentThread() is gui)))
            qtbot.waitUntil(lambda: bool(n.sent), timeout=10_000)
            wait_for(lambda: _dunstctl(env, "count", "displayed") == "1", 10, 0.1, "the bubble")
            time.sleep(0.5)
            keep_screenshot(x.screenshot(tmp_path / "notification.png", (1280 - 420, 0, 420, 140)))
            assert opened == []
            _dunstctl(env, "action", "0")  # as a click on the bubble does: the default action
            qtbot.waitUntil(lambda: bool(opened), timeout=10_000)
            assert opened == [True]  # once, on the GUI thread
            # A notification without an action closes without calling anything.
            n.notify("dictate: error", "no microphone found", error=True)
            qtbot.waitUntil(lambda: len(n.sent) == 2, timeout=10_000)
            assert n.sent[1] != n.sent[0]
            n.close()
        finally:
            dunst.terminate()
            dunst.wait(5)


def test_without_a_server_the_tray_is_used(bus):
    assert not DesktopNotifications({}).start()  # no bus at all
    assert not DesktopNotifications({"DBUS_SESSION_BUS_ADDRESS": bus}).start()  # a bus, nobody serving


@needs
def test_errors_go_to_the_desktop_notifications_with_their_action(qtbot, bus, tmp_path):
    """The shell's errors take the D-Bus path when the app found a server (dunst here)."""
    from dictate.types import Event, EventKind
    from dictate.ui.bridge import Bridge
    from dictate.ui.notify import create_notifier
    from dictate.ui.tray import Actions, ShellState, WindowShell
    from tests.test_overlay import Publisher

    with XServer() as x:
        env = {**x.env, "DBUS_SESSION_BUS_ADDRESS": bus, "HOME": str(tmp_path)}
        dunst = subprocess.Popen(["dunst"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pub = Publisher()
        bridge = Bridge(pub)
        try:
            shell = WindowShell(bridge, Actions(bridge, tmp_path), ShellState(), "test")
            notifier = wait_for(lambda: (lambda n: n if n.desktop else None)(
                create_notifier(shell, {"DBUS_SESSION_BUS_ADDRESS": bus})), 15, 0.2, "dunst on the bus")
            shell.desktop_notify = notifier.desktop.notify
            pub.publish(Event(EventKind.ERROR, {"message": "no microphone found", "action": "connect one"}))
            qtbot.waitUntil(lambda: bool(notifier.desktop.sent), timeout=10_000)
            wait_for(lambda: _dunstctl(env, "count", "displayed") == "1", 10, 0.1, "the bubble")
            _dunstctl(env, "close-all")  # closed notifications go to dunst's history, which it lists as JSON
            wait_for(lambda: "no microphone found" in _dunstctl(env, "history"), 10, 0.1, "the history")
            shown = _dunstctl(env, "history")
            assert "dictate: error" in shown and "connect one" in shown  # the action to take is in it
            assert shell.model.error == ("no microphone found", "connect one")
            notifier.close()
        finally:
            bridge.close()
            dunst.terminate()
            dunst.wait(5)
