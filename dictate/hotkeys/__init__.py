"""Global hotkeys: push-to-talk, toggle and cancel chords that put Commands on the controller's
queue, and nothing else.

    support(env=None) -> HotkeySupport         what works on this desktop (doctor, settings)
    create_listener(cfg, put, env=None)         the listener for this desktop, not started, or None
    listener.start() / listener.stop()          take the keys (raises HotkeyError) / give them back
    parse_binding("<ctrl>+<alt>+space")         -> Chord (ConfigError for a bad binding)
    modifiers_down() / wait_modifiers_released(timeout_s)   the typing modifier guard (dictate.output.modifiers)

Backends: X11 (XGrabKey via python-xlib), Wayland (the XDG GlobalShortcuts portal over D-Bus),
Windows and macOS (pynput). On a Wayland desktop without the portal there is no listener: the
user binds `dictate toggle` (or `dictate start` / `dictate stop`) in the desktop's own keyboard
shortcut settings, and push-to-talk is impossible because no key release reaches the app.

Cancel: `[hotkeys] cancel`, by default Ctrl+Alt+Shift+Space (the dictation chord plus Shift),
discards the dictation in progress. Ctrl+Alt+Backspace is avoided on purpose: where the X server's
"terminate" option is on, it kills the whole desktop session."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from dictate.errors import ConfigError
from dictate.output.modifiers import modifiers_down, wait_modifiers_released  # the one modifier guard
from dictate.hotkeys.base import HotkeyBindings, HotkeyError, HotkeyListener
from dictate.hotkeys.chords import Binding, Chord, ChordMachine, KeyEvent, bindings_for, parse_binding
from dictate.types import Command, RecordingMode

if TYPE_CHECKING:
    from dictate.config import Config

log = logging.getLogger(__name__)

__all__ = [
    "Binding", "Chord", "ChordMachine", "HotkeyBindings", "HotkeyError", "HotkeyListener", "HotkeySupport",
    "KeyEvent", "BACKENDS", "bindings_for", "create_listener", "modifiers_down", "parse_binding", "support",
    "wait_modifiers_released",
]

BACKENDS = ("auto", "x11", "portal", "pynput", "none")

DESKTOP_SHORTCUT_FIX = ("bind `dictate toggle` (or `dictate start` and `dictate stop`) to a key in your "
                        "desktop's keyboard shortcut settings")


@dataclass(frozen=True)
class HotkeySupport:
    """What global hotkeys can do here: `backend` is "x11", "portal", "pynput" or "none";
    `push_to_talk` says whether key releases reach the app; `reason` is one line for the user and
    `fix` what to do when something is missing (empty when nothing is)."""

    backend: str
    push_to_talk: bool
    reason: str
    fix: str = ""

    @property
    def available(self) -> bool:
        return self.backend != "none"


def _wayland(env: Mapping[str, str]) -> bool:
    return bool(env.get("WAYLAND_DISPLAY")) or env.get("XDG_SESSION_TYPE", "").lower() == "wayland"


def _x11_support(env: Mapping[str, str]) -> HotkeySupport:
    name = env.get("DISPLAY", "")
    if not name:
        return HotkeySupport("none", False, "no X display (DISPLAY is unset)", "run dictate inside your desktop session")
    try:
        import Xlib  # noqa: F401
    except ImportError:
        return HotkeySupport("none", False, "python-xlib is missing", "pip install python-xlib")
    return HotkeySupport("x11", True, f"X11 display {name}: keys grabbed with XGrabKey")


def _portal_support(env: Mapping[str, str]) -> HotkeySupport:
    from dictate.hotkeys.portal import portal_version

    version = portal_version(env)
    if version is None:
        return HotkeySupport(
            "none", False,
            "Wayland without the GlobalShortcuts portal: apps get no global keys and no key releases, "
            "so push-to-talk is impossible on this desktop",
            DESKTOP_SHORTCUT_FIX)
    return HotkeySupport("portal", True, f"Wayland: the desktop's GlobalShortcuts portal (version {version})")


def _pynput_support() -> HotkeySupport:
    try:
        import pynput  # noqa: F401
    except Exception as exc:
        return HotkeySupport("none", False, f"pynput is unusable: {exc}", "pip install pynput")
    extra = "; needs the Accessibility permission (System Settings > Privacy)" if sys.platform == "darwin" else ""
    return HotkeySupport("pynput", True, f"pynput keyboard listener{extra}")


def support(env: Mapping[str, str] | None = None, backend: str = "auto") -> HotkeySupport:
    """Which backend serves global hotkeys here and whether push-to-talk works. `backend` is the
    `[hotkeys] backend` setting ("auto" picks by platform and session type). Only looks: on Wayland
    it asks the session bus whether the portal answers, nothing is grabbed."""
    env = os.environ if env is None else env
    if backend not in BACKENDS:
        raise ConfigError(f"[hotkeys] backend = {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "none":
        return HotkeySupport("none", False, "global hotkeys are off ([hotkeys] backend = \"none\")",
                             DESKTOP_SHORTCUT_FIX)
    if backend == "x11":
        return _x11_support(env)
    if backend == "portal":
        return _portal_support(env)
    if backend == "pynput" or sys.platform in ("win32", "darwin"):
        return _pynput_support()
    if _wayland(env):
        # Under XWayland an X grab only sees keys while an X window has focus: not global.
        return _portal_support(env)
    if env.get("DISPLAY"):
        return _x11_support(env)
    return HotkeySupport("none", False, "no graphical session (DISPLAY and WAYLAND_DISPLAY unset)",
                         "run dictate inside your desktop session")


def create_listener(cfg: "Config", put: Callable[[Command], None],
                    env: Mapping[str, str] | None = None) -> HotkeyListener | None:
    """The listener for `cfg.hotkeys` on this desktop, not yet started; None (with the reason logged)
    where no backend works. Raises ConfigError for a bad binding or mode."""
    env = os.environ if env is None else env
    hk = cfg.hotkeys
    try:
        mode = RecordingMode(hk.mode)
    except ValueError:
        raise ConfigError(f"[hotkeys] mode = {hk.mode!r}: choose push-to-talk or toggle") from None
    bindings = HotkeyBindings(hk.dictate, hk.cancel or None)
    bindings.chords()  # a bad binding is reported even where no backend could use it
    found = support(env, getattr(hk, "backend", "auto"))
    if found.backend == "none":
        log.warning("hotkeys: none: %s%s", found.reason, f"; {found.fix}" if found.fix else "")
        return None
    if found.backend == "x11":
        from dictate.hotkeys.x11 import X11HotkeyListener

        return X11HotkeyListener(bindings, mode, put, display=env.get("DISPLAY", ""))
    if found.backend == "portal":
        from dictate.hotkeys.portal import PortalHotkeyListener

        return PortalHotkeyListener(bindings, mode, put, env=env)
    from dictate.hotkeys.pynput_backend import PynputHotkeyListener

    return PynputHotkeyListener(bindings, mode, put)
