"""The files window: drop files or folders (or pick them), a queue with per-file state,
progress, elapsed time and ETA, a cancel per job, options per job (engine, model, language,
formats, output folder), and the results with their timestamps: copy, open the output folder,
export as TXT/SRT/VTT/JSON. A thin view over dictate.filejobs.FileQueue, whose threads do the
work; their updates reach the GUI thread through a Poster."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu, QPlainTextEdit, QProgressBar,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from dictate.config import Config
from dictate.engines import BUILTIN_ENGINES
from dictate.errors import DictateError, OutputError
from dictate.filejobs import DEFAULT_FORMATS, FileJob, FileQueue, JobOptions, JobState
from dictate.formats import FORMATS, render
from dictate.fsutil import write_atomic
from dictate.ui.posting import Poster

log = logging.getLogger(__name__)

COLUMNS = ("File", "State", "Progress", "Elapsed", "ETA", "")
STATE_LABELS = {JobState.QUEUED: "Queued", JobState.DECODING: "Decoding", JobState.TRANSCRIBING: "Transcribing",
                JobState.DONE: "Done", JobState.FAILED: "Failed", JobState.CANCELLED: "Cancelled"}


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def stamp(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms // 100 % 10}"


def result_text(job: FileJob) -> str:
    """The transcript with each segment's times, as the results view shows it."""
    if job.result is None:
        return job.error or ""
    return "\n".join(f"[{stamp(s.start_s)} → {stamp(s.end_s)}] {s.text.strip()}"
                     for s in job.result.segments if s.text.strip())


