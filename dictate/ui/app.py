"""`dictate` with no verb: the tray app.

Order matters for a fast first impression: the window system and the tray icon come first, the
model after (the controller loads it in the background once the event loop runs). A second launch
finds the first through IPC, asks it to show itself, and exits 0.

Wiring (one owner per thread):
  GUI thread        QApplication, Bridge, tray/window           (widgets only)
  controller thread Controller: capture, sessions, output        (publishes Events)
  IPC, hotkey threads  only put Commands on the controller's queue
  dictate-sounds    start/stop cues (PySide6-Essentials has no QtMultimedia: sounddevice)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from dictate import config as config_mod
from dictate.config import Config
from dictate.errors import DictateError
from dictate.types import CommandKind, Event, EventKind, RecordingMode

log = logging.getLogger(__name__)


@dataclass
class Options:
    engine: str | None = None
    model: str | None = None
    language: str | None = None
    tray: bool | None = None  # None: use the tray when the desktop has one


def options_from_args(args: argparse.Namespace | None) -> Options:
    return Options(engine=getattr(args, "engine", None), model=getattr(args, "model", None),
                   language=getattr(args, "language", None))


NO_DESKTOP = ("no desktop session (DISPLAY and WAYLAND_DISPLAY are unset) for the tray app: run it inside your "
              "desktop, or use `dictate listen` for voice typing in this terminal, `dictate transcribe FILE`, "
              "or `dictate --help`")

TRAY_RECHECK_MS = 2000  # how often the stand-in window looks for a tray that appeared later

# Qt platforms that draw without a display server (tests, VNC); any other needs X11 or Wayland.
_SERVERLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "minimalegl", "vkkhrdisplay")


def desktop_missing(env=None, platform: str | None = None) -> str | None:
    """Why the tray app cannot show anything here (one line), or None. Asked before Qt is
    touched: without a display Qt's xcb plugin aborts the process instead of raising."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if platform in ("win32", "darwin"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip().lower()
    if qpa in _SERVERLESS_PLATFORMS:
        return None
    if qpa == "xcb":  # forced X11: a Wayland socket alone does not help
        return None if env.get("DISPLAY") else NO_DESKTOP
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return NO_DESKTOP


def run(args: argparse.Namespace | None = None) -> int:
    started = time.monotonic()
    missing = desktop_missing()
    if missing is not None:
        raise DictateError(missing)
    opts = options_from_args(args)
    cfg = config_mod.load()
    return DesktopApp(cfg, opts, started=started).exec()


