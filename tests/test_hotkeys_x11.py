"""The real X11 hotkey listener on a private Xvfb, driven by xdotool chords (XTest events that the
server delivers exactly as it delivers a keyboard's, autorepeat included)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import pytest

from dictate.config import Config
from dictate.hotkeys import HotkeyBindings, HotkeyError, create_listener, modifiers_down, wait_modifiers_released
from dictate.hotkeys.x11 import X11HotkeyListener
from dictate.types import Command, CommandKind, RecordingMode
from tests.support.xserver import XServer, xserver  # noqa: F401  (fixture)

pytest.importorskip("Xlib", reason="python-xlib is a runtime dependency on Linux")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 backend")

CHORD = "<ctrl>+<alt>+space"
CANCEL = "<ctrl>+<alt>+<shift>+space"
SETTLE_S = 0.3  # after the expected commands, how long no further command may arrive


class Recorder:
    def __init__(self) -> None:
        self.q: "queue.Queue[Command]" = queue.Queue()

    def put(self, command: Command) -> None:
        self.q.put(command)

    def take(self, n: int, timeout_s: float = 5.0) -> list[CommandKind]:
        """Exactly `n` commands: the first n within the timeout, then nothing more for SETTLE_S."""
        got = []
        deadline = time.monotonic() + timeout_s
        while len(got) < n:
            try:
                got.append(self.q.get(timeout=max(0.01, deadline - time.monotonic())).kind)
            except queue.Empty:
                raise AssertionError(f"expected {n} commands, got {got}") from None
        time.sleep(SETTLE_S)
        while not self.q.empty():
            got.append(self.q.get_nowait().kind)
        return got


def listen(x: XServer, mode: RecordingMode, dictate: str = CHORD, cancel: str | None = CANCEL):
    rec = Recorder()
    listener = X11HotkeyListener(HotkeyBindings(dictate, cancel), mode, rec.put, display=x.display)
    listener.start()
    return listener, rec


def lock_state(x: XServer) -> int:
    from Xlib import display

    d = display.Display(x.display)
    try:
        return d.screen().root.query_pointer().mask
    finally:
        d.close()


def test_push_to_talk_tap_gives_down_then_up(xserver: XServer) -> None:
    listener, rec = listen(xserver, RecordingMode.PUSH_TO_TALK)
    try:
        xserver.xdotool("key", "ctrl+alt+space")
        assert rec.take(2) == [CommandKind.PTT_DOWN, CommandKind.PTT_UP]
        xserver.xdotool("key", "ctrl+alt+space")
        assert rec.take(2) == [CommandKind.PTT_DOWN, CommandKind.PTT_UP]
    finally:
        listener.stop()


def test_push_to_talk_held_with_autorepeat_gives_exactly_one_down_and_one_up(xserver: XServer) -> None:
    from Xlib import X, display

    d = display.Display(xserver.display)
    d.change_keyboard_control(auto_repeat_mode=X.AutoRepeatModeOn)
    d.sync()
    d.close()
    listener, rec = listen(xserver, RecordingMode.PUSH_TO_TALK)
    try:
        xserver.xdotool("keydown", "ctrl+alt+space")
        assert rec.take(1) == [CommandKind.PTT_DOWN]
        time.sleep(1.0)
        assert rec.q.empty()
        xserver.xdotool("keyup", "space")
        assert rec.take(1) == [CommandKind.PTT_UP]
        xserver.xdotool("keyup", "ctrl+alt")
        assert rec.take(0) == []
        # The server really repeated the key while it was held (else this proves nothing).
        assert listener.machine.autorepeats >= 5
    finally:
        listener.stop()


def test_push_to_talk_ends_when_a_modifier_is_let_go_first(xserver: XServer) -> None:
    listener, rec = listen(xserver, RecordingMode.PUSH_TO_TALK)
    try:
        xserver.xdotool("keydown", "ctrl+alt+space")
        assert rec.take(1) == [CommandKind.PTT_DOWN]
        xserver.xdotool("keyup", "ctrl")
        assert rec.take(1) == [CommandKind.PTT_UP]
        xserver.xdotool("keyup", "space", "keyup", "alt")
        assert rec.take(0) == []
    finally:
        listener.stop()


def test_toggle_gives_one_toggle_per_press(xserver: XServer) -> None:
    listener, rec = listen(xserver, RecordingMode.TOGGLE)
    try:
        for _ in range(3):
            xserver.xdotool("key", "ctrl+alt+space")
        assert rec.take(3) == [CommandKind.TOGGLE] * 3
        xserver.xdotool("keydown", "ctrl+alt+space")  # held: still one
        time.sleep(0.8)
        xserver.xdotool("keyup", "space", "keyup", "ctrl+alt")
        assert rec.take(1) == [CommandKind.TOGGLE]
    finally:
        listener.stop()


def test_cancel_chord_gives_cancel(xserver: XServer) -> None:
    listener, rec = listen(xserver, RecordingMode.TOGGLE)
    try:
        xserver.xdotool("key", "ctrl+alt+space", "key", "ctrl+alt+shift+space")
        assert rec.take(2) == [CommandKind.TOGGLE, CommandKind.CANCEL]
    finally:
        listener.stop()


def test_chords_still_work_with_numlock_and_capslock_on(xserver: XServer) -> None:
    from Xlib import X

    listener, rec = listen(xserver, RecordingMode.PUSH_TO_TALK, dictate="<super>+d", cancel="F9")
    try:
        xserver.xdotool("key", "Num_Lock")
        assert lock_state(xserver) & X.Mod2Mask, "NumLock did not turn on"
        xserver.xdotool("key", "super+d", "key", "F9")
        assert rec.take(3) == [CommandKind.PTT_DOWN, CommandKind.PTT_UP, CommandKind.CANCEL]
        xserver.xdotool("key", "Caps_Lock")
        assert lock_state(xserver) & X.LockMask, "CapsLock did not turn on"
        xserver.xdotool("key", "super+d")
        assert rec.take(2) == [CommandKind.PTT_DOWN, CommandKind.PTT_UP]
    finally:
        listener.stop()


def test_other_keys_give_nothing(xserver: XServer) -> None:
    listener, rec = listen(xserver, RecordingMode.TOGGLE)
    try:
        xserver.xdotool("key", "space", "key", "ctrl+space", "key", "alt+space", "key", "ctrl+alt+a",
                        "key", "super+space", "key", "ctrl+alt+super+space", "key", "shift+space")
        assert rec.take(0) == []
        xserver.xdotool("key", "ctrl+alt+space")  # and the listener is still alive
        assert rec.take(1) == [CommandKind.TOGGLE]
    finally:
        listener.stop()


def test_stop_releases_the_grab_for_the_next_listener(xserver: XServer) -> None:
    first, rec1 = listen(xserver, RecordingMode.TOGGLE)
    first.stop()
    first.stop()  # twice is harmless
    assert not [t for t in threading.enumerate() if t.name == "hotkeys-x11"]
    second, rec2 = listen(xserver, RecordingMode.TOGGLE)
    try:
        xserver.xdotool("key", "ctrl+alt+space")
        assert rec2.take(1) == [CommandKind.TOGGLE]
        assert rec1.q.empty()
    finally:
        second.stop()


GRABBER = """
import sys
from Xlib import X, XK, display
d = display.Display(sys.argv[1])
root = d.screen().root
code = d.keysym_to_keycode(XK.string_to_keysym("space"))
root.grab_key(code, X.ControlMask | X.Mod1Mask, False, X.GrabModeAsync, X.GrabModeAsync)
d.sync()
print("grabbed", flush=True)
sys.stdin.read()
"""


def test_a_key_grabbed_by_another_program_gives_a_clear_error(xserver: XServer) -> None:
    other = subprocess.Popen([sys.executable, "-c", GRABBER, xserver.display], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "grabbed"
        rec = Recorder()
        listener = X11HotkeyListener(HotkeyBindings(CHORD, CANCEL), RecordingMode.TOGGLE, rec.put,
                                     display=xserver.display)
        with pytest.raises(HotkeyError) as info:
            listener.start()
        message = str(info.value)
        assert "<ctrl>+<alt>+<space> is already taken by another program" in message
        assert "\n" not in message
        # Nothing half-grabbed is left behind: the cancel chord, grabbed in the same try, is free.
        free = X11HotkeyListener(HotkeyBindings(CANCEL, None), RecordingMode.TOGGLE, rec.put,
                                 display=xserver.display)
        free.start()
        free.stop()
    finally:
        other.stdin.close()
        other.wait(timeout=5)


def test_no_display_gives_a_clear_error() -> None:
    listener = X11HotkeyListener(HotkeyBindings(CHORD), RecordingMode.TOGGLE, lambda c: None, display=":999")
    with pytest.raises(HotkeyError, match="cannot open the X display :999"):
        listener.start()


def test_create_listener_from_config_on_x11(xserver: XServer) -> None:
    cfg = Config()
    cfg.hotkeys.mode = "toggle"
    cfg.hotkeys.dictate = "<super>+d"
    rec = Recorder()
    listener = create_listener(cfg, rec.put, env=xserver.env)
    assert isinstance(listener, X11HotkeyListener)
    listener.start()
    try:
        xserver.xdotool("key", "super+d", "key", "ctrl+alt+shift+space")  # the default cancel chord
        assert rec.take(2) == [CommandKind.TOGGLE, CommandKind.CANCEL]
        assert [t.name for t in threading.enumerate()].count("hotkeys-x11") == 1
    finally:
        listener.stop()


def test_modifiers_down_and_wait_until_released(xserver: XServer) -> None:
    assert modifiers_down(xserver.display) is False
    xserver.xdotool("keydown", "ctrl")
    try:
        assert modifiers_down(xserver.display) is True
        assert wait_modifiers_released(0.2, xserver.display) is False
        threading.Timer(0.4, lambda: xserver.xdotool("keyup", "ctrl")).start()
        start = time.monotonic()
        assert wait_modifiers_released(5.0, xserver.display) is True
        assert 0.3 < time.monotonic() - start < 3.0
    finally:
        xserver.xdotool("keyup", "ctrl")
    xserver.xdotool("keydown", "super")
    assert modifiers_down(xserver.display) is True
    xserver.xdotool("keyup", "super", "key", "Num_Lock")  # a lock being on is not a held modifier
    assert modifiers_down(xserver.display) is False
    assert modifiers_down(":999") is False  # cannot tell: not held


def doctor_hotkeys(env: dict[str, str]) -> list[str]:
    from tests.conftest import REPO, dictate_env

    run = subprocess.run([sys.executable, "-m", "dictate", "doctor"], cwd=REPO, env=dictate_env(env),
                         capture_output=True, text=True, timeout=120)
    lines = run.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[1:2] == ["hotkeys"])
    return lines[at:at + 2]


def test_doctor_reports_the_x11_backend_and_a_key_taken_by_another_program(xserver: XServer) -> None:
    line = doctor_hotkeys(xserver.env)[0]
    assert line.startswith("ok") and "x11: X11 display" in line and "push-to-talk works" in line, line
    assert "<ctrl>+<alt>+<space> (push-to-talk)" in line
    other = subprocess.Popen([sys.executable, "-c", GRABBER, xserver.display], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "grabbed"
        line, fix = doctor_hotkeys(xserver.env)
        assert line.startswith("FAIL") and "already taken by another program" in line, line
        assert fix.strip().startswith("fix: choose another [hotkeys] dictate")
    finally:
        other.stdin.close()
        other.wait(timeout=5)
    # The doctor gave its test grab back: a listener can take the chord now.
    listener, rec = listen(xserver, RecordingMode.TOGGLE)
    listener.stop()


def test_listener_survives_its_x_server_going_away() -> None:
    x = XServer().start()
    rec = Recorder()
    listener = X11HotkeyListener(HotkeyBindings(CHORD), RecordingMode.TOGGLE, rec.put, display=x.display)
    try:
        listener.start()
        x.close()  # the desktop session ends under the app
        time.sleep(0.3)
        start = time.monotonic()
        listener.stop()
        assert time.monotonic() - start < 2.0
        assert not [t for t in threading.enumerate() if t.name == "hotkeys-x11"]
    finally:
        x.close()
