"""A real X desktop for tests: a private Xvfb (display number chosen by the server itself through
`-displayfd`, so parallel runs never collide), optionally a tray host (`trayer`), and helpers to
find windows, drive them with xdotool and take screenshots.

    with XServer() as x:                     # or the `xserver` fixture
        x.env                                # DISPLAY (and no XAUTHORITY) for subprocesses
        with x.tray():                       # a system tray that QSystemTrayIcon embeds into
            ...
        x.xdotool("key", "Down", "Return")
        x.screenshot(tmp_path / "screen.png")
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

SCREEN = "1280x800x24"


def have_xvfb() -> bool:
    return shutil.which("Xvfb") is not None


class XServer:
    def __init__(self, screen: str = SCREEN) -> None:
        self.screen = screen
        self.display: str = ""
        self._proc: subprocess.Popen | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> "XServer":
        if not have_xvfb():
            raise RuntimeError("Xvfb is not installed (packaging/install-system-deps.sh --test)")
        read_fd, write_fd = os.pipe()
        self._proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", self.screen, "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + timeout_s
        try:
            # Xvfb writes the display number followed by a newline once it accepts connections.
            while not number.endswith(b"\n"):
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise RuntimeError("Xvfb did not start")
                chunk = os.read(read_fd, 16)
                if not chunk:
                    raise RuntimeError("Xvfb exited before naming its display")
                number += chunk
        finally:
            os.close(read_fd)
        self.display = f":{int(number.strip())}"
        return self

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> "XServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client of this server (a copy of os.environ)."""
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("XAUTHORITY", None)
        env.pop("WAYLAND_DISPLAY", None)
        env["XDG_SESSION_TYPE"] = "x11"
        env.pop("QT_QPA_PLATFORM", None)
        return env

    # -- tray host --------------------------------------------------------------------------
    @contextmanager
    def tray(self, timeout_s: float = 10.0) -> Iterator[subprocess.Popen]:
        """A running `trayer` (freedesktop system tray host) at the top right of the screen."""
        proc = subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "200",
             "--heighttype", "pixel", "--height", "32", "--transparent", "false", "--tint", "0x303030",
             "--SetDockType", "true", "--expand", "true"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout_s
            while not self.tray_owner():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("trayer did not take the system tray selection")
                time.sleep(0.05)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def tray_owner(self) -> bool:
        """Whether something owns _NET_SYSTEM_TRAY_S0 (what Qt checks for isSystemTrayAvailable)."""
        from Xlib import X, display  # python-xlib

        d = display.Display(self.display)
        try:
            return d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S0")) != X.NONE
        finally:
            d.close()

    # -- windows ----------------------------------------------------------------------------
    def run(self, *argv: str, timeout_s: float = 10.0, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout_s,
                              check=check)

    def xdotool(self, *args: str, timeout_s: float = 10.0, check: bool = True) -> str:
        return self.run("xdotool", *args, timeout_s=timeout_s, check=check).stdout

    def search(self, *args: str) -> list[int]:
        """Window ids from `xdotool search ARGS` (empty when none match)."""
        out = self.xdotool("search", *args, check=False)
        return [int(w) for w in out.split()]

    def geometry(self, wid: int) -> tuple[int, int, int, int]:
        """(x, y, width, height) of a window in root coordinates."""
        out = self.run("xwininfo", "-id", str(wid)).stdout
        def num(label: str) -> int:
            m = re.search(rf"{label}:\s+(-?\d+)", out)
            assert m, out
            return int(m.group(1))
        return num("Absolute upper-left X"), num("Absolute upper-left Y"), num("Width"), num("Height")

    def viewable(self, wid: int) -> bool:
        return "IsViewable" in self.run("xwininfo", "-id", str(wid), check=False).stdout

    def children(self, wid: int | str = "root") -> list[tuple[int, str]]:
        """Every window under `wid` (recursively) as (id, name) pairs."""
        arg = ["-root"] if wid == "root" else ["-id", str(wid)]
        out = self.run("xwininfo", *arg, "-tree", check=False).stdout
        found = []
        for m in re.finditer(r"^\s+(0x[0-9a-f]+) (\"[^\"]*\"|\(has no name\))", out, re.M):
            found.append((int(m.group(1), 16), m.group(2).strip('"')))
        return found

    def close_window(self, wid: int) -> None:
        """Ask a window to close as a window manager's close button does (WM_DELETE_WINDOW)."""
        from Xlib import X, display
        from Xlib.protocol import event

        d = display.Display(self.display)
        try:
            window = d.create_resource_object("window", wid)
            protocols = d.intern_atom("WM_PROTOCOLS")
            message = event.ClientMessage(window=window, client_type=protocols,
                                          data=(32, [d.intern_atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]))
            window.send_event(message, event_mask=X.NoEventMask)
            d.flush()
        finally:
            d.close()

    def screenshot(self, path: Path, region: tuple[int, int, int, int] | None = None) -> Path:
        """The screen (or the (x, y, width, height) region of it) as PNG, grabbed through Qt in a
        child process (no imagemagick needed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        script = ("import sys\n"
                  "from PySide6.QtGui import QGuiApplication\n"
                  "app = QGuiApplication(['shot'])\n"
                  "x, y, w, h = (int(v) for v in sys.argv[2:6])\n"
                  "ok = app.primaryScreen().grabWindow(0, x, y, w, h).save(sys.argv[1])\n"
                  "sys.exit(0 if ok else 1)\n")
        env = self.env
        env["QT_QPA_PLATFORM"] = "xcb"
        x, y, w, h = region or (0, 0, -1, -1)
        subprocess.run([sys.executable, "-c", script, str(path), str(x), str(y), str(w), str(h)], env=env,
                       check=True, timeout=30, capture_output=True)
        return path


def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


@pytest.fixture
def xserver() -> Iterator[XServer]:
    """A private Xvfb for one test."""
    with XServer() as x:
        yield x


@pytest.fixture
def xserver_with_tray(xserver: XServer) -> Iterator[XServer]:
    """A private Xvfb with a system tray host running."""
    with xserver.tray():
        yield xserver
