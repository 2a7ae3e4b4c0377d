"""Work that must not run on the GUI thread (re-transcription, recovery, downloads, training):
each call gets its own named thread; its result, or the exception it raised, comes back to a
callback on the GUI thread through a Poster (posted QEvents; see bridge.py for why not signals)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject

from dictate.errors import DictateError
from dictate.ui.posting import Poster

log = logging.getLogger(__name__)

Done = Callable[[Any, BaseException | None], None]  # (result, error): error is None on success


class Background(Poster):
    """`run(name, fn, on_done)`: fn() on thread `name`, then on_done(result, error) on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threads: list[threading.Thread] = []

    def run(self, name: str, fn: Callable[[], Any], on_done: Done) -> threading.Thread:
        def work() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except Exception as exc:  # handed to the GUI thread, which says it in one line
                if not isinstance(exc, DictateError):  # expected failures are one line, no traceback
                    log.exception("%s failed", name)
                error = exc
            self.call(on_done, result, error)

        thread = threading.Thread(target=work, name=name, daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def post(self, callback: Callable[[], None]) -> None:
        """From any thread: call `callback` on the GUI thread."""
        self.call(callback)

    @property
    def busy(self) -> bool:
        return any(t.is_alive() for t in self.threads)
