"""Which backend types on this desktop, and why (the same answer for the app and `dictate doctor`).

The choice depends on the platform, the session type (XDG_SESSION_TYPE, WAYLAND_DISPLAY,
DISPLAY), the desktop (GNOME's compositor has no virtual-keyboard protocol) and which tools are on
PATH; `[output] backend` overrides it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from typing import Callable, Mapping

from dictate.config import Config
from dictate.errors import OutputError
from dictate.output.base import BackendChoice, OutputSink

BACKENDS = ("xdotool", "clipboard", "wtype", "ydotool", "dotool", "windows", "macos", "stdout")

Which = Callable[[str], "str | None"]


def _xlib_ok() -> bool:
    return importlib.util.find_spec("Xlib") is not None


def _session(env: Mapping[str, str]) -> tuple[bool, bool]:
    """(wayland, x11) for this environment."""
    xdg = env.get("XDG_SESSION_TYPE", "").lower()
    wayland = bool(env.get("WAYLAND_DISPLAY")) or xdg == "wayland"
    x11 = bool(env.get("DISPLAY"))
    return wayland, x11


def _x11_detail(cfg: Config) -> str:
    long = (f", and so is text over {cfg.output.paste_long_over} characters at once"
            if cfg.output.paste_long_over else "")
    if cfg.output.paste_non_ascii:
        return ("xdotool types ASCII text at full speed; text with accents, CJK or emoji is pasted"
                f"{long} (the clipboard is restored after)")
    if cfg.output.fast_ascii:
        return (f"xdotool types ASCII text at full speed, other text {cfg.output.typing_delay_ms} ms per character "
                "(best effort: set paste_non_ascii for exact accents, CJK and emoji)")
    return f"xdotool types {cfg.output.typing_delay_ms} ms per character"


def _check(name: str, cfg: Config, env: Mapping[str, str], platform: str, which: Which) -> tuple[bool, str]:
    """Whether `name` can work here, with the detail or the fix."""
    wayland, x11 = _session(env)
    if name in ("xdotool", "clipboard"):
        if not x11:
            return False, "needs an X11 display (DISPLAY is unset)"
        if not which("xdotool"):
            return False, "xdotool is missing: install xdotool"
        if not _xlib_ok():
            return False, "python-xlib is missing: pip install python-xlib"
        detail = (_x11_detail(cfg) if name == "xdotool"
                  else "clipboard + Ctrl+V (Ctrl+Shift+V in terminals), previous clipboard restored after the paste")
        if wayland:
            detail += "; on Wayland this reaches X11 (XWayland) windows only"
        return True, f"X11 display {env.get('DISPLAY')}: {detail}"
    if name in ("wtype", "ydotool", "dotool"):
        if not which(name):
            return False, f"{name} is missing: install {name}"
        if name == "wtype":
            if not env.get("WAYLAND_DISPLAY"):
                return False, "wtype needs a Wayland session (WAYLAND_DISPLAY is unset)"
            return True, "wtype types any text through the compositor's virtual keyboard (wlroots, KDE; not GNOME)"
        return True, f"{name} types through a uinput keyboard (needs /dev/uinput access; keyboard-layout characters only)"
    if name == "windows":
        return (platform == "win32"), ("SendInput with Unicode key events" if platform == "win32"
                                       else "works on Windows only")
    if name == "macos":
        return (platform == "darwin"), ("Quartz keyboard events (grant the Accessibility permission)"
                                        if platform == "darwin" else "works on macOS only")
    if name == "stdout":
        return True, "committed text goes to standard output"
    raise OutputError(f"unknown [output] backend {name!r}: choose auto or one of {', '.join(BACKENDS)}")


def choose_backend(cfg: Config, env: Mapping[str, str] | None = None, *, platform: str | None = None,
                   which: Which | None = None) -> BackendChoice:
    """The backend that types on this desktop: name, one-line reason, and whether it can work."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    which = which or shutil.which
    configured = cfg.output.backend.strip().lower() or "auto"
    if configured != "auto":
        ok, detail = _check(configured, cfg, env, platform, which)
        return BackendChoice(configured, f"set in [output] backend; {detail}", ok)
    if platform == "win32":
        return BackendChoice("windows", "Windows: " + _check("windows", cfg, env, platform, which)[1], True)
    if platform == "darwin":
        return BackendChoice("macos", "macOS: " + _check("macos", cfg, env, platform, which)[1], True)
    wayland, x11 = _session(env)
    if wayland:
        desktop = env.get("XDG_CURRENT_DESKTOP", "") or "unknown desktop"
        gnome = "gnome" in desktop.lower()
        order = ("ydotool", "dotool", "wtype") if gnome else ("wtype", "dotool", "ydotool")
        for name in order:
            ok, detail = _check(name, cfg, env, platform, which)
            if ok:
                return BackendChoice(name, f"Wayland session ({desktop}): {detail}", True)
        if x11:
            ok, detail = _check("xdotool", cfg, env, platform, which)
            if ok:
                return BackendChoice("xdotool", f"Wayland session ({desktop}) without wtype/ydotool/dotool; {detail}",
                                     True)
        fix = "install ydotool (and run ydotoold) or dotool" if gnome else "install wtype (or ydotool/dotool)"
        return BackendChoice(order[0], f"Wayland session ({desktop}) and no typing tool: {fix}", False)
    if x11:
        ok, detail = _check("xdotool", cfg, env, platform, which)
        return BackendChoice("xdotool", detail if ok else f"X11 session, but {detail}", ok)
    return BackendChoice("stdout", "no graphical session (DISPLAY and WAYLAND_DISPLAY unset): nothing to type into; "
                                   "run inside your desktop session", False)


def create_sink(cfg: Config, *, env: Mapping[str, str] | None = None) -> OutputSink:
    """The sink for this desktop (or the configured one); OutputError with the fix if it cannot work."""
    env = dict(os.environ if env is None else env)
    choice = choose_backend(cfg, env)
    if not choice.available:
        raise OutputError(f"cannot type with {choice.name}: {choice.reason.removeprefix('set in [output] backend; ')}")
    out = cfg.output
    if choice.name == "xdotool":
        from dictate.output.xdotool import XdotoolSink
        return XdotoolSink(out, env)
    if choice.name == "clipboard":
        from dictate.output.paste import X11PasteSink
        return X11PasteSink(out, env)
    if choice.name in ("wtype", "ydotool", "dotool"):
        from dictate.output import wayland
        cls = {"wtype": wayland.WtypeSink, "ydotool": wayland.YdotoolSink, "dotool": wayland.DotoolSink}[choice.name]
        return cls(out, env)
    if choice.name == "windows":
        from dictate.output.windows import WindowsSink
        return WindowsSink(out, env)
    if choice.name == "macos":
        from dictate.output.macos import MacSink
        return MacSink(out, env)
    from dictate.output.stdout import StreamSink
    return StreamSink()
