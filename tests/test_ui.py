"""The Qt shell's parts under QT_QPA_PLATFORM=offscreen: icons found through importlib.resources,
events crossing from another thread to the GUI thread, the menu's entries per state, the stand-in
window's buttons, and the cues played through a real sound server. The whole app on a real X
server is in test_app.py."""

from __future__ import annotations

import gc
import importlib.resources
import os
import subprocess
import sys
import threading
import time
import wave

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QThread  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage  # noqa: E402

from dictate.types import Command, CommandKind, Event, EventKind  # noqa: E402
from dictate.ui import resources  # noqa: E402
from dictate.ui.bridge import Bridge  # noqa: E402
from dictate.ui.sounds import CUES, CuePlayer, read_wav, synthesize  # noqa: E402
from dictate.ui.tray import (Actions, ShellState, WindowShell, hotkey_label, menu_entries,  # noqa: E402
                             no_tray_reason, state_icon)
from tests.conftest import REPO  # noqa: E402
from tests.support.pulse import virtual_mic  # noqa: E402,F401 - fixture


class RecordingController:
    """Stands in for the controller in these GUI-logic tests: keeps the Commands, and lets a test
    publish Events from a thread of its own, as the controller does."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.subscribers = []

    def submit(self, command: Command) -> None:
        self.commands.append(command)

    def subscribe(self, callback) -> None:
        self.subscribers.append(callback)

    def publish_from_thread(self, *events: Event) -> None:
        def run() -> None:
            for e in events:
                for cb in self.subscribers:
                    cb(e)
        t = threading.Thread(target=run, name="dictate-controller")
        t.start()
        t.join()


@pytest.fixture
def controller() -> RecordingController:
    return RecordingController()


@pytest.fixture
def bridge(qapp, controller) -> Bridge:
    b = Bridge(controller)
    yield b
    b.close()


# --- resources ---------------------------------------------------------------------------------

def test_every_icon_and_sound_is_found_through_importlib_resources(qapp):
    root = importlib.resources.files("dictate.resources")
    colours = set()
    for name in (*resources.STATES, resources.APP_ICON):
        assert (root / "icons" / f"{name}.svg").is_file()
        icon = state_icon(name)
        assert not icon.isNull()
        image = icon.pixmap(22, 22).toImage()
        assert image.width() == 22
        # Opaque where the glyph's disc is, transparent in the corner.
        assert image.pixelColor(2, 11).alpha() > 200 or name == resources.APP_ICON
        assert image.pixelColor(0, 0).alpha() < 60
        colours.add(image.pixelColor(3, 11).name())
    assert len(colours) >= 5  # the states are told apart by colour (idle and error share grey + badge)
    for name in CUES:
        audio, rate = read_wav(resources.sound(name).read_bytes())
        assert rate == 22_050 and 0.1 < audio.shape[0] / rate < 0.3
        assert 0.2 < abs(audio).max() < 0.5  # audible, not loud


def test_committed_cues_are_what_the_synthesizer_makes():
    for name in CUES:
        with wave.open(str(REPO / "resources" / "sounds" / f"{name}.wav"), "rb") as w:
            assert w.readframes(w.getnframes()) == synthesize(name).tobytes()


@pytest.mark.slow
def test_installed_wheel_carries_the_resources(tmp_path):
    """`pip wheel .` then install into a fresh venv: the icons come from importlib.resources
    there, outside the source tree."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("dictate-*.whl"))
    venv = tmp_path / "venv"
    # The system site supplies numpy & co.; dictate itself must come from the wheel.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300,
                   capture_output=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "dictate/resources/icons/idle.svg" in names and "dictate/resources/sounds/start.wav" in names
    assert not any(n.startswith("dictate/resources/screenshots") for n in names)
    probe = ("import importlib.resources as r, sys\n"
             "root = r.files('dictate.resources')\n"
             "print(root)\n"
             "print(sorted(p.name for p in (root / 'icons').iterdir()))\n")
    out = subprocess.run([str(py), "-I", "-c", probe], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert str(REPO) not in out.splitlines()[0] and site in out.splitlines()[0]
    assert "'listening.svg'" in out and "'dictate.svg'" in out


# --- bridge ------------------------------------------------------------------------------------

def test_events_from_the_controller_thread_arrive_on_the_gui_thread(qtbot, bridge, controller):
    seen = []
    gui = QThread.currentThread()
    bridge.state_changed.connect(lambda s: seen.append(("state", s, QThread.currentThread() is gui)))
    bridge.committed.connect(lambda t: seen.append(("committed", t, QThread.currentThread() is gui)))
    bridge.error.connect(lambda m, a: seen.append(("error", (m, a), QThread.currentThread() is gui)))
    bridge.level.connect(lambda d: seen.append(("level", d, QThread.currentThread() is gui)))
    controller.publish_from_thread(
        Event(EventKind.STATE, {"state": "listening"}),
        Event(EventKind.LEVEL, {"dbfs": -20.5}),
        Event(EventKind.COMMITTED, {"text": " hello"}),
        Event(EventKind.ERROR, {"message": "no microphone found", "action": "connect one"}),
    )
    assert seen == []  # queued: nothing ran on the controller's thread
    qtbot.waitUntil(lambda: len(seen) == 4, timeout=2000)
    assert seen == [("state", "listening", True), ("level", -20.5, True), ("committed", " hello", True),
                    ("error", ("no microphone found", "connect one"), True)]


def test_many_events_leave_pythons_true_and_false_alone(qtbot, bridge, controller):
    """PySide6 6.12.0's Signal.emit() loses a reference to True per call, which aborts a long
    running app; the bridge's path (postEvent, then plain hooks) must not."""
    got = []
    bridge.level.connect(got.append)
    bridge.state_changed.connect(got.append)
    events = [Event(EventKind.LEVEL, {"dbfs": -30.0}), Event(EventKind.STATE, {"state": "idle"})] * 1000
    controller.publish_from_thread(*events[:10])
    qtbot.waitUntil(lambda: len(got) == 10)
    # The defect loses one reference per event (2000 here). Garbage from earlier tests, collected
    # meanwhile, also drops references to True and False: no collection while measuring.
    gc.collect()
    gc.disable()
    try:
        before = sys.getrefcount(True), sys.getrefcount(False)
        controller.publish_from_thread(*events)
        qtbot.waitUntil(lambda: len(got) == 10 + len(events), timeout=30_000)
        after = sys.getrefcount(True), sys.getrefcount(False)
    finally:
        gc.enable()
    assert abs(after[0] - before[0]) < 500 and abs(after[1] - before[1]) < 500, (before, after)


def test_bridge_sends_commands_and_drops_events_once_closed(qtbot, bridge, controller):
    bridge.submit(CommandKind.NOTE_START)
    assert controller.commands == [Command(CommandKind.NOTE_START)]
    seen = []
    bridge.state_changed.connect(seen.append)
    bridge.close()
    controller.publish_from_thread(Event(EventKind.STATE, {"state": "idle"}))
    qtbot.wait(100)
    assert seen == []


# --- menu entries ------------------------------------------------------------------------------

def labels(entries):
    return [(e.key, e.label, e.enabled) for e in entries]


def test_menu_follows_the_state(qapp, bridge, tmp_path):
    actions = Actions(bridge, tmp_path / "notes")
    s = ShellState(hotkey="<ctrl>+<alt>+space", push_to_talk=True)
    assert labels(menu_entries(s, actions))[:2] == [
        ("dictation", "Start dictation (model loading) (hold Ctrl+Alt+Space)", True),
        ("note", "Start long note", True)]
    s.set_state("listening")
    s.add_committed(" first words")
    s.add_committed(" and more.")
    assert [e.label for e in menu_entries(s, actions)][:2] == ["Stop dictation (release Ctrl+Alt+Space)",
                                                               "Cancel dictation (discard)"]
    s.set_state("transcribing")
    assert labels(menu_entries(s, actions))[0] == ("dictation", "Transcribing the last words…", False)
    s.set_state("idle")
    recent = next(e for e in menu_entries(s, actions) if e.key == "recent")
    assert [c.label for c in recent.children] == ["first words and more."]
    s.set_state("note-recording", now=100.0)
    note = next(e for e in menu_entries(s, actions, now=183.0) if e.key == "note")
    assert note.label == "Stop long note (01:23)"
    assert next(e for e in menu_entries(s, actions) if e.key == "dictation").enabled is False
    s.set_error("no microphone found", "connect a microphone")
    s.state = "error"
    first = menu_entries(s, actions)[0]
    assert first.key == "error" and "no microphone found — connect a microphone" in first.label
    toggle = ShellState(hotkey="<super>+d", push_to_talk=False, state="idle")
    assert menu_entries(toggle, actions)[0].label == "Start dictation (Super+D)"


def test_recent_dictations_and_note_time_come_from_the_controller_when_given(qapp, bridge, tmp_path):
    actions = Actions(bridge, tmp_path / "notes")
    s = ShellState(state="idle", recent_source=lambda: ["from the history", " "],
                   elapsed_source=lambda: 3725.0)
    recent = next(e for e in menu_entries(s, actions) if e.key == "recent")
    assert [c.label for c in recent.children] == ["from the history"]
    s.set_state("note-recording")
    assert next(e for e in menu_entries(s, actions) if e.key == "note").label == "Stop long note (1:02:05)"


def test_hotkey_labels_and_no_tray_reasons():
    assert hotkey_label("<ctrl>+<alt>+space") == "Ctrl+Alt+Space"
    assert hotkey_label("<ctrl>+<shift>+f9") == "Ctrl+Shift+F9"
    assert "AppIndicator" in no_tray_reason({"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "ubuntu:GNOME"})
    assert "Wayland" in no_tray_reason({"XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": "sway"})
    assert "notification area" in no_tray_reason({"XDG_SESSION_TYPE": "x11"})


# --- the stand-in window -----------------------------------------------------------------------

def test_no_tray_window_buttons_drive_the_controller(qtbot, bridge, controller, tmp_path):
    actions = Actions(bridge, tmp_path / "notes")
    quits = []
    actions.quit_requested.connect(lambda: quits.append(True))
    shell = WindowShell(bridge, actions, ShellState(), "nothing on this desktop provides one")
    qtbot.addWidget(shell.window)
    shell.show()
    assert "No system tray: nothing on this desktop provides one" in shell.window.findChild(
        type(shell._state), "reason").text()
    controller.publish_from_thread(Event(EventKind.STATE, {"state": "idle"}))
    qtbot.waitUntil(lambda: shell.model.state == "idle")
    buttons = shell.buttons()
    assert set(buttons) == {"dictation", "note", "notes-folder", "quit"}
    buttons["dictation"].click()
    buttons["note"].click()
    assert [c.kind for c in controller.commands] == [CommandKind.START, CommandKind.NOTE_START]

    controller.publish_from_thread(Event(EventKind.STATE, {"state": "listening"}),
                                   Event(EventKind.COMMITTED, {"text": " a dictation"}),
                                   Event(EventKind.STATE, {"state": "idle"}))
    qtbot.waitUntil(lambda: "copy:0" in shell.buttons())
    shell.buttons()["copy:0"].click()
    assert QGuiApplication.clipboard().text() == "a dictation"

    controller.publish_from_thread(Event(EventKind.ERROR, {"message": "the model is missing",
                                                           "action": "run `dictate models download tiny`"}),
                                   Event(EventKind.STATE, {"state": "error"}))
    qtbot.waitUntil(lambda: "the model is missing" in shell._state.text())
    assert "dictate models download tiny" in shell._state.text()
    assert shell.icon_name() == "error"
    image: QImage = shell.window.grab().toImage()
    assert image.width() > 200 and image.height() > 150
    image.save(str(tmp_path / "no-tray-window-error.png"))

    shell.window.close()
    assert quits == [True]


def test_offscreen_has_no_tray_so_the_window_stands_in(qapp, bridge, tmp_path):
    from PySide6.QtWidgets import QSystemTrayIcon

    from dictate.ui.tray import create_shell

    assert not QSystemTrayIcon.isSystemTrayAvailable()
    shell = create_shell(bridge, Actions(bridge, tmp_path), ShellState())
    assert isinstance(shell, WindowShell)
    shell.window.deleteLater()


def test_notes_folder_is_created_when_opened(qapp, bridge, tmp_path):
    folder = tmp_path / "my notes"
    Actions(bridge, folder).open_notes_folder()
    assert folder.is_dir()


# --- sounds ------------------------------------------------------------------------------------

def test_cues_play_through_a_real_sound_server(virtual_mic):
    player = CuePlayer(enabled=True)
    try:
        player.play("start")
        player.play("stop")
        deadline = time.monotonic() + 10
        while player.played != ["start", "stop"] and time.monotonic() < deadline and player.enabled:
            time.sleep(0.05)
        assert player.played == ["start", "stop"]
    finally:
        player.close()


def test_cues_switched_off_or_without_a_device_do_not_fail(monkeypatch, tmp_path):
    off = CuePlayer(enabled=False)
    off.play("start")
    assert off._thread is None
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/none")
    # A device-less PortAudio is a child process's business (PortAudio lists devices once).
    code = ("import time\n"
            "from dictate.ui.sounds import CuePlayer\n"
            "p = CuePlayer(True)\n"
            "p.play('start')\n"
            "t = time.monotonic()\n"
            "while p.enabled and time.monotonic() - t < 10: time.sleep(0.05)\n"
            "p.close()\n"
            "print(p.enabled, p.played)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/none", "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:1] == ["False"]
    assert "cues are off for this run" in out.stderr
