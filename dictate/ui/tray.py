"""The tray icon and its menu, and the small window that stands in where there is no tray.

Both show the same entries (`menu_entries`), computed from `ShellState` when they are shown: the
tray menu is rebuilt on aboutToShow, the window whenever the state changes. Everything here runs
on the GUI thread; it hears the controller only through the Bridge's signals.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QByteArray, QObject, QRectF, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QMenu, QPushButton, QSystemTrayIcon, QVBoxLayout,
                               QWidget)

from dictate.types import CommandKind
from dictate.ui import resources
from dictate.ui.bridge import Bridge, Hook

log = logging.getLogger(__name__)

RECENT_KEPT = 5
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)

STATE_LABELS = {
    "idle": "Ready",
    "loading": "Loading the model…",
    "listening": "Listening",
    "transcribing": "Transcribing…",
    "note-recording": "Recording a long note",
    "error": "Error",
}

_KEY_NAMES = {"ctrl": "Ctrl", "alt": "Alt", "shift": "Shift", "cmd": "Super", "super": "Super", "meta": "Meta",
              "space": "Space", "enter": "Enter", "esc": "Esc", "tab": "Tab"}


def hotkey_label(binding: str) -> str:
    """"<ctrl>+<alt>+space" -> "Ctrl+Alt+Space", as a menu shows it."""
    parts = [p.strip().strip("<>") for p in binding.split("+") if p.strip()]
    return "+".join(_KEY_NAMES.get(p.lower(), p.upper() if len(p) == 1 else p.capitalize()) for p in parts)


_icon_cache: dict[str, QIcon] = {}


def state_icon(name: str) -> QIcon:
    """A QIcon for a state (or resources.APP_ICON), rendered from the SVG at the usual sizes so it
    is sharp in any tray, whether or not Qt's SVG icon engine plugin is present."""
    if name not in _icon_cache:
        renderer = QSvgRenderer(QByteArray(resources.icon(name).read_bytes()))
        icon = QIcon()
        for size in ICON_SIZES:
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter, QRectF(0, 0, size, size))
            painter.end()
            icon.addPixmap(pixmap)
        _icon_cache[name] = icon
    return _icon_cache[name]


def _elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass
class ShellState:
    """What the tray shows, kept on the GUI thread from the Bridge's signals."""

    hotkey: str = "<ctrl>+<alt>+space"
    push_to_talk: bool = True
    state: str = "loading"
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=RECENT_KEPT))
    note_started: float | None = None  # monotonic time
    error: tuple[str, str] | None = None  # (message, action)
    # Where the controller keeps these (the history, the note recorder); when given, they win
    # over what this object gathered from events (recent dictations survive a restart).
    recent_source: Callable[[], list[str]] | None = None
    elapsed_source: Callable[[], float | None] | None = None
    _pieces: list[str] = field(default_factory=list)

    def recent_texts(self) -> list[str]:
        if self.recent_source is not None:
            try:
                return [t for t in self.recent_source() if t.strip()]
            except Exception as exc:  # the menu still opens
                log.warning("ui: recent dictations: %s", exc)
        return list(self.recent)

    def note_elapsed_s(self, now: float) -> float | None:
        if self.state != "note-recording":
            return None
        if self.elapsed_source is not None:
            value = self.elapsed_source()
            if value is not None:
                return value
        return None if self.note_started is None else now - self.note_started

    def set_state(self, state: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if state == "note-recording" and self.state != "note-recording":
            self.note_started = now
        elif state != "note-recording":
            self.note_started = None
        if state != "error":
            self.error = None
        if state in ("idle", "note-recording", "error"):
            self._finish_dictation()
        self.state = state

    def add_committed(self, text: str) -> None:
        self._pieces.append(text)

    def set_error(self, message: str, action: str) -> None:
        self.error = (message, action)

    def _finish_dictation(self) -> None:
        text = "".join(self._pieces).strip()
        self._pieces.clear()
        if text:
            self.recent.appendleft(text)


@dataclass(frozen=True)
class Entry:
    key: str  # stable name: dictation, cancel, note, recent, copy:N, notes-folder, quit, error
    label: str
    run: Callable[[], None] | None = None  # None: a heading or a note, not clickable
    enabled: bool = True
    children: tuple["Entry", ...] = ()


class Actions:
    """What the entries do: Commands to the controller, or desktop actions (clipboard, folder)."""

    def __init__(self, bridge: Bridge, notes_dir: Path) -> None:
        self.bridge = bridge
        self.notes_dir = notes_dir
        self.quit_requested = Hook("quit")
        # Set by the app: open the files and the history windows (no menu entries without them).
        self.open_files: Callable[[], None] | None = None
        self.open_history: Callable[[], None] | None = None
        self.open_settings: Callable[[], None] | None = None
        self.open_models: Callable[[], None] | None = None

    def command(self, kind: CommandKind) -> Callable[[], None]:
        return lambda: self.bridge.submit(kind)

    def copy(self, text: str) -> Callable[[], None]:
        def run() -> None:
            QGuiApplication.clipboard().setText(text)
            log.info("ui: copied a recent dictation (%d characters)", len(text))
        return run

    def open_notes_folder(self) -> None:
        self.notes_dir.mkdir(parents=True, exist_ok=True)
        log.info("ui: opening %s", self.notes_dir)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.notes_dir))):
            log.warning("ui: no file manager opened %s", self.notes_dir)

    def quit(self) -> None:
        log.info("ui: quit")
        self.quit_requested.emit()


