"""The history window: full-text search over dictations, notes and file transcriptions; copy,
transcribe again, delete, open the audio. A thin view over dictate.storage.History (sqlite, fast
enough for the GUI thread); re-transcription runs on a thread of its own, on the engine the caller
gives (the app's shared worker), and its end reaches the GUI thread through a Poster."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMessageBox, QPlainTextEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from dictate.config import Config
from dictate.errors import DictateError
from dictate.storage import History, HistoryEntry
from dictate.ui.posting import Poster

log = logging.getLogger(__name__)

KINDS = (("All", None), ("Dictations", "dictation"), ("Notes", "note"), ("Files", "file"))
COLUMNS = ("When", "Kind", "Title", "Length")
SEARCH_DELAY_MS = 150  # search as the user types, once they pause
LIMIT = 500


def _length(seconds: float | None) -> str:
    if not seconds:
        return ""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class HistoryWindow(QWidget):
    def __init__(self, cfg: Config, *, engine_factory: Callable[[], Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.history = History(cfg.paths.history_db)
        self.engine_factory = engine_factory
        self.entries: list[HistoryEntry] = []
        # Asked before deleting; tests answer for the user.
        self.confirm: Callable[[str], bool] = self._ask
        self._poster = Poster(self)
        self._busy: str | None = None  # the entry being transcribed again
        self.setObjectName("dictate-history")
        self.setWindowTitle("History — dictate")
        self._build()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.search_edit.textChanged.connect(lambda *_: self._timer.start())
        self.kind_box.currentIndexChanged.connect(lambda *_: self.refresh())
        self.resize(820, 560)
        self.refresh()

    def _build(self) -> None:
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("search")
        self.search_edit.setAccessibleName("Search the history")
        self.search_edit.setPlaceholderText("Search dictations, notes and files…")
        self.search_edit.setClearButtonEnabled(True)
        self.kind_box = QComboBox()
        self.kind_box.setObjectName("kind")
        self.kind_box.setAccessibleName("Show")
        for label, _kind in KINDS:
            self.kind_box.addItem(label)
        top = QHBoxLayout()
        top.addWidget(self.search_edit, 1)
        top.addWidget(self.kind_box)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("entries")
        self.table.setAccessibleName("History entries")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._show_selected)

        self.text = QPlainTextEdit()
        self.text.setObjectName("text")
        self.text.setAccessibleName("Text of the selected entry")
        self.text.setReadOnly(True)
        self.details = QLabel("")
        self.details.setObjectName("details")
        self.details.setWordWrap(True)
        self.copy_button = self._button("Copy", "copy", self.copy)
        self.retranscribe_button = self._button("Transcribe again", "retranscribe", self.retranscribe)
        self.delete_button = self._button("Delete", "delete", self.delete)
        self.audio_button = self._button("Open audio", "open-audio", self.open_audio)
        buttons = QHBoxLayout()
        for b in (self.copy_button, self.retranscribe_button, self.audio_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.status = QLabel("")
        self.status.setObjectName("status")
        self.status.setWordWrap(True)

        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.details)
        lower_layout.addWidget(self.text, 1)
        lower_layout.addLayout(buttons)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([420, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

    def _button(self, label: str, name: str, slot) -> QPushButton:
        b = QPushButton(label)
        b.setObjectName(name)
        b.setAccessibleName(label)
        b.clicked.connect(lambda *_: slot())
        return b

    # -- listing -----------------------------------------------------------------------------
    def kind(self) -> str | None:
        return KINDS[self.kind_box.currentIndex()][1]

    def refresh(self, select_id: str | None = None) -> None:
        """Search again (the words typed, every one of them, as prefixes) and keep the selection."""
        keep = select_id or (self.selected().id if self.selected() else None)
        try:
            self.entries = self.history.search(self.search_edit.text(), kind=self.kind(), limit=LIMIT)
        except DictateError as exc:
            self.entries = []
            self.status.setText(str(exc))
        self.table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            when = datetime.fromtimestamp(e.created_at).strftime("%Y-%m-%d %H:%M")
            title = e.title or e.text[:60]
            if e.status not in ("ready", "done", ""):
                title += f" ({e.status})"
            for col, value in enumerate((when, e.kind, title, _length(e.duration_s))):
                item = QTableWidgetItem(value)
                item.setToolTip(e.location or "")
                self.table.setItem(row, col, item)
        rows = [i for i, e in enumerate(self.entries) if e.id == keep]
        if rows:
            self.table.selectRow(rows[0])
        elif self.entries:
            self.table.selectRow(0)
        self._show_selected()

    def selected(self) -> HistoryEntry | None:
        row = self.table.currentRow() if hasattr(self, "table") else -1
        return self.entries[row] if 0 <= row < len(self.entries) else None

    def _show_selected(self) -> None:
        e = self.selected()
        self.text.setPlainText(e.text if e else "")
        if e is None:
            self.details.setText("Nothing found." if self.search_edit.text().strip() else "The history is empty.")
        else:
            parts = [e.kind, datetime.fromtimestamp(e.created_at).strftime("%Y-%m-%d %H:%M")]
            parts += [p for p in (e.engine, Path(e.model).name if e.model else None) if p]
            if e.error:
                parts.append(f"error: {e.error}")
            self.details.setText(" · ".join(parts))
        has_audio = bool(e and e.audio_path and Path(e.audio_path).exists())
        self.copy_button.setEnabled(bool(e and e.text))
        self.delete_button.setEnabled(e is not None and self._busy != (e.id if e else None))
        self.audio_button.setEnabled(has_audio)
        self.retranscribe_button.setEnabled(has_audio and self.engine_factory is not None and self._busy is None)

    # -- actions -----------------------------------------------------------------------------
    def copy(self) -> None:
        e = self.selected()
        if e is not None:
            QGuiApplication.clipboard().setText(e.text)
            self.status.setText("Copied.")

    def open_audio(self) -> QUrl | None:
        e = self.selected()
        if e is None or not e.audio_path:
            return None
        url = QUrl.fromLocalFile(e.audio_path)
        log.info("ui: opening %s", e.audio_path)
        if not QDesktopServices.openUrl(url):
            self.status.setText(f"No application opened {e.audio_path}")
        return url

    def delete(self) -> None:
        e = self.selected()
        if e is None or not self.confirm(f"Delete “{e.title or e.id}” from the history?"):
            return
        try:
            self.history.delete(e.id)
        except DictateError as exc:
            self.status.setText(str(exc))
            return
        kept = f" (its audio stays in {Path(e.audio_path).parent})" if e.audio_path else ""
        self.status.setText(f"Deleted from the history{kept}.")
        self.refresh()

    def retranscribe(self) -> threading.Thread | None:
        """Transcribe the selected entry's audio again (a note's settings, or a file's); the old
        text becomes a revision. Returns the thread doing it."""
        e = self.selected()
        if e is None or self.engine_factory is None or self._busy is not None:
            return None
        from dictate.notes import retranscribe

        self._busy = e.id
        self.status.setText(f"Transcribing “{e.title or e.id}” again…")
        self._show_selected()
        factory = self.engine_factory

        def work() -> None:
            try:
                entry = retranscribe(self.cfg, e.id, factory, engine=e.engine, model=e.model)
                self._poster.call(self._retranscribed, entry, None)
            except DictateError as exc:
                self._poster.call(self._retranscribed, None, str(exc))
            except Exception as exc:  # a bug: said in one line, the window stays
                log.exception("retranscribe failed")
                self._poster.call(self._retranscribed, None, f"transcribing again failed: {exc}")

        thread = threading.Thread(target=work, name="dictate-retranscribe", daemon=True)
        thread.start()
        return thread

    def _retranscribed(self, entry: HistoryEntry | None, error: str | None) -> None:
        busy, self._busy = self._busy, None
        self.status.setText(error or "Transcribed again; the previous text is kept as a revision.")
        self.refresh(select_id=entry.id if entry else busy)

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self, "dictate", question)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        event.accept()
