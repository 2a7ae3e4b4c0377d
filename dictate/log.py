"""Logging: a rotating file in the user log dir (for bug reports) and terse messages on stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"

# Engines that log a line per call ("Processing audio with duration …", "Transcribing …"): live
# dictation makes a call a second, which would bury our own lines. Shown with -vv.
_CHATTY = ("faster_whisper", "pywhispercpp")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the moment (tests and embedders swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup(log_dir: Path | None, verbosity: int = 0) -> None:
    """verbosity: 0 warnings, 1 info, 2+ debug on stderr; the file always gets info and above."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dictate", False):
            root.removeHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if verbosity >= 2 else logging.WARNING)

    stderr = _StderrHandler()
    stderr.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))
    stderr.setFormatter(logging.Formatter("dictate: %(message)s" if verbosity == 0 else _FORMAT))
    stderr._dictate = True  # type: ignore[attr-defined]
    root.addHandler(stderr)

    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            file = logging.handlers.RotatingFileHandler(
                log_dir / "dictate.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
        except OSError as exc:  # a read-only home must not stop the app
            logging.getLogger(__name__).warning("cannot write the log file in %s: %s", log_dir, exc)
            return
        file.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
        file.setFormatter(logging.Formatter(_FORMAT))
        file._dictate = True  # type: ignore[attr-defined]
        root.addHandler(file)
