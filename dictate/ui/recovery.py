"""At start-up: recordings that a crash (or a kill) left unfinished are offered for recovery.
Recover makes each a note with dictate.notes.recover (on a background thread, through the app's
engine); Discard deletes them; Later leaves them for the next start or `dictate note recover`."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QMessageBox, QVBoxLayout, QWidget

from dictate.audio.journal import Journal, find_unfinished
from dictate.config import Config
from dictate.types import SAMPLE_RATE_HZ
from dictate.ui.background import Background

log = logging.getLogger(__name__)


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def describe(journal: Journal) -> str:
    samples = journal.repair()  # a torn last write is cut, so the length shown is what is kept
    when = str(journal.sidecar.get("created_at", ""))[:16].replace("T", " ")
    return f"{when or journal.id} — {_mmss(samples / SAMPLE_RATE_HZ)} recorded"


class RecoveryDialog(QDialog):
    """`on_recovered(outcome)` is called on the GUI thread for each note made."""

    def __init__(self, cfg: Config, journals: list[Journal], engine_factory: Callable[[], Any], *,
                 on_recovered: Callable[[Any], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.journals = journals
        self._engine_factory = engine_factory
        self._on_recovered = on_recovered
        self.background = Background(self)
        self.setObjectName("dictate-recovery")
        self.setWindowTitle("dictate — unfinished recordings")
        n = len(journals)
        self.heading = QLabel(f"{n} recording{'s were' if n != 1 else ' was'} not finished (dictate was closed "
                              "while recording a note). Nothing recorded is lost: make notes of them now?")
        self.heading.setWordWrap(True)
        self.heading.setAccessibleName("What was found")
        self.list = QListWidget()
        self.list.setObjectName("recordings")
        self.list.setAccessibleName("Unfinished recordings")
        for j in journals:
            self.list.addItem(describe(j))
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setAccessibleName("Status")
        self.buttons = QDialogButtonBox()
        self.recover_button = self.buttons.addButton("&Recover", QDialogButtonBox.ButtonRole.AcceptRole)
        self.recover_button.setObjectName("recover")
        self.recover_button.setAccessibleName("Recover the recordings as notes")
        self.recover_button.setDefault(True)
        self.discard_button = self.buttons.addButton("&Discard", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.discard_button.setObjectName("discard")
        self.discard_button.setAccessibleName("Delete the recordings")
        self.later_button = self.buttons.addButton("&Later", QDialogButtonBox.ButtonRole.RejectRole)
        self.later_button.setObjectName("later")
        self.later_button.setAccessibleName("Decide later")
        self.recover_button.clicked.connect(self.recover)
        self.discard_button.clicked.connect(self.discard)
        self.later_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.list)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(480, 260)
        self.recover_button.setFocus(Qt.FocusReason.OtherFocusReason)

    def recover(self) -> None:
        from dictate.notes import recover

        self.buttons.setEnabled(False)
        self.status.setText("Transcribing…")
        log.info("ui: recovering %d recording(s)", len(self.journals))

        def work() -> list:
            return [recover(self.cfg, j, self._engine_factory) for j in self.journals]

        self.background.run("dictate-recover", work, self._done)

    def _done(self, outcomes: list | None, error: BaseException | None) -> None:
        if error is not None:
            log.error("ui: recovery failed: %s", error)
            self.buttons.setEnabled(True)
            self.status.setText(f"Not recovered: {error} (the recordings are kept)")
            return
        for outcome in outcomes or []:
            if outcome.note is None:
                log.error("ui: recovery: %s", outcome.error)
                continue
            log.info("ui: recovered note %s", outcome.note.id)
            self._on_recovered(outcome)
        self.accept()

    def discard(self) -> None:
        sure = QMessageBox.question(self, "dictate", "Delete these recordings? This cannot be undone.")
        if sure != QMessageBox.StandardButton.Yes:
            return
        for j in self.journals:
            j.delete()
        log.info("ui: discarded %d unfinished recording(s)", len(self.journals))
        self.accept()


def offer_recovery(cfg: Config, engine_factory: Callable[[], Any], on_recovered: Callable[[Any], None]
                   ) -> RecoveryDialog | None:
    """The dialog, shown, when unfinished recordings exist; None otherwise."""
    journals = find_unfinished(cfg.paths.journal_dir)
    if not journals:
        return None
    log.info("ui: recovery offered for %d recording(s)", len(journals))
    dialog = RecoveryDialog(cfg, journals, engine_factory, on_recovered=on_recovered)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
