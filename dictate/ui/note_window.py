"""One note (or any history entry with audio): its text, editable and saved as a revision; its
audio, opened in the system's player; and "transcribe again" with another model or beam size.

The window is a view: saving goes through dictate.note_text, re-transcription through
dictate.notes.retranscribe, on a background thread (a long note takes minutes)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from dictate.config import Config
from dictate.errors import DictateError
from dictate.storage import History, HistoryEntry, NoteStatus
from dictate.ui.background import Background

log = logging.getLogger(__name__)

# (engine name, model) -> a zero-argument factory returning an Engine
EngineFactoryFor = Callable[[str, str], Callable[[], Any]]


def default_engine_factory(cfg: Config) -> EngineFactoryFor:
    def factory_for(engine: str, model: str) -> Callable[[], Any]:
        from dictate.controller import make_engine_factory

        return make_engine_factory(cfg, engine, model)
    return factory_for


def _hms(seconds: float | None) -> str:
    s = int(round(seconds or 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def model_choices(engine: str, current: str) -> list[str]:
    from dictate.engines.models import ModelFormat, stock_names

    fmt = ModelFormat.GGML if engine == "whisper.cpp" else ModelFormat.CT2
    names = list(stock_names(fmt))
    return [current] + [n for n in names if n != current] if current else names


class NoteWindow(QWidget):
    def __init__(self, cfg: Config, entry_id: str, *, engine_factory_for: EngineFactoryFor | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.entry_id = entry_id
        self._factory_for = engine_factory_for or default_engine_factory(cfg)
        self._history = History(cfg.paths.history_db)
        self.entry: HistoryEntry | None = None
        self.background = Background(self)
        self.setObjectName("dictate-note-window")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)

        self.title = QLabel()
        self.title.setObjectName("title")
        self.title.setAccessibleName("Title")
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.info = QLabel()
        self.info.setObjectName("info")
        self.info.setAccessibleName("Details")
        self.info.setWordWrap(True)
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("text")
        self.editor.setAccessibleName("Note text")
        self.editor.setTabChangesFocus(True)  # Tab moves on to the buttons, as everywhere else
        self.editor.modificationChanged.connect(self._on_modified)

        self.save_button = QPushButton("&Save text")
        self.save_button.setObjectName("save")
        self.save_button.setAccessibleName("Save text")
        self.save_button.setToolTip("Save the edited text (the previous text is kept as a revision) — Ctrl+S")
        self.save_button.clicked.connect(self.save)
        QShortcut(QKeySequence.StandardKey.Save, self, activated=self.save)
        self.play_button = QPushButton("&Play audio")
        self.play_button.setObjectName("play")
        self.play_button.setAccessibleName("Play audio")
        self.play_button.setToolTip("Open the recording in the system's audio player")
        self.play_button.clicked.connect(self.play)
        self.folder_button = QPushButton("Open &folder")
        self.folder_button.setObjectName("folder")
        self.folder_button.setAccessibleName("Open the note's folder")
        self.folder_button.clicked.connect(self.open_folder)
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.play_button)
        row.addWidget(self.folder_button)
        row.addStretch(1)

        again = QGroupBox("Transcribe again")
        self.model = QComboBox()
        self.model.setObjectName("model")
        self.model.setAccessibleName("Model")
        self.model.setEditable(True)  # a local CTranslate2 folder or ggml file may be typed in
        self.model.setToolTip("A stock model, a CTranslate2 folder or a ggml .bin file")
        self.beam = QSpinBox()
        self.beam.setObjectName("beam")
        self.beam.setAccessibleName("Beam size")
        self.beam.setRange(1, 10)
        self.beam.setToolTip("Beam search width: higher is slower and usually more accurate")
        self.again_button = QPushButton("&Transcribe again")
        self.again_button.setObjectName("retranscribe")
        self.again_button.setAccessibleName("Transcribe again")
        self.again_button.clicked.connect(self.retranscribe)
        self.progress = QProgressBar()
        self.progress.setObjectName("busy")
        self.progress.setAccessibleName("Transcribing")
        self.progress.setRange(0, 0)  # busy: the pass reports no fraction
        self.progress.hide()
        form = QFormLayout(again)
        form.addRow("&Model:", self.model)
        form.addRow("&Beam size:", self.beam)
        form.addRow(self.again_button, self.progress)
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setAccessibleName("Status")
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.info)
        layout.addWidget(self.editor, 1)
        layout.addLayout(row)
        layout.addWidget(again)
        layout.addWidget(self.message)
        self.resize(640, 560)
        self.reload()

    # -- showing ------------------------------------------------------------------------------
    def reload(self) -> None:
        entry = self._history.get(self.entry_id)
        if entry is None:
            raise DictateError(f"no note or transcription with id {self.entry_id}")
        self.entry = entry
        self.setWindowTitle(f"{entry.title or entry.id} — dictate")
        self.title.setText(entry.title or entry.id)
        when = datetime.fromtimestamp(entry.created_at).strftime("%Y-%m-%d %H:%M")
        status = "" if entry.status == NoteStatus.READY else f" · {entry.status}"
        beam = entry.options.get("beam_size")
        self.info.setText(f"{when} · {_hms(entry.duration_s)} · {entry.engine} ({Path(str(entry.model)).name}"
                          + (f", beam {beam}" if beam else "") + f"){status}")
        self.editor.setPlainText(entry.text)
        self.editor.document().setModified(False)
        has_audio = bool(entry.audio_path and Path(entry.audio_path).exists())
        self.play_button.setEnabled(has_audio)
        self.again_button.setEnabled(has_audio and not self.background.busy)
        self.folder_button.setEnabled(bool(entry.location))
        self.model.clear()
        self.model.addItems(model_choices(str(entry.engine or self.cfg.engine.name), str(entry.model or "")))
        self.beam.setValue(int(beam or self.cfg.notes.beam_size))
        self._on_modified(False)
        if entry.status == NoteStatus.PENDING:
            self.message.setText(entry.error or "Not transcribed yet: transcribe it again below.")

    def _on_modified(self, modified: bool) -> None:
        self.save_button.setEnabled(modified)

    # -- actions ------------------------------------------------------------------------------
    def save(self) -> None:
        if not self.editor.document().isModified():
            return
        from dictate.dataset import edit_entry

        try:
            # The one path for a corrected text: a revision, note.md, and a training pair when
            # the user collects corrections ([dataset] collect_corrections).
            result = edit_entry(self.cfg, self.entry_id, self.editor.toPlainText())
        except DictateError as exc:
            self.message.setText(f"Not saved: {exc}")
            return
        revisions = len(self._history.revisions(self.entry_id))
        self.reload()
        pair = " and kept as a training pair" if result.pair is not None else ""
        notice = f" ({result.notice})" if result.notice else ""
        self.message.setText(f"Saved{pair}; the earlier text is kept "
                             f"({revisions} revision{'s' * (revisions != 1)}).{notice}")

    def play(self) -> None:
        path = self.entry.audio_path if self.entry else None
        if not path:
            return
        log.info("ui: opening %s in the audio player", path)
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
            self.message.setText(f"No audio player opened {path}.")

    def open_folder(self) -> None:
        if self.entry and self.entry.location:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.entry.location))

    def retranscribe(self) -> None:
        if self.entry is None or self.background.busy:
            return
        from dictate.notes import retranscribe

        engine = str(self.entry.engine or self.cfg.engine.name)
        model = self.model.currentText().strip() or str(self.entry.model)
        beam = self.beam.value()
        factory = self._factory_for(engine, model)
        self.again_button.setEnabled(False)
        self.progress.show()
        self.message.setText(f"Transcribing again with {Path(model).name}, beam {beam}…")
        log.info("ui: re-transcribing %s with %s, beam %d", self.entry_id, model, beam)
        self.background.run("dictate-retranscribe",
                            lambda: retranscribe(self.cfg, self.entry_id, factory, engine=engine, model=model,
                                                 overrides={"beam_size": beam}),
                            self._retranscribed)

    def _retranscribed(self, entry: HistoryEntry | None, error: BaseException | None) -> None:
        self.progress.hide()
        if error is not None:
            self.again_button.setEnabled(True)
            self.message.setText(f"Not transcribed again: {error}")
            log.info("ui: re-transcription failed: %s", error)
            return
        self.reload()
        self.message.setText("Transcribed again; the earlier text is kept as a revision.")
        log.info("ui: re-transcribed %s", self.entry_id)
