"""X11 queries the output backends need, through python-xlib (pure Python, no tool to spawn):
the focused window's class (to recognise terminals) and the keyboard's modifier state (so typed
text waits until the hotkey's modifiers are released and does not fire shortcuts).

A python-xlib Display is not thread-safe: each object here opens its own connection and is used
from one thread only (the controller's output thread)."""

from __future__ import annotations

import logging
from typing import Mapping

from dictate.errors import OutputError

log = logging.getLogger(__name__)

# WM_CLASS names (instance or class, lower case) of terminal emulators. Terminals take Ctrl+V as a
# control character, so the paste key there is Ctrl+Shift+V.
TERMINAL_CLASSES = frozenset({
    "xterm", "uxterm", "gnome-terminal", "gnome-terminal-server", "org.gnome.terminal", "konsole",
    "org.kde.konsole", "alacritty", "kitty", "wezterm", "org.wezfurlong.wezterm", "foot", "footclient",
    "tilix", "com.gexperts.tilix", "terminator", "xfce4-terminal", "urxvt", "rxvt", "rxvt-unicode",
    "urxvt-256color", "st", "st-256color", "lxterminal", "mate-terminal", "qterminal", "terminology",
    "sakura", "guake", "tilda", "yakuake", "termite", "cool-retro-term", "hyper", "tabby", "ghostty",
    "com.mitchellh.ghostty", "kgx", "org.gnome.console", "ptyxis", "org.gnome.ptyxis", "blackbox",
    "com.raggesilver.blackbox", "eterm", "kterm", "contour", "terminal", "roxterm", "deepin-terminal",
    "io.elementary.terminal", "wayst", "zutty", "extraterm",
})

# Terminals with no default key that pastes the CLIPBOARD selection (urxvt's Ctrl+Alt+V needs a
# newer build); their Shift+Insert pastes PRIMARY, so the paste backend goes through PRIMARY there.
NO_CLIPBOARD_PASTE_KEY = frozenset({"xterm", "uxterm", "urxvt", "rxvt", "rxvt-unicode", "urxvt-256color",
                                    "eterm", "kterm"})

def is_terminal(wm_class: tuple[str, str] | None) -> bool:
    if not wm_class:
        return False
    return any(name.lower() in TERMINAL_CLASSES for name in wm_class if name)


def lacks_clipboard_paste_key(wm_class: tuple[str, str] | None) -> bool:
    if not wm_class:
        return False
    return any(name.lower() in NO_CLIPBOARD_PASTE_KEY for name in wm_class if name)


def open_display(env: Mapping[str, str]):
    """A python-xlib connection to env's DISPLAY, or OutputError saying what is missing."""
    name = env.get("DISPLAY", "")
    if not name:
        raise OutputError("no X display (DISPLAY is unset): voice typing needs a desktop session")
    try:
        from Xlib import display as xdisplay
    except ImportError as exc:
        raise OutputError("python-xlib is missing: pip install python-xlib") from exc
    try:
        return xdisplay.Display(name)
    except Exception as exc:  # Xlib.error.DisplayConnectionError and socket errors
        raise OutputError(f"cannot open X display {name}: {exc}") from exc


class X11Desktop:
    """One connection for the output thread's questions about the desktop."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._d = open_display(env)

    def close(self) -> None:
        try:
            self._d.close()
        except Exception:  # already gone with the server
            pass

    # -- focus ------------------------------------------------------------------------------
    def focused_window(self) -> int | None:
        """The window keystrokes go to: _NET_ACTIVE_WINDOW when a window manager sets it, else the
        input focus."""
        from Xlib import X

        root = self._d.screen().root
        active = root.get_full_property(self._d.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
        if active is not None and len(active.value) and active.value[0]:
            return int(active.value[0])
        focus = self._d.get_input_focus().focus
        if isinstance(focus, int):  # X.NONE or X.PointerRoot
            return None
        return int(focus.id)

    def window_class(self, wid: int | None) -> tuple[str, str] | None:
        """WM_CLASS (instance, class) of `wid` or of its nearest ancestor that has one."""
        if wid is None:
            return None
        from Xlib import error as xerror

        window = self._d.create_resource_object("window", wid)
        root_id = self._d.screen().root.id
        try:
            while window.id != root_id:
                cls = window.get_wm_class()
                if cls:
                    return (cls[0] or "", cls[1] or "")
                window = window.query_tree().parent
        except xerror.XError:  # the window went away meanwhile
            return None
        return None

    def focused_class(self) -> tuple[str, str] | None:
        return self.window_class(self.focused_window())

    # -- modifiers --------------------------------------------------------------------------
    def modifiers_down(self) -> bool:
        """Whether any Shift/Ctrl/Alt/Super/AltGr key, or the key of a chord, is physically held
        (XQueryKeymap). A held chord key keeps the hotkey's grab active: keys typed then go to the
        grab, not the window (push-to-talk released Ctrl first, then Space, lost the first word).
        The waiting around it is dictate.output.modifiers'."""
        keys = self._d.query_keymap()
        return any(keys)
