"""The models manager: the stock models for an engine with their size, whether they are on this
machine and which one `auto` picks here; download with progress (in a child process, so cancel is
immediate), delete with the space freed, and your own models (dictate.engines.user_models): add a
CTranslate2 folder or a ggml file under a name, or remove one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog,
                               QLabel, QMenu, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from dictate.config import Config
from dictate.engines import fetch, user_models
from dictate.engines.models import ModelFormat, approx_size_mb, auto_model_name, stock_names
from dictate.errors import DictateError
from dictate.ui.background import Background

log = logging.getLogger(__name__)

ENGINES = ("faster-whisper", "whisper.cpp")
COLUMNS = ("Model", "Size", "On this machine", "")


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:,.0f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:,.0f} kB"


def fmt_for(engine: str) -> ModelFormat:
    return ModelFormat.GGML if engine == "whisper.cpp" else ModelFormat.CT2


class ModelsWindow(QWidget):
    """`on_use(engine, model)`: what "Use this model" does (the settings dialog fills its field)."""

    def __init__(self, cfg: Config, *, engine: str | None = None,
                 on_use: Callable[[str, str], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self._on_use = on_use
        self.background = Background(self)
        self.download: fetch.Download | None = None
        self.auto = auto_model_name()
        self.setObjectName("dictate-models")
        self.setWindowTitle("dictate — models")

        self.engine = QComboBox()
        self.engine.setObjectName("engine")
        self.engine.setAccessibleName("Engine")
        self.engine.addItems(ENGINES)
        engine = engine if engine in ENGINES else cfg.engine.name if cfg.engine.name in ENGINES else ENGINES[0]
        self.engine.setCurrentText(engine)
        self.engine.currentTextChanged.connect(lambda _e: self.refresh())
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("models")
        self.table.setAccessibleName("Models")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.verticalHeader().hide()
        for column in range(len(COLUMNS) - 1):
            self.table.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)

        self.download_button = self._button("&Download", "download", "Download the selected model", self.start_download)
        self.cancel_button = self._button("&Cancel download", "cancel", "Cancel the download", self.cancel_download)
        self.delete_button = self._button("De&lete", "delete", "Delete the selected model from this machine",
                                          self.delete_selected)
        self.use_button = self._button("&Use this model", "use", "Use the selected model", self.use_selected)
        self.use_button.setVisible(on_use is not None)
        self.add_button = self._button("&Add a local model…", "add", "Add a local model of yours", None)
        add_menu = QMenu(self.add_button)
        add_menu.addAction("A CTranslate2 folder (faster-whisper)…", lambda: self._pick_local(folder=True))
        add_menu.addAction("A ggml file (whisper.cpp)…", lambda: self._pick_local(folder=False))
        self.add_button.setMenu(add_menu)
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setAccessibleName("Download progress")
        self.progress.hide()
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setAccessibleName("Status")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        label = QLabel("&Engine:")
        label.setBuddy(self.engine)
        top.addWidget(label)
        top.addWidget(self.engine)
        top.addStretch(1)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.cancel_button, self.delete_button, self.use_button, self.add_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        self.resize(640, 520)
        self.refresh()

    def _button(self, text: str, name: str, accessible: str, slot: Callable[[], None] | None) -> QPushButton:
        b = QPushButton(text)
        b.setObjectName(name)
        b.setAccessibleName(accessible)
        if slot is not None:
            b.clicked.connect(slot)
        return b

    # -- the list -----------------------------------------------------------------------------
    @property
    def fmt(self) -> ModelFormat:
        return fmt_for(self.engine.currentText())

    def rows(self) -> list[dict[str, Any]]:
        """What the table shows: stock models, then yours (for this engine)."""
        out = []
        for name in stock_names(self.fmt):
            here = fetch.cached(name, self.fmt)
            size = approx_size_mb(name)
            out.append({"name": name, "kind": "stock", "cached": here,
                        "size": _mb(here.size_bytes) if here else (f"~{size} MB" if size else "?"),
                        "where": "downloaded" if here else "not downloaded",
                        "note": "auto picks this one here" if name == self.auto else ""})
        try:
            mine = user_models.list_user_models(self.cfg.paths)
        except DictateError as exc:
            mine = []
            self.message.setText(str(exc))
        for m in mine:
            if m.format is not self.fmt:
                continue
            out.append({"name": m.name, "kind": "yours", "cached": None, "size": "",
                        "where": str(m.path) if m.path.exists() else f"missing: {m.path}", "note": "yours"})
        return out

    def refresh(self) -> None:
        selected = self.selected_name()
        self._rows = self.rows()
        self.table.setRowCount(len(self._rows))
        for r, row in enumerate(self._rows):
            for c, text in enumerate((row["name"], row["size"], row["where"], row["note"])):
                item = QTableWidgetItem(text)
                if c == 3 and row["name"] == self.auto:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        names = [row["name"] for row in self._rows]
        self.table.selectRow(names.index(selected) if selected in names else names.index(self.auto)
                             if self.auto in names else 0)
        self._selection_changed()

    def selected_row(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self._rows[rows[0].row()] if rows and rows[0].row() < len(getattr(self, "_rows", [])) else None

    def selected_name(self) -> str | None:
        row = self.selected_row() if hasattr(self, "_rows") else None
        return row["name"] if row else None

    def select(self, name: str) -> None:
        self.table.selectRow([row["name"] for row in self._rows].index(name))

    def _selection_changed(self) -> None:
        row = self.selected_row()
        busy = self.download is not None
        stock = bool(row) and row["kind"] == "stock"
        self.download_button.setEnabled(stock and not row["cached"] and not busy)
        self.cancel_button.setEnabled(busy)
        self.delete_button.setEnabled(bool(row) and (row["kind"] == "yours" or bool(row["cached"])) and not busy)
        self.delete_button.setText("Re&move from the list" if row and row["kind"] == "yours" else "De&lete")
        self.use_button.setEnabled(bool(row))

    # -- download -----------------------------------------------------------------------------
    def start_download(self) -> None:
        name = self.selected_name()
        if name is None or self.download is not None:
            return
        fmt = self.fmt
        try:
            dl = fetch.Download(name, fmt, on_progress=lambda done, total: self.background.post(
                lambda: self._progress(done, total))).start()
        except DictateError as exc:
            self.message.setText(str(exc))
            log.info("ui: download refused: %s", exc)
            return
        self.download = dl
        self.progress.setRange(0, 0)  # until the size is known
        self.progress.show()
        self.message.setText(f"Downloading {name}…")
        self._selection_changed()
        self.background.run("dictate-model-download", dl.wait, lambda path, error: self._downloaded(name, path, error))

    def _progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(done, total) / total))
            self.progress.setFormat(f"{_mb(done)} of {_mb(total)}")

    def cancel_download(self) -> None:
        if self.download is not None:
            log.info("ui: download of %s cancelled", self.download.name)
            self.download.cancel()

    def _downloaded(self, name: str, path: Path | None, error: BaseException | None) -> None:
        self.download = None
        self.progress.hide()
        if error is not None:
            self.message.setText(str(error))
        else:
            self.message.setText(f"{name} is ready ({path}).")
            log.info("ui: downloaded %s to %s", name, path)
        self.refresh()

    # -- delete, yours, use -------------------------------------------------------------------
    def delete_selected(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        try:
            if row["kind"] == "yours":
                user_models.remove(row["name"], self.cfg.paths)
                self.message.setText(f"{row['name']} is no longer listed (its files are where they were).")
            else:
                freed = fetch.delete(row["name"], self.fmt)
                self.message.setText(f"Deleted {row['name']}: {_mb(freed)} freed.")
        except (DictateError, OSError) as exc:
            self.message.setText(f"Not deleted: {exc}")
            return
        self.refresh()

    def use_selected(self) -> None:
        name = self.selected_name()
        if name is not None and self._on_use is not None:
            self._on_use(self.engine.currentText(), name)
            self.message.setText(f"{name} is now chosen in the settings; save them to keep it.")

    def _pick_local(self, folder: bool) -> None:
        path = (QFileDialog.getExistingDirectory(self, "A CTranslate2 model folder", str(Path.home())) if folder
                else QFileDialog.getOpenFileName(self, "A ggml model file", str(Path.home()),
                                                 "Models (*.bin *.gguf);;All files (*)")[0])
        if not path:
            return
        name, ok = QInputDialog.getText(self, "dictate", "A name for this model:", text=Path(path).stem)
        if ok and name.strip():
            self.add_local(name.strip(), Path(path))

    def add_local(self, name: str, path: Path) -> None:
        """Register `path` under `name`, after its engine has loaded it (in the background)."""
        self.add_button.setEnabled(False)
        self.message.setText(f"Checking that {path} loads…")
        self.background.run("dictate-model-add", lambda: user_models.register(name, path, paths=self.cfg.paths),
                            self._added)

    def _added(self, model: Any, error: BaseException | None) -> None:
        self.add_button.setEnabled(True)
        if error is not None:
            self.message.setText(f"Not added: {error}")
            return
        self.engine.setCurrentText(model.engine)
        self.refresh()
        self.select(model.name)
        self.message.setText(f"{model.name} added: it can be chosen as the model by its name.")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.cancel_download()
        super().closeEvent(event)
