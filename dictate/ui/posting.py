"""Calls from any thread run on the GUI thread: wrapped in a QEvent and posted (thread-safe), as
dictate.ui.bridge does for the controller's events (not Signal.emit: see bridge.py for why)."""

from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject

log = logging.getLogger(__name__)


class _Call(QEvent):
    TYPE = QEvent.Type(QEvent.registerEventType())

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__(_Call.TYPE)
        self.fn, self.args = fn, args


class Poster(QObject):
    """`poster.call(fn, *args)` from any thread: `fn(*args)` runs on the thread the Poster lives on."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._closed = False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._closed:
            return
        try:
            QCoreApplication.postEvent(self, _Call(fn, args))
        except RuntimeError:  # the Qt object is gone (shutting down)
            self._closed = True

    def close(self) -> None:
        self._closed = True

    def event(self, e: QEvent) -> bool:  # noqa: D401 - Qt override
        if e.type() == _Call.TYPE:
            if not self._closed:
                try:
                    e.fn(*e.args)
                except Exception:
                    log.exception("ui: posted call failed")
            return True
        return super().event(e)
