"""The real tray app (`python -m dictate`) on a real X server: Xvfb with the trayer tray host,
the virtual microphone, and xdotool for the mouse and keys. The app's state is read over its
real IPC socket; what it typed comes out of the stdout sink.

Screenshots of the tray menu and the stand-in window are saved under the test's tmp dir; with
DICTATE_UPDATE_SCREENSHOTS=1 they are also copied to resources/screenshots/ (the README's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dictate import ipc
from dictate.config import Paths
from tests.conftest import REPO, dictate_env
from tests.support.pulse import virtual_mic  # noqa: F401 - fixture
from tests.support.scripted_engine import build_script
from tests.support.xserver import XServer, wait_for, xserver, xserver_with_tray  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("trayer") or not shutil.which("xdotool"),
                                reason="needs Xvfb, trayer and xdotool (packaging/install-system-deps.sh --test)")

TONE = "tests.support.tone_engine:make"
SCREENSHOTS = REPO / "resources" / "screenshots"


def keep_screenshot(path: Path) -> None:
    if os.environ.get("DICTATE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


class App:
    """A `python -m dictate` process; stderr (-v) and stdout go to files in `folder`."""

    def __init__(self, x: XServer, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.x = x
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.err_path = folder / "app.err"
        self.out_path = folder / "app.out"
        full_env = dictate_env({**x.env, **(env or {})})
        full_env.pop("QT_QPA_PLATFORM", None)  # the real xcb plugin, whatever other tests set
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "dictate", "-v", *args], cwd=REPO, env=full_env,
                                     stdout=self.out_path.open("w"), stderr=self.err_path.open("w"))

    @property
    def log(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def typed(self) -> str:
        return self.out_path.read_text(errors="replace")

    def status(self) -> dict:
        try:
            # The CLI's own default wait: a loaded 2-core machine can take seconds to schedule
            # the app's threads while it starts.
            return ipc.request(Paths.default(), {"command": "status"}, timeout_s=5.0)
        except ipc.NotRunning:
            return {}

    def send(self, command: str) -> dict:
        return ipc.request(Paths.default(), {"command": command}, timeout_s=5.0)

    def wait_state(self, state: str, timeout_s: float = 60.0) -> dict:
        def check():
            assert self.proc.poll() is None, f"the app exited ({self.proc.returncode}):\n{self.log}"
            s = self.status()
            return s if s.get("state") == state else None
        return wait_for(check, timeout_s, 0.05, f"state {state!r} (log:\n{self.log[-3000:]})")

    def tray_icon(self, timeout_s: float = 15.0) -> int:
        """The icon's window, once trayer has embedded and mapped it."""
        def find():
            assert self.proc.poll() is None, f"the app exited ({self.proc.returncode}):\n{self.log}"
            for panel in self.x.search("--name", "^panel$"):
                for wid, name in self.x.children(panel):
                    if name == "dictate" and self.x.viewable(wid):
                        return wid
            return None
        return wait_for(find, timeout_s, 0.02, "the tray icon")

    def visible_windows(self) -> set[int]:
        return set(self.x.search("--onlyvisible", "--class", "dictate"))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def click(x: XServer, wid: int, button: int) -> None:
    left, top, w, h = x.geometry(wid)
    x.xdotool("mousemove", str(left + w // 2), str(top + h // 2), "click", str(button))


def open_menu(app: App, icon: int) -> int:
    """Right-click the icon; returns the menu's window once it is mapped."""
    before = app.visible_windows()
    click(app.x, icon, 3)
    menu = wait_for(lambda: (app.visible_windows() - before - {icon}) or None, 10, 0.05, "the tray menu")
    time.sleep(0.3)  # drawn
    return max(menu)


def around(x: XServer, *wids: int, margin: int = 12) -> tuple[int, int, int, int]:
    """The screen region holding these windows, with a margin: what a screenshot should show."""
    boxes = [x.geometry(w) for w in wids]
    left = max(0, min(b[0] for b in boxes) - margin)
    top = max(0, min(b[1] for b in boxes) - margin)
    right = min(1280, max(b[0] + b[2] for b in boxes) + margin)
    bottom = min(800, max(b[1] + b[3] for b in boxes) + margin)
    return left, top, right - left, bottom - top


def menu_lines(app: App) -> list[str]:
    return [line.split("ui: menu: ", 1)[1] for line in app.log.splitlines() if "ui: menu: " in line]


@pytest.fixture
def app_config(isolated_dirs: Path) -> Path:
    """Typing goes to the app's stdout (so the test can read it, and nothing else is typed into)."""
    cfg = isolated_dirs / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[output]\nbackend = "stdout"\ntrailing_space = false\n')
    return cfg


def test_tray_icon_menu_dictation_recent_copy_and_quit(xserver_with_tray, virtual_mic, app_config, tmp_path):
    x = xserver_with_tray
    app = App(x, tmp_path, "--engine", TONE, env=virtual_mic.env)
    try:
        icon = app.tray_icon()
        shown_s = time.monotonic() - app.started
        time.sleep(0.5)  # geometry is known before the icon is mapped and sized
        app.wait_state("idle")
        assert "ui: tray icon shown" in app.log
        assert shown_s < 15

        # The menu, rebuilt as it opens, offers dictation with the hotkey shown.
        menu = open_menu(app, icon)
        panel = x.search("--name", "^panel$")[0]
        x.screenshot(tmp_path / "tray-menu-first.png", around(x, menu, panel))
        left, top, w, h = x.geometry(menu)
        assert w > 100 and h > 60
        lines = menu_lines(app)
        assert lines[-1].startswith("Start dictation (hold Ctrl+Alt+Space) | Start long note | "
                                    "Recent dictations (none yet) | Open notes folder | Transcribe files… | "
                                    "History… | Settings… | Models… | Quit dictate"), lines

        # First item: start dictation.
        x.xdotool("key", "Down", "Return")
        app.wait_state("listening", 10)
        script = build_script([("speech", 2.5), ("silence", 0.3)], seed=3)
        assert virtual_mic.play(script.audio).wait(15)

        # A left click on the icon toggles: the dictation stops, its text is typed and kept.
        click(x, icon, 1)
        app.wait_state("idle", 20)
        wait_for(lambda: "Hz" in app.typed, 10, 0.1, "typed text")
        typed = app.typed.strip()

        # Reopened, the menu lists it under recent dictations; clicking it copies it.
        menu = open_menu(app, icon)
        assert "Recent dictations | " in menu_lines(app)[-1] and "(none yet)" not in menu_lines(app)[-1]
        before = app.visible_windows()
        x.xdotool("key", "Down", "Down", "Down", "Right")  # Recent dictations -> its submenu
        submenu = max(wait_for(lambda: app.visible_windows() - before or None, 5, 0.05, "the submenu"))
        time.sleep(0.3)
        x.screenshot(tmp_path / "tray-menu-recent.png", around(x, menu, submenu, panel))
        x.xdotool("key", "Return")
        wait_for(lambda: "ui: copied a recent dictation" in app.log, 5, 0.05, "the copy")
        clip = x.run("xclip", "-o", "-selection", "clipboard", check=False).stdout
        assert clip.strip() == typed

        # Quit is the last item (Up wraps to it).
        open_menu(app, icon)
        x.xdotool("key", "Up", "Return")
        assert app.proc.wait(20) == 0
        assert "ui: stopped" in app.log
    finally:
        app.stop()


def test_second_launch_hands_over_and_exits(xserver_with_tray, virtual_mic, app_config, tmp_path):
    x = xserver_with_tray
    first = App(x, tmp_path / "first", "--engine", TONE, env=virtual_mic.env)
    try:
        first.tray_icon()
        first.wait_state("idle")
        second = App(x, tmp_path / "second", "--engine", TONE, env=virtual_mic.env)
        assert second.proc.wait(20) == 0
        assert "already running" in second.log
        wait_for(lambda: "another launch asked to show the app" in first.log, 10, 0.05, "the hand-over")
        assert first.proc.poll() is None
        # `dictate toggle` from the command line drives the same app.
        assert first.send("start")["ok"]
        first.wait_state("listening", 10)
        assert first.send("cancel")["ok"]
        first.wait_state("idle", 10)
    finally:
        assert first.stop() == 0


def test_no_tray_window_stands_in_under_xvfb(xserver, virtual_mic, app_config, tmp_path):
    """Xvfb without a tray host: the small window appears, says why, and its buttons work."""
    x = xserver
    app = App(x, tmp_path, "--engine", TONE, env=virtual_mic.env)
    try:
        win = wait_for(lambda: app.visible_windows() or None, 15, 0.05, "the stand-in window")
        wid = max(win)
        app.wait_state("idle")
        assert "ui: no tray (" in app.log
        time.sleep(0.5)
        keep_screenshot(x.screenshot(tmp_path / "no-tray-window.png", around(x, wid, margin=0)))
        # The first button (Start dictation) has the focus: Space presses it.
        x.xdotool("windowfocus", "--sync", str(wid))
        time.sleep(0.5)  # Qt activates the window and gives the first button the focus
        x.xdotool("key", "space")
        app.wait_state("listening", 10)
        assert app.send("cancel")["ok"]
        app.wait_state("idle", 10)
        # Closing the window quits the app.
        x.close_window(wid)
        assert app.proc.wait(20) == 0
    finally:
        app.stop()


def test_a_tray_that_appears_after_start_takes_the_app_in(xserver, virtual_mic, app_config, tmp_path):
    """Started before the desktop's panel (as autostart can be): the stand-in window shows, and when
    a tray host starts later the app moves into it: the window goes, the icon comes, and it works."""
    x = xserver
    app = App(x, tmp_path, "--engine", TONE, env=virtual_mic.env)
    try:
        win = max(wait_for(lambda: app.visible_windows() or None, 15, 0.05, "the stand-in window"))
        app.wait_state("idle")
        assert "ui: no tray (" in app.log
        with x.tray():
            icon = app.tray_icon(15)
            wait_for(lambda: win not in app.visible_windows() or None, 10, 0.05, "the stand-in window to go")
            assert "ui: a system tray appeared: moved into it" in app.log
            click(x, icon, 1)  # left click toggles dictation, as on any tray icon
            app.wait_state("listening", 10)
            assert app.send("cancel")["ok"]
            app.wait_state("idle", 10)
            assert app.proc.poll() is None  # the window going did not quit the app
    finally:
        assert app.stop() == 0


def test_an_error_shows_in_the_icon_and_a_notification_with_the_action(xserver_with_tray, app_config, tmp_path):
    """No sound server at all: the microphone cannot open. The app still starts, the icon turns to
    the error state and a balloon says what to do."""
    x = xserver_with_tray
    app = App(x, tmp_path, "--engine", TONE, env={"PULSE_SERVER": f"unix:{tmp_path}/no-such-server"})
    try:
        icon = app.tray_icon()
        st = app.wait_state("error", 20)
        assert "no microphone" in st["message"]
        wait_for(lambda: "ui: error shown: no microphone" in app.log, 10, 0.05, "the notification")
        line = next(ln for ln in app.log.splitlines() if "ui: error shown: no microphone" in ln)
        assert "connect a microphone" in line  # the action to take
        # The balloon is a window of the app's beside the icon.
        balloon = wait_for(lambda: app.visible_windows() - {icon} or None, 10, 0.05, "the balloon")
        time.sleep(0.3)
        panel = x.search("--name", "^panel$")[0]
        keep_screenshot(x.screenshot(tmp_path / "tray-error.png", around(x, max(balloon), panel)))
        menu = open_menu(app, icon)
        assert menu_lines(app)[-1].startswith("⚠ no microphone"), menu_lines(app)[-1]
        x.xdotool("key", "Escape")
    finally:
        assert app.stop() == 0