def menu_entries(s: ShellState, actions: Actions, now: float | None = None) -> list[Entry]:
    now = time.monotonic() if now is None else now
    key = hotkey_label(s.hotkey)
    entries: list[Entry] = []
    if s.error:
        message, action = s.error
        entries.append(Entry("error", _short(f"⚠ {message}" + (f" — {action}" if action else ""), 90)))
    if s.state == "listening":
        hint = f"release {key}" if s.push_to_talk else key
        entries.append(Entry("dictation", f"Stop dictation ({hint})", actions.command(CommandKind.STOP)))
        entries.append(Entry("cancel", "Cancel dictation (discard)", actions.command(CommandKind.CANCEL)))
    elif s.state == "transcribing":
        entries.append(Entry("dictation", "Transcribing the last words…", None, enabled=False))
        entries.append(Entry("cancel", "Cancel dictation (discard)", actions.command(CommandKind.CANCEL)))
    else:
        hint = f"hold {key}" if s.push_to_talk else key
        label = "Start dictation" + (" (model loading)" if s.state == "loading" else "") + f" ({hint})"
        entries.append(Entry("dictation", label, actions.command(CommandKind.START),
                             enabled=s.state != "note-recording"))
    elapsed = s.note_elapsed_s(now)
    if elapsed is not None:
        entries.append(Entry("note", f"Stop long note ({_elapsed(elapsed)})", actions.command(CommandKind.NOTE_STOP)))
    else:
        entries.append(Entry("note", "Start long note", actions.command(CommandKind.NOTE_START),
                             enabled=s.state in ("idle", "loading", "error")))
    recent = tuple(Entry(f"copy:{i}", _short(text), actions.copy(text)) for i, text in enumerate(s.recent_texts()))
    entries.append(Entry("recent", "Recent dictations" if recent else "Recent dictations (none yet)",
                         None, enabled=bool(recent), children=recent))
    entries.append(Entry("notes-folder", "Open notes folder", actions.open_notes_folder))
    if getattr(actions, "open_files", None) is not None:
        entries.append(Entry("files", "Transcribe files…", actions.open_files))
    if getattr(actions, "open_history", None) is not None:
        entries.append(Entry("history", "History…", actions.open_history))
    if getattr(actions, "open_settings", None) is not None:
        entries.append(Entry("settings", "Settings…", actions.open_settings))
    if getattr(actions, "open_models", None) is not None:
        entries.append(Entry("models", "Models…", actions.open_models))
    entries.append(Entry("quit", "Quit dictate", actions.quit))
    return entries


def tooltip(s: ShellState, now: float | None = None) -> str:
    text = f"dictate — {STATE_LABELS.get(s.state, s.state)}"
    elapsed = s.note_elapsed_s(time.monotonic() if now is None else now)
    if elapsed is not None:
        text += f" ({_elapsed(elapsed)})"
    if s.error:
        text += f"\n{s.error[0]}" + (f"\n{s.error[1]}" if s.error[1] else "")
    elif s.state in ("idle", "loading"):
        text += f"\n{'Hold' if s.push_to_talk else 'Press'} {hotkey_label(s.hotkey)} to dictate"
    return text


