"""Desktop integration on freedesktop systems (Linux, BSD): the application menu entry, the icon in
the user's hicolor icon theme and, on request, the autostart entry that starts the tray app with
the session. Everything goes to the current user's XDG folders; writing twice changes nothing.

The entries are made here (so that Exec names the `dictate` that is running: a venv, pipx or a
bundle need not be on the session's PATH); packaging/linux/ holds the same entries with a plain
`Exec=dictate` for distribution packages, and a test keeps the two alike.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

from dictate.errors import DictateError
from dictate.fsutil import write_atomic

log = logging.getLogger(__name__)

APP_ID = "io.github.dictate.Dictate"
MENU_FILE = f"{APP_ID}.desktop"
AUTOSTART_FILE = f"{APP_ID}-autostart.desktop"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
_SOURCE_ICON = "dictate"  # resources/icons/dictate.svg and png/<size>/dictate.png

# Quick actions in the menu entry's right-click menu: (id, name, dictate arguments).
ACTIONS = (
    ("ToggleDictation", "Start or stop dictation", "toggle"),
    ("StartNote", "Start a long note", "note start"),
    ("StopNote", "Stop the long note", "note stop"),
)


class DesktopError(DictateError):
    """Desktop integration cannot be done here (not a freedesktop system, unwritable folder)."""


class Action(str, Enum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    ABSENT = "absent"


@dataclass(frozen=True)
class Change:
    path: Path
    action: Action


@dataclass(frozen=True)
class DesktopDirs:
    """The user's XDG base folders (XDG_DATA_HOME, XDG_CONFIG_HOME, else the spec's defaults)."""

    data_home: Path
    config_home: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "DesktopDirs":
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        # The spec: a relative or empty value is invalid and must be ignored.
        def pick(name: str, default: Path) -> Path:
            value = env.get(name, "")
            return Path(value) if value and os.path.isabs(value) else default
        return cls(pick("XDG_DATA_HOME", home / ".local" / "share"), pick("XDG_CONFIG_HOME", home / ".config"))

    @property
    def menu_entry(self) -> Path:
        return self.data_home / "applications" / MENU_FILE

    @property
    def autostart_entry(self) -> Path:
        return self.config_home / "autostart" / AUTOSTART_FILE

    @property
    def icon_theme(self) -> Path:
        return self.data_home / "icons" / "hicolor"

    def icon_files(self) -> list[Path]:
        out = [self.icon_theme / "scalable" / "apps" / f"{APP_ID}.svg"]
        out += [self.icon_theme / f"{n}x{n}" / "apps" / f"{APP_ID}.png" for n in ICON_SIZES]
        return out


# -- the entries ---------------------------------------------------------------------------------

_RESERVED = set(' \t\n"\'\\><~|&;$*?#()`')


def quote_exec_arg(arg: str) -> str:
    """One Exec argument quoted as the Desktop Entry spec asks: inside double quotes `"`, `` ` ``,
    `$` and `\\` take a backslash; `%` is always doubled (field codes)."""
    arg = arg.replace("%", "%%")
    if arg and not (set(arg) & _RESERVED):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def _escape_value(value: str) -> str:
    """A string value in a desktop file: backslash escapes as the spec defines them."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def exec_line(command: Sequence[str], *args: str) -> str:
    return _escape_value(" ".join(quote_exec_arg(a) for a in [*command, *args]))


def menu_entry(command: Sequence[str] = ("dictate",)) -> str:
    """The application menu entry, launching `command` (a list of arguments)."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=Dictate",
        "GenericName=Dictation",
        "Comment=Type with your voice in any window, record long notes and transcribe files, "
        "with Whisper on your own machine",
        f"Exec={exec_line(command)}",
        *_try_exec(command),
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Utility;Accessibility;",
        "Keywords=dictation;voice typing;speech to text;transcription;whisper;notes;",
        "StartupNotify=false",
        "Actions=" + "".join(f"{action_id};" for action_id, _, _ in ACTIONS),
    ]
    for action_id, name, args in ACTIONS:
        lines += ["", f"[Desktop Action {action_id}]", f"Name={name}", f"Exec={exec_line(command, *args.split())}"]
    return "\n".join(lines) + "\n"


def autostart_entry(command: Sequence[str] = ("dictate",)) -> str:
    """The session autostart entry: the tray app, hidden from menus."""
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=Dictate",
        "Comment=Dictation in the system tray, ready when the session starts",
        f"Exec={exec_line(command)}",
        *_try_exec(command),
        f"Icon={APP_ID}",
        "Terminal=false",
        "NoDisplay=true",
        "StartupNotify=false",
        "X-GNOME-Autostart-enabled=true",
        # The tray host (panel) must be up before the icon is added.
        "X-GNOME-Autostart-Delay=5",
        "X-KDE-autostart-after=panel",
    ]
    return "\n".join(lines) + "\n"


def _try_exec(command: Sequence[str]) -> list[str]:
    # An absolute launcher that disappears (a deleted venv) hides the entry instead of a dead item.
    first = command[0]
    return [f"TryExec={_escape_value(first.replace('%', '%%'))}"] if os.path.isabs(first) else []


def launcher() -> list[str]:
    """The command that starts this same dictate: the frozen bundle's binary, the `dictate` script
    that is running, the one on PATH, else this Python with -m dictate."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "dictate" and argv0.is_file() and os.access(argv0, os.X_OK):
        return [str(argv0.absolute())]
    found = shutil.which("dictate")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "dictate"]


# -- install / uninstall -------------------------------------------------------------------------

def _icons(dirs: DesktopDirs) -> list[tuple[Path, bytes]]:
    """(file in the user's hicolor theme, content) for the app icon, read from the installed package
    dictate.resources: the SVG as the scalable icon, the PNGs at each size."""
    try:
        root = resources.files("dictate.resources") / "icons"
    except ModuleNotFoundError:
        raise DesktopError("dictate's icons are not installed (package dictate.resources); "
                           "reinstall with `pip install .`") from None
    sources = [root / f"{_SOURCE_ICON}.svg"] + [root / "png" / str(n) / f"{_SOURCE_ICON}.png" for n in ICON_SIZES]
    out = []
    for dest, source in zip(dirs.icon_files(), sources):
        if not source.is_file():
            raise DesktopError(f"icon {source.name} is missing from dictate.resources; reinstall dictate")
        out.append((dest, source.read_bytes()))
    return out


def _write(path: Path, content: bytes) -> Change:
    try:
        if path.is_file() and path.read_bytes() == content:
            return Change(path, Action.UNCHANGED)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, content, durable=False)
        path.chmod(0o644)
    except OSError as exc:
        raise DesktopError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return Change(path, Action.WRITTEN)


def _remove(path: Path) -> Change:
    try:
        path.unlink()
    except FileNotFoundError:
        return Change(path, Action.ABSENT)
    except OSError as exc:
        raise DesktopError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    return Change(path, Action.REMOVED)


def _check_platform() -> None:
    if sys.platform in ("win32", "darwin"):
        raise DesktopError("desktop entries are for Linux and BSD desktops; on Windows and macOS use the "
                           "bundle's installer (see packaging/README.md)")


def install(dirs: DesktopDirs | None = None, *, autostart: bool = False,
            command: Sequence[str] | None = None) -> list[Change]:
    """Write the menu entry and the icons (and the autostart entry when asked). Idempotent."""
    _check_platform()
    dirs = dirs or DesktopDirs.from_env()
    command = list(command or launcher())
    icons = _icons(dirs)
    changes = [_write(dirs.menu_entry, menu_entry(command).encode("utf-8"))]
    icon_changes = [_write(path, content) for path, content in icons]
    if any(c.action is Action.WRITTEN for c in icon_changes):
        _touch(dirs.icon_theme)
    changes += icon_changes
    if autostart:
        changes.append(_write(dirs.autostart_entry, autostart_entry(command).encode("utf-8")))
    log.info("desktop: installed for %s (%d written)", " ".join(command),
             sum(c.action is Action.WRITTEN for c in changes))
    return changes


def uninstall(dirs: DesktopDirs | None = None, *, autostart_only: bool = False) -> list[Change]:
    """Remove the autostart entry and, unless `autostart_only`, the menu entry and the icons."""
    _check_platform()
    dirs = dirs or DesktopDirs.from_env()
    changes = [_remove(dirs.autostart_entry)]
    if not autostart_only:
        changes.append(_remove(dirs.menu_entry))
        changes += [_remove(p) for p in dirs.icon_files()]
        if any(c.action is Action.REMOVED for c in changes[2:]):
            _touch(dirs.icon_theme)
    return changes


def _touch(theme: Path) -> None:
    # Icon caches notice a changed theme folder by its modification time.
    try:
        os.utime(theme)
    except OSError:
        pass