class DesktopApp:
    def __init__(self, cfg: Config, opts: Options, *, started: float | None = None) -> None:
        self.cfg = cfg
        self.opts = opts
        self.started = time.monotonic() if started is None else started
        self.controller: Any = None
        self.server: Any = None
        self.hotkeys: Any = None
        self.player: Any = None
        self.bridge: Any = None
        self.shell: Any = None
        self.files_window: Any = None
        self.history_window: Any = None
        self.overlay: Any = None
        self.notifier: Any = None
        self.windows: dict[str, Any] = {}  # open note windows and dialogs, by name
        self._wakeup: tuple[socket.socket, socket.socket] | None = None

    # -- start ------------------------------------------------------------------------------
    def exec(self) -> int:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        from dictate.controller import Controller
        from dictate.ipc import AlreadyRunning, IpcServer, hand_over

        self.controller = Controller(self.cfg, engine_name=self.opts.engine, model=self.opts.model,
                                     language=self.opts.language)
        self.server = IpcServer(self.cfg.paths, self._handle_ipc)
        try:
            self.server.start()
        except AlreadyRunning:
            if hand_over(self.cfg.paths, {"command": "show"}):
                sys.stderr.write("dictate is already running: it was asked to show itself\n")
                return 0
            raise DictateError("another dictate is running but does not answer; quit it, or end its process")

        app = QApplication.instance() or QApplication(["dictate"])
        app.setApplicationName("dictate")
        app.setDesktopFileName("dictate")
        app.setQuitOnLastWindowClosed(False)  # the tray app lives without windows
        try:
            self._build_shell(app)
            self.shell.show()
            log.info("ui: shown %.0f ms after launch", (time.monotonic() - self.started) * 1000)
            self._install_signal_handlers(app)
            # The model loads after the event loop has drawn the icon.
            QTimer.singleShot(0, self._start_core)
            code = app.exec()
        finally:
            self._shutdown()
        return int(code or 0)

    def _build_shell(self, app) -> None:
        from dictate.ui.bridge import Bridge
        from dictate.ui.sounds import CuePlayer
        from dictate.ui.tray import Actions, ShellState, TrayShell, create_shell, state_icon
        from dictate.ui import resources

        app.setWindowIcon(state_icon(resources.APP_ICON))
        self.bridge = Bridge(self.controller)
        self.player = CuePlayer(self.cfg.ui.sounds)
        # Cues go straight from the controller's thread to the sound thread: no GUI hop.
        self.controller.subscribe(self._on_cue)
        actions = Actions(self.bridge, self.cfg.notes_dir)
        actions.quit_requested.connect(app.quit)
        actions.open_files = self.open_files_window
        actions.open_history = self.open_history_window
        actions.open_settings = self.open_settings
        actions.open_models = self.open_models
        state = ShellState(hotkey=self.cfg.hotkeys.dictate,
                           push_to_talk=self.cfg.hotkeys.mode == RecordingMode.PUSH_TO_TALK.value)
        state.recent = type(state.recent)(maxlen=max(1, self.cfg.history.recent_dictations))
        state.recent_source = lambda: [e.text for e in self.controller.recent_dictations()]
        state.elapsed_source = lambda: self.controller.note_elapsed_s
        state.state = getattr(self.controller, "state", None) or "loading"
        if not isinstance(state.state, str):  # an enum
            state.state = getattr(state.state, "value", str(state.state))
        self.shell = create_shell(self.bridge, actions, state, tray_available=self.opts.tray)
        from dictate.ui.overlay import create_overlay

        self.overlay = create_overlay(self.bridge, self.cfg.ui.overlay, lambda: self.controller.model_ready)
        from dictate.ui.notify import create_notifier

        self.notifier = create_notifier(self.shell)
        if self.notifier.desktop is not None:  # errors and notices too, each with the action to take
            self.shell.desktop_notify = self.notifier.desktop.notify
        self.bridge.note_ready.connect(self._on_note_ready)
        self.bridge.show_requested.connect(self._on_show_requested)
        self.bridge.quit_requested.connect(app.quit)
        if self.opts.tray is None and not isinstance(self.shell, TrayShell):
            self._watch_for_tray(app)

    def _watch_for_tray(self, app) -> None:
        """Started before the desktop's panel (autostart does that), the app finds no tray: look
        again every TRAY_RECHECK_MS and move from the stand-in window into the tray once it is there."""
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QSystemTrayIcon

        from dictate.ui.tray import TrayShell

        def check() -> None:
            if not QSystemTrayIcon.isSystemTrayAvailable():
                return
            timer.stop()
            old = self.shell
            self.shell = TrayShell(self.bridge, old.actions, old.model)
            self.shell.desktop_notify = old.desktop_notify
            self.notifier.shell = self.shell
            old.hide()
            old.window.deleteLater()
            old.deleteLater()  # its signal connections go with it
            self.shell.show()
            log.info("ui: a system tray appeared: moved into it")

        timer = QTimer(app)
        timer.setInterval(TRAY_RECHECK_MS)
        timer.timeout.connect(check)
        timer.start()

    def _handle_ipc(self, message: dict) -> dict:
        """IPC thread: the controller answers; `dictate quit` also ends the Qt loop."""
        answer = self.controller.handle_ipc(message)
        if isinstance(message, dict) and message.get("command") == CommandKind.QUIT.value and self.bridge:
            self.bridge.request_quit()
        return answer

    def _on_cue(self, event: Event) -> None:
        if event.kind is EventKind.CUE and self.player is not None:
            self.player.play(str(event.payload.get("sound", "")))

    def _on_show_requested(self) -> None:
        log.info("ui: another launch asked to show the app")
        self.shell.show()
        self.shell.notify("dictate", "dictate is already running", error=False)

    def _start_core(self) -> None:
        try:
            self.controller.start()
        except DictateError as exc:
            log.error("controller: %s", exc)
            self.bridge.post(Event(EventKind.ERROR, {"message": str(exc), "action": "run `dictate doctor`"}))
            return
        self._start_hotkeys()
        self._offer_recovery()

    # -- notes ------------------------------------------------------------------------------
    def _app_engine(self, engine: str | None = None, model: str | None = None):
        """A factory for batch work: the app's own model (on its worker, after live dictation)
        when it is the one asked for, else a separate engine."""
        from dictate.controller import make_engine_factory
        from dictate.notes import WorkerEngine

        if (engine in (None, self.controller.engine_name)) and (model in (None, self.controller.model_name)):
            worker = self.controller.worker
            return lambda: WorkerEngine(worker)
        return make_engine_factory(self.cfg, engine, model)

    def _offer_recovery(self) -> None:
        from dictate.ui.recovery import offer_recovery

        try:
            dialog = offer_recovery(self.cfg, self._app_engine(), self._on_recovered)
        except (DictateError, OSError) as exc:
            log.error("recovery: %s", exc)
            return
        if dialog is not None:
            self.windows["recovery"] = dialog

    def _on_recovered(self, outcome) -> None:
        self._on_note_ready(outcome.note.id, f"note recovered: {outcome.note.folder}")

    def _on_note_ready(self, note_id: str, message: str) -> None:
        from dictate.storage import History

        entry = History(self.cfg.paths.history_db).get(note_id)
        title = entry.title if entry else note_id
        log.info("ui: note ready: %s (%s)", note_id, message)
        self.notifier.notify("dictate: note ready", f"{title}\n{message}", action=("Open", lambda: self.open_note(note_id)))

    def open_note(self, note_id: str) -> None:
        from dictate.ui.note_window import NoteWindow

        key = f"note:{note_id}"
        window = self.windows.get(key)
        if window is None:
            try:
                window = NoteWindow(self.cfg, note_id, engine_factory_for=lambda e, m: self._app_engine(e, m))
            except DictateError as exc:
                self.shell.notify("dictate", str(exc), error=True)
                return
            self.windows[key] = window
        window.show()
        window.raise_()
        window.activateWindow()
        log.info("ui: note window shown for %s", note_id)

    # -- files and history windows -------------------------------------------------------------
    def open_files_window(self) -> None:
        """The files window, on the app's engine worker (after live dictation); one for the app."""
        from dictate.ui.files_window import FilesWindow

        if self.files_window is None:
            self.files_window = FilesWindow(self.cfg, worker=self.controller.worker,
                                            engine_name=self.controller.engine_name,
                                            model=self.controller.model_name, language=self.opts.language,
                                            on_finished=self._on_file_finished)
        _bring_up(self.files_window)
        log.info("ui: files window shown")

    def _on_file_finished(self, job) -> None:
        """A desktop notification when a file is done or failed (not for a cancel: the user did it)."""
        from dictate.filejobs import JobState

        window = self.files_window
        if job.state == JobState.CANCELLED or (window is not None and window.isActiveWindow()):
            return
        show = ("Show", lambda: _bring_up(self.files_window))
        if job.state == JobState.DONE:
            where = ", ".join(p.name for p in job.outputs) or "the history"
            log.info("ui: file transcribed: %s", job.path.name)
            self.notifier.notify("dictate: file transcribed", f"{job.path.name} -> {where}", action=show)
        else:
            log.info("ui: file failed: %s: %s", job.path.name, job.error)
            self.notifier.notify("dictate: a file failed", f"{job.path.name}: {job.error}", error=True, action=show)

    def open_history_window(self) -> None:
        from dictate.notes import WorkerEngine
        from dictate.ui.history_window import HistoryWindow

        if self.history_window is None:
            worker = self.controller.worker
            self.history_window = HistoryWindow(self.cfg, engine_factory=lambda: WorkerEngine(worker))
        else:
            self.history_window.refresh()
        _bring_up(self.history_window)
        log.info("ui: history window shown")

    # -- settings ---------------------------------------------------------------------------
    def open_settings(self) -> None:
        from dictate.ui.settings import SettingsDialog

        dialog = self.windows.get("settings")
        if dialog is None:
            dialog = SettingsDialog(self.cfg, on_saved=self._apply_settings)
            self.windows["settings"] = dialog
        _bring_up(dialog)
        log.info("ui: settings shown")

    def open_models(self) -> None:
        from dictate.ui.models_window import ModelsWindow

        window = self.windows.get("models")
        if window is None:
            window = ModelsWindow(self.cfg)
            self.windows["models"] = window
        else:
            window.refresh()
        _bring_up(window)
        log.info("ui: models shown")

    def _apply_settings(self, new: Config) -> None:
        """What can change without a restart does: the saved values go into the config object the
        controller and windows read, then the cues, the overlay, the hotkeys and the controller
        (live options; a changed engine or model loads in the background) follow. (The dialog names
        what waits for the next start: microphone and typing method.)"""
        import dataclasses

        old_hotkeys = dataclasses.replace(self.cfg.hotkeys)
        for section in dataclasses.fields(Config):
            if section.metadata.get("persist", True):
                target, source = getattr(self.cfg, section.name), getattr(new, section.name)
                for f in dataclasses.fields(target):
                    setattr(target, f.name, getattr(source, f.name))
        self.cfg.problems = []
        self.controller.reconfigure()
        self.player.enabled = self.cfg.ui.sounds
        if self.overlay is not None:
            self.overlay.position = self.cfg.ui.overlay
        elif self.cfg.ui.overlay != "off":
            from dictate.ui.overlay import create_overlay

            self.overlay = create_overlay(self.bridge, self.cfg.ui.overlay, lambda: self.controller.model_ready)
        self.shell.model.hotkey = self.cfg.hotkeys.dictate
        self.shell.model.push_to_talk = self.cfg.hotkeys.mode == RecordingMode.PUSH_TO_TALK.value
        self.shell.refresh()
        if self.cfg.hotkeys != old_hotkeys:
            if self.hotkeys is not None:
                try:
                    self.hotkeys.stop()
                except Exception as exc:  # the old listener is going anyway
                    log.warning("hotkeys: stop failed: %s", exc)
                self.hotkeys = None
            self._start_hotkeys()
        log.info("ui: settings applied")

    def _start_hotkeys(self) -> None:
        try:
            from dictate.hotkeys import create_listener

            self.hotkeys = create_listener(self.cfg, self.controller.submit)
            if self.hotkeys is None:
                log.warning("hotkeys: no global hotkey on this desktop; bind `dictate toggle` in its settings")
                return
            self.hotkeys.start()
            log.info("hotkeys: listening for %s (%s)", self.cfg.hotkeys.dictate, self.cfg.hotkeys.mode)
        except DictateError as exc:
            self.hotkeys = None
            log.warning("hotkeys: %s", exc)
            self.bridge.post(Event(EventKind.ERROR, {
                "message": f"the hotkey does not work: {exc}",
                "action": "change [hotkeys] dictate in the settings, or bind `dictate toggle` in the desktop's shortcuts"}))
        except ImportError as exc:
            log.warning("hotkeys: not available in this build (%s)", exc)

    def _install_signal_handlers(self, app) -> None:
        """SIGINT/SIGTERM quit cleanly. Python runs signal handlers only between bytecodes, and
        the Qt loop sits in C++, so the signal's wakeup byte is watched by a socket notifier."""
        from PySide6.QtCore import QSocketNotifier

        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._wakeup = (r, w)
        signal.set_wakeup_fd(w.fileno())
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        notifier = QSocketNotifier(r.fileno(), QSocketNotifier.Type.Read, app)

        def woke() -> None:
            try:
                r.recv(64)
            except OSError:
                pass
            log.info("ui: signal received, quitting")
            app.quit()

        notifier.activated.connect(woke)
        self._notifier = notifier

    # -- stop -------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
        if self.files_window is not None:
            self.files_window.shutdown()  # cancels its jobs: nothing half-written is left
        if self.notifier is not None:
            self.notifier.close()
        models = self.windows.get("models")
        if models is not None:
            models.cancel_download()  # the download's child process must not outlive the app
        settings = self.windows.get("settings")
        if settings is not None:
            settings.done(0)  # a microphone test gives the device back
        if self.shell is not None:
            self.shell.hide()
        if self.hotkeys is not None:
            try:
                self.hotkeys.stop()
            except Exception as exc:  # shutting down: log and go on
                log.warning("hotkeys: stop failed: %s", exc)
        if self.server is not None:
            self.server.stop()
        if self.controller is not None:
            self.controller.shutdown(timeout_s=10.0)
        if self.player is not None:
            self.player.close()
        if self._wakeup is not None:
            signal.set_wakeup_fd(-1)
            for s in self._wakeup:
                s.close()
        log.info("ui: stopped")


def _bring_up(window) -> None:
    window.show()
    window.raise_()
    window.activateWindow()
