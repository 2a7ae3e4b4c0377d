"""The modifier guard, in one place: whether Shift/Ctrl/Alt/Super (AltGr on X11) is physically held,
and waiting until none is, so that typed text never combines with the hotkey's still-held
modifiers (which would fire shortcuts in the focused window, or the hotkey itself).

Each platform answers "is a modifier down?" in its own module (X11Desktop in x11.py, windows.py,
macos.py); the waiting is done here only. The sinks use `ModifierGuard`; `modifiers_down()` and
`wait_modifiers_released()` are for callers without a sink (the hotkeys package re-exports them)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Mapping

from dictate.errors import OutputError

log = logging.getLogger(__name__)

POLL_S = 0.01


def wait_released(is_down: Callable[[], bool], timeout_s: float, *, poll_s: float = POLL_S,
                  stop: threading.Event | None = None) -> bool:
    """Poll `is_down` until it says False: True then; False when `timeout_s` passed first (or
    `stop` was set)."""
    deadline = time.monotonic() + timeout_s
    while is_down():
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        time.sleep(poll_s)
    return True


class ModifierGuard:
    """What a sink runs before it sends keys: it never types while a modifier is held.

    Typing "anyway" after a timeout (even with xdotool's --clearmodifiers, which fakes the
    modifiers' release and press again) lets held Ctrl/Alt turn text into shortcuts, or into our
    own hotkey chord, whose listener then sees a press or a release that the user never made. So
    `wait()` waits as long as a modifier is down; after `warn_after_s` it says so in the log.
    `close()` ends a wait: `wait()` then raises OutputError (the text is not typed; it is kept in
    the recent dictations)."""

    def __init__(self, is_down: Callable[[], bool], warn_after_s: float) -> None:
        self.is_down = is_down
        self.warn_after_s = warn_after_s
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    def wait(self) -> None:
        self._idle.clear()
        try:
            if wait_released(self._down, self.warn_after_s, stop=self._stop):
                return
            if not self._stop.is_set():
                log.warning("modifier keys still held after %.1f s: typing waits until they are released",
                            self.warn_after_s)
                while not wait_released(self._down, 3600.0, stop=self._stop) and not self._stop.is_set():
                    pass
            if self._down():
                raise OutputError("not typed: modifier keys were still held when typing stopped")
        finally:
            self._idle.set()

    def _down(self) -> bool:
        try:
            return self.is_down()
        except Exception:
            if self._stop.is_set():  # the sink is closing its connection
                return True
            raise

    def close(self, timeout_s: float = 1.0) -> None:
        """End a wait in progress (the sink is closing) and let it return before the sink closes
        the connection the probe uses."""
        self._stop.set()
        self._idle.wait(timeout_s)


def _probe(display: Any = None, env: Mapping[str, str] | None = None) -> tuple[Callable[[], bool], Callable[[], None]]:
    """(is_down, close) for this platform. `display` is an X display name, an open X11Desktop or
    None for env's DISPLAY. Where nothing can be asked (no display, Wayland) nothing is held."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        from dictate.output.windows import modifiers_down as windows_down
        return windows_down, lambda: None
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        from dictate.output.macos import modifiers_down as mac_down
        return mac_down, lambda: None
    from dictate.output.x11 import X11Desktop

    if isinstance(display, X11Desktop):
        return display.modifiers_down, lambda: None
    env = dict(os.environ if env is None else env)
    if display is not None:
        env["DISPLAY"] = str(display)
    try:
        desktop = X11Desktop(env)
    except OutputError:
        return (lambda: False), lambda: None
    return desktop.modifiers_down, desktop.close


def modifiers_down(display: Any = None, *, env: Mapping[str, str] | None = None) -> bool:
    """True while a modifier key is physically held; False when it cannot tell."""
    is_down, close = _probe(display, env)
    try:
        return is_down()
    finally:
        close()


def wait_modifiers_released(timeout_s: float = 1.0, display: Any = None, poll_s: float = POLL_S, *,
                            env: Mapping[str, str] | None = None) -> bool:
    """Wait until no modifier is held, at most `timeout_s`: True if released (or none was held or
    nothing can tell), False on timeout. One display connection serves the whole wait."""
    is_down, close = _probe(display, env)
    try:
        return wait_released(is_down, timeout_s, poll_s=poll_s)
    finally:
        close()