class FilesWindow(QWidget):
    def __init__(self, cfg: Config, *, worker: Any = None, engine_name: str | None = None, model: str | None = None,
                 language: str | None = None, formats: Sequence[str] | None = None, out_dir: Path | None = None,
                 keep_history: bool = True, base_options: Any = None, quit_on_close: bool = False,
                 on_finished: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.quit_on_close = quit_on_close
        self.on_finished = on_finished  # job -> None, on the GUI thread, once per finished job
        self._announced: set[int] = set()
        self.setObjectName("dictate-files")
        self.setWindowTitle("Transcribe files — dictate")
        self.setAcceptDrops(True)
        self._poster = Poster(self)
        self.queue = FileQueue(cfg, worker=worker, engine_name=engine_name, model=model,
                               on_update=lambda job: self._poster.call(self._job_changed, job),
                               base_options=base_options, keep_history=keep_history)
        self._rows: dict[int, int] = {}  # job id -> table row
        self._jobs: dict[int, FileJob] = {}
        self._out_dir: Path | None = None
        self._build(engine_name or cfg.engine.name, str(model or cfg.engine.model), language)
        if formats:
            for fmt, box in self.format_boxes.items():
                box.setChecked(fmt in formats)
        self.set_output_dir(out_dir)
        self._ticker = QTimer(self)
        self._ticker.setInterval(250)  # elapsed and ETA move on between segments
        self._ticker.timeout.connect(self._tick)
        self._ticker.start()
        self.resize(860, 600)

    # -- building ----------------------------------------------------------------------------
    def _build(self, engine: str, model: str, language: str | None) -> None:
        self.hint = QLabel("Drop audio or video files, or whole folders, here — or add them with the buttons.")
        self.hint.setObjectName("drop-hint")
        self.hint.setWordWrap(True)
        self.add_files_button = self._button("Add files…", "add-files", self.pick_files)
        self.add_folder_button = self._button("Add folder…", "add-folder", self.pick_folder)
        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        top.addWidget(self.add_files_button)
        top.addWidget(self.add_folder_button)

        options = QGroupBox("Options for the next files")
        form = QFormLayout(options)
        self.engine_box = QComboBox()
        self.engine_box.setEditable(True)  # module:attribute engines too
        self.engine_box.addItems(list(dict.fromkeys([engine, *BUILTIN_ENGINES])))
        self._named(self.engine_box, "engine", "Engine")
        self.model_edit = QLineEdit(model)
        self._named(self.model_edit, "model", "Model: a stock name, a CTranslate2 folder or a ggml file")
        self.language_edit = QLineEdit(language or self.cfg.engine.language)
        self.language_edit.setPlaceholderText("detect")
        self._named(self.language_edit, "language", "Language code, empty to detect")
        formats = QHBoxLayout()
        self.format_boxes: dict[str, QCheckBox] = {}
        for fmt in FORMATS:
            box = QCheckBox(fmt.upper())
            box.setChecked(fmt in DEFAULT_FORMATS)
            self._named(box, f"format-{fmt}", f"Write {fmt.upper()}")
            formats.addWidget(box)
            self.format_boxes[fmt] = box
        formats.addStretch(1)
        out = QHBoxLayout()
        self.out_label = QLabel("next to each file")
        self.out_label.setObjectName("output-folder")
        out.addWidget(self.out_label, 1)
        out.addWidget(self._button("Choose…", "choose-output", self.pick_output_dir))
        out.addWidget(self._button("Next to each file", "output-beside", lambda: self.set_output_dir(None)))
        self.overwrite_box = QCheckBox("Replace existing files")
        self._named(self.overwrite_box, "overwrite", "Replace output files that already exist")
        form.addRow("&Engine", self.engine_box)
        form.addRow("&Model", self.model_edit)
        form.addRow("&Language", self.language_edit)
        form.addRow("Formats", formats)
        form.addRow("Output folder", out)
        form.addRow("", self.overwrite_box)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("queue")
        self.table.setAccessibleName("Queue of files")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._show_selected)

        self.results = QPlainTextEdit()
        self.results.setObjectName("results")
        self.results.setAccessibleName("Transcript of the selected file, with times")
        self.results.setReadOnly(True)
        self.results.setPlaceholderText("Select a finished file to see its transcript.")
        self.copy_button = self._button("Copy", "copy", self.copy_result)
        self.open_button = self._button("Open output folder", "open-folder", self.open_output_folder)
        self.export_button = QPushButton("Export…")
        self._named(self.export_button, "export", "Export the selected transcript")
        menu = QMenu(self.export_button)
        for fmt in FORMATS:
            menu.addAction(fmt.upper(), lambda f=fmt: self.pick_export(f))
        self.export_button.setMenu(menu)
        actions = QHBoxLayout()
        for b in (self.copy_button, self.open_button, self.export_button):
            actions.addWidget(b)
        actions.addStretch(1)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.results, 1)
        lower_layout.addLayout(actions)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(options)
        layout.addWidget(split, 1)
        self._update_result_buttons()

    def _button(self, label: str, name: str, slot) -> QPushButton:
        b = QPushButton(label)
        self._named(b, name, label.rstrip("…"))
        b.clicked.connect(lambda *_: slot())
        return b

    @staticmethod
    def _named(widget: QWidget, name: str, accessible: str) -> None:
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)

    # -- input -------------------------------------------------------------------------------
    def options(self) -> JobOptions:
        """The options the next files get, from the controls."""
        formats = tuple(f for f, box in self.format_boxes.items() if box.isChecked()) or DEFAULT_FORMATS
        return JobOptions(engine=self.engine_box.currentText().strip() or None,
                          model=self.model_edit.text().strip() or None,
                          language=self.language_edit.text().strip() or None, formats=formats,
                          out_dir=self._out_dir, overwrite=self.overwrite_box.isChecked())

    def add_paths(self, paths: Sequence[Path | str]) -> list[FileJob]:
        jobs = self.queue.add([Path(p) for p in paths], self.options())
        log.info("ui: %d file(s) queued", len(jobs))
        return jobs

    def pick_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Transcribe files", "",
                                                "Audio and video (*.wav *.mp3 *.flac *.ogg *.opus *.m4a *.aac "
                                                "*.mp4 *.mkv *.webm *.mov);;All files (*)")
        if files:
            self.add_paths(files)

    def pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Transcribe a folder")
        if folder:
            self.add_paths([folder])

    def pick_output_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Write the transcripts into")
        if folder:
            self.set_output_dir(Path(folder))

    def set_output_dir(self, folder: Path | None) -> None:
        self._out_dir = folder
        self.out_label.setText(str(folder) if folder else "next to each file")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt name
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt name
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        log.info("ui: %d path(s) dropped", len(paths))
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # -- queue -------------------------------------------------------------------------------
    def job(self, row: int) -> FileJob:
        return next(j for j_id, j in self._jobs.items() if self._rows[j_id] == row)

    def row_of(self, job: FileJob) -> int:
        return self._rows[job.id]

    def cancel_job(self, job: FileJob) -> None:
        log.info("ui: cancel %s", job.path.name)
        self.queue.cancel(job)

    def _job_changed(self, job: FileJob) -> None:
        if job.id not in self._rows:
            self._add_row(job)
        row = self._rows[job.id]
        self.table.item(row, 1).setText(STATE_LABELS.get(job.state, job.state))
        if job.error:
            self.table.item(row, 1).setToolTip(job.error)
            self.table.item(row, 0).setToolTip(job.error)
        bar: QProgressBar = self.table.cellWidget(row, 2)
        bar.setValue(int(job.fraction * 1000))
        self._times(job, row)
        cancel: QPushButton = self.table.cellWidget(row, 5)
        cancel.setEnabled(not job.finished)
        if job.finished and self.table.currentRow() in (-1, row):
            self.table.selectRow(row)
        if self.table.currentRow() == row:
            self._show_selected()
        if job.finished and job.id not in self._announced:
            self._announced.add(job.id)
            if self.on_finished is not None:
                self.on_finished(job)

    def _add_row(self, job: FileJob) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[job.id], self._jobs[job.id] = row, job
        name = QTableWidgetItem(job.path.name)
        name.setToolTip(str(job.path))
        self.table.setItem(row, 0, name)
        for col in (1, 3, 4):
            self.table.setItem(row, col, QTableWidgetItem(""))
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setAccessibleName(f"Progress of {job.path.name}")
        bar.setFormat("%p%")
        self.table.setCellWidget(row, 2, bar)
        cancel = QPushButton("Cancel")
        cancel.setObjectName(f"cancel-{job.id}")
        cancel.setAccessibleName(f"Cancel {job.path.name}")
        cancel.clicked.connect(lambda *_: self.cancel_job(job))
        self.table.setCellWidget(row, 5, cancel)

    def _times(self, job: FileJob, row: int) -> None:
        self.table.item(row, 3).setText(clock(job.elapsed_s()) if job.started_at is not None else "")
        eta = job.eta_s()
        self.table.item(row, 4).setText(clock(eta) if eta is not None else ("0:00" if job.state == JobState.DONE
                                                                              else ""))

    def _tick(self) -> None:
        for job_id, row in self._rows.items():
            job = self._jobs[job_id]
            if not job.finished and job.started_at is not None:
                self._times(job, row)

    # -- results -----------------------------------------------------------------------------
    def selected_job(self) -> FileJob | None:
        row = self.table.currentRow()
        return self.job(row) if row >= 0 and self._rows else None

    def _show_selected(self) -> None:
        job = self.selected_job()
        text = result_text(job) if job is not None else ""
        if self.results.toPlainText() != text:
            self.results.setPlainText(text)
        self._update_result_buttons()

    def _update_result_buttons(self) -> None:
        job = self.selected_job() if hasattr(self, "table") else None
        done = job is not None and job.result is not None
        for b in (self.copy_button, self.export_button):
            b.setEnabled(done)
        self.open_button.setEnabled(job is not None)

    def copy_result(self) -> None:
        job = self.selected_job()
        if job is not None and job.result is not None:
            QGuiApplication.clipboard().setText(job.result.text)

    def open_output_folder(self) -> QUrl | None:
        job = self.selected_job()
        if job is None:
            return None
        url = QUrl.fromLocalFile(str(job.out_dir))
        log.info("ui: opening %s", job.out_dir)
        if not QDesktopServices.openUrl(url):
            log.warning("ui: no file manager opened %s", job.out_dir)
        return url

    def pick_export(self, fmt: str) -> None:
        job = self.selected_job()
        if job is None or job.result is None:
            return
        suggested = str(job.out_dir / f"{job.out_name}.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", suggested, f"{fmt.upper()} (*.{fmt})")
        if path:
            try:
                self.export(job, fmt, Path(path))
            except DictateError as exc:
                self.results.appendPlainText(f"\n{exc}")

    def export(self, job: FileJob, fmt: str, path: Path) -> Path:
        """The transcript in `fmt` at `path` (the user chose it in the save dialog, which asks
        before replacing a file)."""
        from dictate.batch import metadata
        from dictate.filejobs import file_options

        assert job.result is not None
        meta = metadata(job.result, file_options(self.cfg, job.opts.language))
        try:
            write_atomic(path, render(fmt, job.result.segments, meta), durable=False)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        log.info("ui: exported %s", path)
        return path

    # -- closing -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        self._ticker.stop()
        self._poster.close()
        self.queue.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        if self.quit_on_close:
            self.shutdown()
        event.accept()  # in the tray app the window hides; its jobs go on


def run(cfg: Config, files: Sequence[Path], *, engine: str | None = None, model: str | None = None,
        language: str | None = None, formats: Sequence[str] | None = None, out_dir: Path | None = None) -> int:
    """`dictate files [FILE...]`: the window on its own, with the config's engine on its own worker."""
    from PySide6.QtWidgets import QApplication

    from dictate.ui import resources
    from dictate.ui.tray import state_icon

    app = QApplication.instance() or QApplication(["dictate"])
    app.setApplicationName("dictate")
    app.setWindowIcon(state_icon(resources.APP_ICON))
    window = FilesWindow(cfg, engine_name=engine, model=model, language=language, formats=formats, out_dir=out_dir,
                         quit_on_close=True)
    if files:
        window.add_paths(files)
    window.show()
    try:
        return int(app.exec() or 0)
    finally:
        window.shutdown()
