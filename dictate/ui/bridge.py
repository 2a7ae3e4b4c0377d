"""Controller Events -> Qt signals on the GUI thread; Commands back to the controller.

The controller calls its subscribers on its own thread. `Bridge.post` only emits one signal, and
that signal reaches `_dispatch` through a queued connection, so every widget-facing signal below
is emitted on the thread the Bridge lives on (the GUI thread) and no widget code runs elsewhere.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Protocol

from PySide6.QtCore import QObject, Qt, Signal, Slot

from dictate.types import Command, CommandKind, Event, EventKind

log = logging.getLogger(__name__)


class ControllerLike(Protocol):
    def submit(self, command: Command) -> None: ...
    def subscribe(self, callback: Callable[[Event], None]) -> Any: ...


class Bridge(QObject):
    state_changed = Signal(str)  # idle | loading | listening | transcribing | note-recording | error
    partial = Signal(str)
    committed = Signal(str)
    level = Signal(float)  # dBFS
    progress = Signal(float, str)  # fraction 0..1, label
    error = Signal(str, str)  # message, action to take
    notice = Signal(str)
    show_requested = Signal()  # a second launch asked the running app to show itself
    quit_requested = Signal()  # `dictate quit` over IPC
    _event = Signal(object)  # any thread -> GUI thread

    def __init__(self, controller: ControllerLike, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._closed = threading.Event()
        self._event.connect(self._dispatch, Qt.ConnectionType.QueuedConnection)
        controller.subscribe(self.post)

    # -- controller thread --------------------------------------------------------------------
    def post(self, event: Event) -> None:
        """Called by the controller on its thread: hand the event to the GUI thread and return."""
        if self._closed.is_set():
            return
        try:
            self._event.emit(event)
        except RuntimeError:  # the Qt object is gone (shutting down)
            self._closed.set()

    def request_quit(self) -> None:
        """Any thread: ask the GUI thread to end the app (signals cross threads queued)."""
        if not self._closed.is_set():
            self.quit_requested.emit()

    def close(self) -> None:
        """Stop forwarding: events that arrive while the app shuts down are dropped."""
        self._closed.set()

    # -- GUI thread ---------------------------------------------------------------------------
    @Slot(object)
    def _dispatch(self, event: Event) -> None:
        if self._closed.is_set():
            return
        p = event.payload
        kind = event.kind
        if kind is EventKind.STATE:
            self.state_changed.emit(str(p.get("state", "")))
        elif kind is EventKind.PARTIAL:
            self.partial.emit(str(p.get("text", "")))
        elif kind is EventKind.COMMITTED:
            self.committed.emit(str(p.get("text", "")))
        elif kind is EventKind.ERROR:
            self.error.emit(str(p.get("message", "")), str(p.get("action", "") or ""))
        elif kind is EventKind.NOTICE:
            self.notice.emit(str(p.get("message", "")))
        elif kind is EventKind.PROGRESS:
            self.progress.emit(float(p.get("fraction", 0.0) or 0.0), str(p.get("label", "")))
        elif kind is EventKind.LEVEL:
            self.level.emit(float(p.get("dbfs", -120.0)))
        elif kind is EventKind.SHOW:
            self.show_requested.emit()

    def submit(self, kind: CommandKind, **payload: Any) -> None:
        """A Command from the menu or a window; the controller's queue takes it from any thread."""
        log.info("ui: %s", kind.value)
        self._controller.submit(Command(kind, payload))
