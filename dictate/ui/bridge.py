"""Controller Events -> the GUI thread; Commands back to the controller.

The controller calls its subscribers on its own thread. `Bridge.post` only wraps the event in a
QEvent and posts it to the Bridge (QCoreApplication.postEvent is thread-safe; Qt queues it to the
thread the Bridge lives on, the GUI thread), and `event()` hands it to the listeners there, so no
widget code runs on another thread.

Why not queued Signal.emit(): PySide6 6.12.0's SignalInstance.emit() drops a reference to the
`True` it returns on every call, so an app emitting the level meter's ten events a second aborts
within minutes ("bool_dealloc: deallocating True or False"). Qt's own (C++) signals are not
affected, nor is postEvent. The listeners below are plain Python hooks with the same
connect()/emit() shape, called on the GUI thread only.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Protocol

from PySide6.QtCore import QCoreApplication, QEvent, QObject

from dictate.types import Command, CommandKind, Event, EventKind

log = logging.getLogger(__name__)


class ControllerLike(Protocol):
    def submit(self, command: Command) -> None: ...
    def subscribe(self, callback: Callable[[Event], None]) -> Any: ...


class Hook:
    """A GUI-thread notification with a Qt-signal shape: connect(callback), emit(*args)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            try:
                callback(*args)
            except Exception:  # one broken listener must not stop the others, nor the app
                log.exception("ui: %s listener failed", self.name)


class _Posted(QEvent):
    TYPE = QEvent.Type(QEvent.registerEventType())

    def __init__(self, event: Event | None) -> None:
        super().__init__(_Posted.TYPE)
        self.payload = event  # None: quit


class Bridge(QObject):
    def __init__(self, controller: ControllerLike, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._closed = threading.Event()
        self.state_changed = Hook("state")  # (state) idle | loading | listening | transcribing | note-recording | error
        self.partial = Hook("partial")  # (text)
        self.committed = Hook("committed")  # (text)
        self.level = Hook("level")  # (dBFS)
        self.progress = Hook("progress")  # (fraction 0..1, label)
        self.error = Hook("error")  # (message, action to take)
        self.notice = Hook("notice")  # (message)
        self.note_ready = Hook("note-ready")  # (note id, message): a note's text is ready
        self.dictation_done = Hook("done")  # (status done|cancelled|failed, text)
        self.show_requested = Hook("show")  # a second launch asked the running app to show itself
        self.quit_requested = Hook("quit")  # `dictate quit` over IPC
        controller.subscribe(self.post)

    # -- any thread ---------------------------------------------------------------------------
    def post(self, event: Event) -> None:
        """Called by the controller on its thread: hand the event to the GUI thread and return."""
        self._post(event)

    def request_quit(self) -> None:
        """Ask the GUI thread to end the app."""
        self._post(None)

    def _post(self, event: Event | None) -> None:
        if self._closed.is_set():
            return
        try:
            QCoreApplication.postEvent(self, _Posted(event))
        except RuntimeError:  # the Qt object is gone (shutting down)
            self._closed.set()

    def close(self) -> None:
        """Stop forwarding: events that arrive while the app shuts down are dropped."""
        self._closed.set()

    # -- GUI thread ---------------------------------------------------------------------------
    def event(self, e: QEvent) -> bool:  # noqa: D401 - Qt override
        if e.type() == _Posted.TYPE:
            if not self._closed.is_set():
                if e.payload is None:
                    self.quit_requested.emit()
                else:
                    self._dispatch(e.payload)
            return True
        return super().event(e)

    def _dispatch(self, event: Event) -> None:
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
        elif kind is EventKind.NOTICE and p.get("note_id"):
            self.note_ready.emit(str(p["note_id"]), str(p.get("message", "")))
        elif kind is EventKind.NOTICE:
            self.notice.emit(str(p.get("message", "")))
        elif kind is EventKind.PROGRESS:
            self.progress.emit(float(p.get("fraction", 0.0) or 0.0), str(p.get("label", "")))
        elif kind is EventKind.LEVEL:
            self.level.emit(float(p.get("dbfs", -120.0)))
        elif kind is EventKind.SHOW:
            self.show_requested.emit()
        elif kind is EventKind.DONE:
            self.dictation_done.emit(str(p.get("status", "")), str(p.get("text", "") or ""))

    def submit(self, kind: CommandKind, **payload: Any) -> None:
        """A Command from the menu or a window; the controller's queue takes it from any thread."""
        log.info("ui: %s", kind.value)
        self._controller.submit(Command(kind, payload))