class Shell(QObject):
    """The part common to the tray and the stand-in window: it follows the Bridge."""

    def __init__(self, bridge: Bridge, actions: Actions, state: ShellState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.actions = actions
        self.model = state
        bridge.state_changed.connect(self._on_state)
        bridge.committed.connect(self._on_committed)
        bridge.error.connect(self._on_error)
        bridge.notice.connect(self._on_notice)
        # Set by the app when the desktop has a notification server (dictate.ui.notify).
        self.desktop_notify: Callable[..., None] | None = None

    def _on_state(self, state: str) -> None:
        log.debug("ui: state %s", state)
        self.model.set_state(state)
        self.refresh()

    def _on_committed(self, text: str) -> None:
        self.model.add_committed(text)

    def _on_error(self, message: str, action: str) -> None:
        log.info("ui: error shown: %s (%s)", message, action)
        self.model.set_error(message, action)
        self.refresh()
        self.balloon("dictate: error", message + (f"\n{action}" if action else ""), error=True)

    def _on_notice(self, message: str) -> None:
        log.info("ui: notice: %s", message)
        if self.model.error:
            return  # one balloon at a time: a notice must not cover the error and its action
        self.balloon("dictate", message, error=False)

    def balloon(self, title: str, message: str, *, error: bool) -> None:
        """The desktop's notifications when the app found a notification server, else the shell's own."""
        if self.desktop_notify is not None:
            self.desktop_notify(title, message, error=error)
        else:
            self.notify(title, message, error=error)

    def entries(self) -> list[Entry]:
        return menu_entries(self.model, self.actions)

    def icon_name(self) -> str:
        return "error" if self.model.error else (self.model.state if self.model.state in resources.STATES else "idle")

    def refresh(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def notify(self, title: str, message: str, *, error: bool,
               on_click: Callable[[], None] | None = None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def show(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def hide(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class TrayShell(Shell):
    """A QSystemTrayIcon whose icon follows the state; left click toggles dictation, the context
    menu is rebuilt each time it opens (so the note's elapsed time and recent dictations are current)."""

    def __init__(self, bridge: Bridge, actions: Actions, state: ShellState, parent: QObject | None = None) -> None:
        super().__init__(bridge, actions, state, parent)
        self.menu = QMenu()
        self.menu.setObjectName("dictate-tray-menu")
        self.menu.aboutToShow.connect(self._rebuild_menu)
        self.tray = QSystemTrayIcon(state_icon(self.icon_name()))
        self.tray.setContextMenu(self.menu)
        self.tray.activated.connect(self._on_activated)
        self.tray.messageClicked.connect(self._on_message_clicked)
        self._on_click: Callable[[], None] | None = None  # what clicking the last balloon does
        # The note's running time in the tooltip moves on without a state change.
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(lambda: self.tray.setToolTip(tooltip(self.model)))
        self._rebuild_menu()  # some hosts read the menu before it is first opened
        self.refresh()

    def show(self) -> None:
        self.tray.show()
        log.info("ui: tray icon shown")

    def hide(self) -> None:
        self.tray.hide()

    def refresh(self) -> None:
        self.tray.setIcon(state_icon(self.icon_name()))
        self.tray.setToolTip(tooltip(self.model))
        if self.model.state == "note-recording":
            self._ticker.start()
        else:
            self._ticker.stop()

    def notify(self, title: str, message: str, *, error: bool, on_click: Callable[[], None] | None = None) -> None:
        icon = QSystemTrayIcon.MessageIcon.Warning if error else QSystemTrayIcon.MessageIcon.Information
        self._on_click = on_click
        self.tray.showMessage(title, message, icon, 8000 if error or on_click else 4000)

    def _on_message_clicked(self) -> None:
        action, self._on_click = self._on_click, None
        log.info("ui: balloon clicked")
        if action is not None:
            action()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:  # left click
            log.info("ui: tray icon clicked")
            self.bridge.submit(CommandKind.TOGGLE)

    def _rebuild_menu(self) -> None:
        self.menu.clear()
        entries = self.entries()
        _fill_menu(self.menu, entries)
        log.info("ui: menu: %s", " | ".join(e.label for e in entries))


def _fill_menu(menu: QMenu, entries: list[Entry]) -> None:
    for e in entries:
        if e.key in ("notes-folder", "recent"):
            menu.addSeparator()
        if e.children:
            sub = menu.addMenu(e.label)
            for child in e.children:
                sub.addAction(child.label).triggered.connect(child.run)
            continue
        action: QAction = menu.addAction(e.label)
        action.setObjectName(e.key)
        action.setEnabled(e.enabled and e.run is not None)
        if e.run is not None:
            action.triggered.connect(e.run)
        if e.key == "quit":
            menu.insertSeparator(action)


def no_tray_reason(env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    desktop = env.get("XDG_CURRENT_DESKTOP", "")
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        if "GNOME" in desktop.upper():
            return ("GNOME shows tray icons only with the AppIndicator extension "
                    "(gnome-shell-extension-appindicator)")
        return "this Wayland desktop offers no system tray"
    if "GNOME" in desktop.upper():
        return "GNOME shows tray icons only with the AppIndicator extension (gnome-shell-extension-appindicator)"
    return "nothing on this desktop provides one (a panel with a notification area)"


class WindowShell(Shell):
    """Where there is no tray: a small window with the state, why it is here, and the same
    actions as buttons. Closing it quits the app (nothing would be left to reach it by)."""

    def __init__(self, bridge: Bridge, actions: Actions, state: ShellState, reason: str,
                 parent: QObject | None = None) -> None:
        super().__init__(bridge, actions, state, parent)
        self.reason = reason
        self.window = _Window(self)
        self.window.setObjectName("dictate-window")
        self.window.setWindowTitle("dictate")
        self.window.setWindowIcon(state_icon(resources.APP_ICON))
        self._icon = QLabel()
        self._state = QLabel()
        self._state.setObjectName("state")
        self._state.setWordWrap(True)
        why = QLabel(f"No system tray: {reason}. This window stands in for the tray icon; "
                     "closing it quits dictate.")
        why.setObjectName("reason")
        why.setWordWrap(True)
        why.setStyleSheet("color: #555555;")
        head = QHBoxLayout()
        head.addWidget(self._icon)
        head.addWidget(self._state, 1)
        self._buttons = QVBoxLayout()
        layout = QVBoxLayout(self.window)
        layout.addLayout(head)
        layout.addWidget(why)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        layout.addWidget(line)
        layout.addLayout(self._buttons)
        layout.addStretch(1)
        self.window.resize(380, 0)
        # The note's elapsed time on its button moves on without a state change.
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self.refresh()

    def show(self) -> None:
        self.window.show()
        log.info("ui: no tray (%s): window shown", self.reason)

    def hide(self) -> None:
        self.window.hide()

    def refresh(self) -> None:
        self._icon.setPixmap(state_icon(self.icon_name()).pixmap(QSize(40, 40)))
        text = f"<b>{STATE_LABELS.get(self.model.state, self.model.state)}</b>"
        if self.model.error:
            message, action = self.model.error
            text = f"<b>Error:</b> {_html(message)}" + (f"<br>{_html(action)}" if action else "")
        self._state.setText(text)
        self.window.setToolTip(tooltip(self.model))
        self._rebuild_buttons()
        if self.model.state == "note-recording":
            self._ticker.start()
        else:
            self._ticker.stop()

    def notify(self, title: str, message: str, *, error: bool, on_click: Callable[[], None] | None = None) -> None:
        # The window itself shows the error; bring it forward so it is seen. (A finished note's
        # window opens by itself here: `on_click` is for balloons, which this shell has none of.)
        if QGuiApplication.platformName() != "offscreen":  # which cannot raise windows
            self.window.raise_()
            self.window.activateWindow()

    def buttons(self) -> dict[str, QPushButton]:
        found = {}
        for i in range(self._buttons.count()):
            w = self._buttons.itemAt(i).widget()
            if isinstance(w, QPushButton):
                found[w.objectName()] = w
        return found

    def _tick(self) -> None:
        self._rebuild_buttons()

    def _rebuild_buttons(self) -> None:
        focused = self.window.focusWidget()
        keep = focused.objectName() if isinstance(focused, QPushButton) and focused.hasFocus() else "dictation"
        # The old widgets go only after the focus is on a new button: deleting the focused one
        # first would pass the focus along to whichever old button comes next.
        old = [self._buttons.takeAt(0).widget() for _ in range(self._buttons.count())]
        for e in self.entries():
            if e.key == "error":
                continue  # shown in the state line
            if e.key == "recent":
                title = QLabel(e.label + (":" if e.children else ""))
                self._buttons.addWidget(title)
                for child in e.children:
                    self._buttons.addWidget(self._button(child, prefix="Copy: "))
                continue
            self._buttons.addWidget(self._button(e))
        # Keyboard users keep their place across rebuilds; the dictation button comes first.
        buttons = self.buttons()
        target = buttons.get(keep) or buttons.get("dictation")
        if target is not None:
            if self.window.isVisible():
                for b in buttons.values():
                    b.show()  # a hidden widget cannot take the focus (the layout shows them later)
            target.setFocus()
        for w in old:
            if w is not None:
                w.hide()
                w.deleteLater()

    def _button(self, e: Entry, prefix: str = "") -> QPushButton:
        b = QPushButton(prefix + e.label)
        b.setObjectName(e.key)
        b.setEnabled(e.enabled and e.run is not None)
        if e.run is not None:
            b.clicked.connect(e.run)
        return b


class _Window(QWidget):
    def __init__(self, shell: WindowShell) -> None:
        super().__init__()
        self._shell = shell

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        event.accept()
        self._shell.actions.quit()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def create_shell(bridge: Bridge, actions: Actions, state: ShellState, *, tray_available: bool | None = None) -> Shell:
    """The tray where the desktop has one, else the stand-in window."""
    if tray_available is None:
        tray_available = QSystemTrayIcon.isSystemTrayAvailable()
    if tray_available:
        return TrayShell(bridge, actions, state)
    return WindowShell(bridge, actions, state, no_tray_reason())
