"""The settings dialog, generated from the config fields' metadata (dictate.config `_opt`): one tab
per section, one editor per field chosen by its type and metadata (choices -> a list, suggestions
-> an editable list, minimum/maximum -> a bounded number, kind -> a special editor), its help text
as tooltip and accessible description. Values are checked with dictate.config's own checks before
they are saved, so the dialog cannot write a file that `load` would reject.

Beyond the config fields: the microphone list is PortAudio's with a live level meter to test it;
the hotkey is captured by pressing it; the remote key goes to the OS keyring (never shown, never
written to disk); a punctuation model is trained from a folder with progress."""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QProgressBar,
                               QPushButton, QScrollArea, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from dictate import config as config_mod
from dictate.config import Config
from dictate.errors import DictateError
from dictate.ui.background import Background
from dictate.ui.overlay import LevelMeter

log = logging.getLogger(__name__)

SECTION_TITLES = {
    "engine": "Engine", "audio": "Microphone", "hotkeys": "Hotkeys", "output": "Typing", "notes": "Notes",
    "punctuation": "Punctuation", "remote": "Remote", "history": "History", "ui": "Appearance",
    "dataset": "Training data", "streaming": "Advanced",
}
LABELS = {"name": "Engine", "hotwords": "Vocabulary", "input_device": "Microphone", "dictate": "Dictation hotkey",
          "cancel": "Cancel hotkey", "mode": "Hotkey mode", "backend": "Method", "notes_dir": "Notes folder",
          "base_url": "Endpoint", "ui.overlay": "Live text overlay", "model_path": "Model file"}
# Engine, model, language and vocabulary apply at once (the controller reloads the engine in the
# background); the open microphone and the typing method wait for the next start.
NEEDS_RESTART = {("audio", "input_device"), ("output", "backend"), ("audio", "open_on_demand"),
                 ("audio", "ring_capacity_s"), ("audio", "preroll_s")}
BIG = 1_000_000


UNITS = {"_s": "s", "_ms": "ms", "_mb": "MB"}


def label_for(section: str, name: str) -> str:
    """"paste_timeout_s" -> "Paste timeout (s)"."""
    found = LABELS.get(f"{section}.{name}") or LABELS.get(name)
    if found:
        return found
    unit = next((u for suffix, u in UNITS.items() if name.endswith(suffix)), None)
    base = name[: name.rfind("_")] if unit else name
    return base.replace("_", " ").capitalize() + (f" ({unit})" if unit else "")


def _default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


# --- editors: a widget with get() and set() ------------------------------------------------------

class Editor:
    def __init__(self, widget: QWidget, get: Callable[[], Any], set_: Callable[[Any], None],
                 focus: QWidget | None = None) -> None:
        self.widget, self.get, self.set = widget, get, set_
        self.focus = focus or widget  # the control a label's mnemonic and the accessible name go to


def _combo(items: list[str], editable: bool) -> QComboBox:
    box = QComboBox()
    box.setEditable(editable)
    box.addItems(items)
    return box


def _set_combo(box: QComboBox, value: str) -> None:
    i = box.findText(value)
    if i >= 0:
        box.setCurrentIndex(i)
    elif box.isEditable():
        box.setEditText(value)


class HotkeyEdit(QLineEdit):
    """Click (or Tab to it) and press the chord: it is written like "<ctrl>+<alt>+space".
    Backspace alone clears it (for "none"); Escape leaves it as it was."""

    QT_KEYS = {Qt.Key.Key_Space: "space", Qt.Key.Key_Return: "return", Qt.Key.Key_Tab: "tab",
               Qt.Key.Key_Delete: "delete", Qt.Key.Key_Insert: "insert", Qt.Key.Key_Home: "home",
               Qt.Key.Key_End: "end", Qt.Key.Key_PageUp: "page_up", Qt.Key.Key_PageDown: "page_down",
               Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down", Qt.Key.Key_Left: "left", Qt.Key.Key_Right: "right",
               Qt.Key.Key_Pause: "pause", Qt.Key.Key_Print: "print", Qt.Key.Key_Menu: "menu",
               Qt.Key.Key_Backspace: "backspace", Qt.Key.Key_Minus: "minus", Qt.Key.Key_Equal: "equal",
               Qt.Key.Key_Comma: "comma", Qt.Key.Key_Period: "period", Qt.Key.Key_Slash: "slash"}
    MODIFIER_KEYS = {Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Shift, Qt.Key.Key_Meta, Qt.Key.Key_Super_L,
                     Qt.Key.Key_Super_R, Qt.Key.Key_AltGr}

    def __init__(self) -> None:
        super().__init__()
        self.setReadOnly(True)
        self.setPlaceholderText("press the keys")

    def event(self, e) -> bool:  # noqa: D401 - Tab must be capturable while focused, except bare Tab
        if isinstance(e, QKeyEvent) and e.type() == QKeyEvent.Type.KeyPress and e.key() == Qt.Key.Key_Tab \
                and e.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                     | Qt.KeyboardModifier.MetaModifier):
            self.keyPressEvent(e)
            return True
        return super().event(e)

    @classmethod
    def binding(cls, key: int, modifiers: Qt.KeyboardModifier) -> str | None:
        """The config spelling of a key press, or None for a bare modifier or an unknown key."""
        if key in cls.MODIFIER_KEYS:
            return None
        if Qt.Key.Key_A <= key <= Qt.Key.Key_Z or Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
            name = chr(key).lower()
        elif Qt.Key.Key_F1 <= key <= Qt.Key.Key_F24:
            name = f"F{key - Qt.Key.Key_F1 + 1}"
        else:
            name = cls.QT_KEYS.get(Qt.Key(key))
            if name is None:
                return None
        mods = [m for flag, m in ((Qt.KeyboardModifier.ControlModifier, "<ctrl>"),
                                  (Qt.KeyboardModifier.AltModifier, "<alt>"),
                                  (Qt.KeyboardModifier.ShiftModifier, "<shift>"),
                                  (Qt.KeyboardModifier.MetaModifier, "<super>")) if modifiers & flag]
        return "+".join(mods + [name])

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt name
        key, mods = e.key(), e.modifiers()
        if key == Qt.Key.Key_Tab and not mods & ~Qt.KeyboardModifier.ShiftModifier:
            return super().keyPressEvent(e)
        if key == Qt.Key.Key_Escape and not mods:
            return
        if key == Qt.Key.Key_Backspace and not mods:
            self.setText("")
            return
        text = self.binding(key, mods)
        if text is not None:
            self.setText(text)
            log.info("ui: hotkey captured: %s", text)


class MicrophoneEditor(QWidget):
    """The input devices PortAudio lists, and a level meter while "Test" is on."""

    def __init__(self) -> None:
        super().__init__()
        self.box = QComboBox()
        self.box.setEditable(True)  # a name part or index, as the config allows
        self.test = QPushButton("Test")
        self.test.setCheckable(True)
        self.test.setAccessibleName("Test the microphone")
        self.test.toggled.connect(self._toggle)
        self.meter = LevelMeter()
        self.meter.setMinimumWidth(80)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self._mic: Any = None
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._read)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.box, 1)
        row.addWidget(self.test)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addLayout(row)
        col.addWidget(self.meter)
        col.addWidget(self.error)
        self.refresh()

    def refresh(self) -> None:
        self.box.clear()
        self.box.addItem("")  # the system default
        self.box.setItemData(0, "System default", Qt.ItemDataRole.ToolTipRole)
        try:
            from dictate.audio.capture import input_devices

            self.devices = input_devices()
        except DictateError as exc:
            self.devices = []
            self.error.setText(str(exc))
        for _index, name in self.devices:
            self.box.addItem(name)

    def value(self) -> str:
        return self.box.currentText().strip()

    def _toggle(self, on: bool) -> None:
        if on:
            from dictate.audio.capture import Microphone

            try:
                self._mic = Microphone(self.value(), preroll_s=0.0, ring_capacity_s=10.0)
                self._mic.start(recording=True)
            except DictateError as exc:
                self._mic = None
                self.error.setText(str(exc))
                self.test.setChecked(False)
                return
            self.error.setText("")
            self._timer.start()
            log.info("ui: testing microphone %r", self.value() or "default")
        else:
            self.stop()

    def _read(self) -> None:
        if self._mic is None:
            return
        try:
            chunk = self._mic.read()
        except DictateError as exc:
            self.error.setText(str(exc))
            self.test.setChecked(False)
            return
        if chunk.size:
            rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64))))
            self.meter.set_level(20 * np.log10(max(rms, 1e-6)))

    def stop(self) -> None:
        self._timer.stop()
        mic, self._mic = self._mic, None
        if mic is not None:
            try:
                mic.stop()
            except DictateError as exc:
                log.warning("microphone test: %s", exc)
        if self.test.isChecked():
            self.test.setChecked(False)


class PathEditor(QWidget):
    def __init__(self, directory: bool) -> None:
        super().__init__()
        self.edit = QLineEdit()
        self.browse = QPushButton("Browse…")
        self.browse.setAccessibleName("Choose a folder" if directory else "Choose a file")
        self.browse.clicked.connect(self._pick)
        self._directory = directory
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)

    def _pick(self) -> None:
        start = self.edit.text() or str(Path.home())
        path = (QFileDialog.getExistingDirectory(self, "Choose a folder", start) if self._directory
                else QFileDialog.getOpenFileName(self, "Choose a file", start)[0])
        if path:
            self.edit.setText(path)


def model_names(engine: str) -> list[str]:
    """auto, the stock names, then the user's own models for this engine's format."""
    from dictate.engines import user_models
    from dictate.engines.models import ModelFormat, stock_names

    fmt = ModelFormat.GGML if engine == "whisper.cpp" else ModelFormat.CT2
    try:
        mine = [m.name for m in user_models.list_user_models() if m.format is fmt]
    except DictateError:
        mine = []
    return ["auto", *stock_names(fmt), *mine]


def make_editor(section: str, f: dataclasses.Field) -> Editor:
    meta, default = f.metadata, _default_of(f)
    kind = meta.get("kind")
    if isinstance(default, bool):
        w = QCheckBox()
        return Editor(w, w.isChecked, w.setChecked)
    if isinstance(default, int):
        w = QSpinBox()
        w.setRange(int(meta.get("minimum", -BIG)), int(meta.get("maximum", BIG)))
        return Editor(w, w.value, w.setValue)
    if isinstance(default, float):
        w = QDoubleSpinBox()
        w.setDecimals(3)
        w.setRange(float(meta.get("minimum", -BIG)), float(meta.get("maximum", BIG)))
        w.setSingleStep(0.1)
        return Editor(w, w.value, w.setValue)
    if isinstance(default, list):
        w = QPlainTextEdit()
        w.setTabChangesFocus(True)
        w.setPlaceholderText("one per line")
        w.setFixedHeight(90)
        return Editor(w, lambda: [ln.strip() for ln in w.toPlainText().splitlines() if ln.strip()],
                      lambda v: w.setPlainText("\n".join(v)))
    if kind == "hotkey":
        w = HotkeyEdit()
        return Editor(w, w.text, w.setText)
    if kind == "device":
        w = MicrophoneEditor()
        return Editor(w, w.value, lambda v: _set_combo(w.box, v), focus=w.box)
    if kind in ("dir", "file"):
        w = PathEditor(directory=kind == "dir")
        return Editor(w, lambda: w.edit.text().strip(), w.edit.setText, focus=w.edit)
    if meta.get("choices") or meta.get("suggestions") or kind == "model":
        items = list(meta.get("choices") or meta.get("suggestions") or model_names(""))
        w = _combo([str(i) for i in items], editable=not meta.get("choices"))
        return Editor(w, lambda: w.currentText().strip(), lambda v: _set_combo(w, v))
    w = QLineEdit()
    return Editor(w, lambda: w.text().strip(), w.setText)


# --- the dialog ------------------------------------------------------------------------------------

class SettingsDialog(QDialog):
    """`on_saved(cfg)` is called with the new config after it was written."""

    def __init__(self, cfg: Config, *, on_saved: Callable[[Config], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self._on_saved = on_saved
        self.background = Background(self)
        self.editors: dict[tuple[str, str], Editor] = {}
        self.setObjectName("dictate-settings")
        self.setWindowTitle("dictate — settings")
        self.tabs = QTabWidget()
        self.tabs.setObjectName("sections")
        self.tabs.setAccessibleName("Settings sections")
        order = list(SECTION_TITLES)
        sections = sorted((s for s in dataclasses.fields(Config) if s.metadata.get("persist", True)),
                          key=lambda s: order.index(s.name) if s.name in order else len(order))
        for section in sections:
            self.tabs.addTab(self._section_page(section.name, getattr(cfg, section.name)),
                             SECTION_TITLES.get(section.name, section.name.capitalize()))
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setAccessibleName("Status")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Close)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setAccessibleName("Save the settings")
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the settings")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(680, 560)
        self.load(cfg)
        if cfg.problems:
            self.message.setText("The config file had problems; those keys have their defaults:\n"
                                 + "\n".join(cfg.problems))

    def _section_page(self, name: str, section: Any) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        for f in dataclasses.fields(section):
            editor = make_editor(name, f)
            text = label_for(name, f.name)
            editor.focus.setAccessibleName(text)
            editor.focus.setAccessibleDescription(f.metadata.get("help", ""))
            editor.widget.setToolTip(f.metadata.get("help", ""))
            editor.focus.setObjectName(f"{name}.{f.name}")
            label = QLabel(text + ":")
            label.setBuddy(editor.focus)
            label.setToolTip(f.metadata.get("help", ""))
            form.addRow(label, editor.widget)
            self.editors[(name, f.name)] = editor
        if name == "remote":
            form.addRow(self._remote_key_row())
        if name == "punctuation":
            form.addRow(self._training_row())
        if name == "engine":
            engine = self.editors[("engine", "name")].focus
            engine.currentTextChanged.connect(self._engine_changed)  # type: ignore[attr-defined]
            self.models_button = QPushButton("&Manage models…")
            self.models_button.setObjectName("engine.models")
            self.models_button.setAccessibleName("Manage models: download, delete, add your own")
            self.models_button.clicked.connect(self.open_models)
            form.insertRow(form.getWidgetPosition(self.editors[("engine", "model")].widget)[0] + 1, "",
                           self.models_button)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(page)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        return scroll

    def _engine_changed(self, engine: str) -> None:
        box = self.editors[("engine", "model")].focus
        current = box.currentText()  # type: ignore[attr-defined]
        box.clear()  # type: ignore[attr-defined]
        box.addItems(model_names(engine))  # type: ignore[attr-defined]
        _set_combo(box, current)  # type: ignore[arg-type]

    def open_models(self) -> None:
        from dictate.ui.models_window import ModelsWindow

        def use(engine: str, model: str) -> None:
            self.editors[("engine", "name")].set(engine)
            self.editors[("engine", "model")].set(model)

        self.models_window = ModelsWindow(self.cfg, engine=self.editors[("engine", "name")].get(), on_use=use)
        self.models_window.show()
        self.models_window.raise_()

    # -- the remote key: keyring only ---------------------------------------------------------
    def _remote_key_row(self) -> QWidget:
        box = QWidget()
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("remote.key")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setAccessibleName("API key")
        self.key_edit.setPlaceholderText("paste a new key to store it in the keyring")
        self.key_store = QPushButton("Store key")
        self.key_store.setAccessibleName("Store the API key in the keyring")
        self.key_store.clicked.connect(self.store_key)
        self.key_delete = QPushButton("Forget key")
        self.key_delete.setAccessibleName("Delete the API key from the keyring")
        self.key_delete.clicked.connect(self.forget_key)
        self.key_status = QLabel()
        self.key_status.setObjectName("remote.key-status")
        self.key_status.setAccessibleName("API key status")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("API &key:", buddy=self.key_edit))
        row.addWidget(self.key_edit, 1)
        row.addWidget(self.key_store)
        row.addWidget(self.key_delete)
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 8, 0, 0)
        col.addLayout(row)
        col.addWidget(self.key_status)
        self._show_key_status()
        return box

    def _show_key_status(self) -> None:
        from dictate import secrets

        try:
            stored = secrets.get(secrets.SecretKey.REMOTE) is not None
            self.key_status.setText("A key is stored in the keyring (it is never shown)." if stored
                                    else "No key stored (the server may not need one).")
        except DictateError as exc:
            self.key_status.setText(str(exc))

    def store_key(self) -> None:
        from dictate import secrets

        key = self.key_edit.text().strip()
        self.key_edit.clear()  # never kept in the widget
        if not key:
            return
        try:
            secrets.set(secrets.SecretKey.REMOTE, key)
        except DictateError as exc:
            self.key_status.setText(f"Not stored: {exc}")
            return
        log.info("ui: remote key stored in the keyring")
        self._show_key_status()

    def forget_key(self) -> None:
        from dictate import secrets

        try:
            secrets.delete(secrets.SecretKey.REMOTE)
        except DictateError as exc:
            self.key_status.setText(str(exc))
            return
        self._show_key_status()

    # -- punctuation training -----------------------------------------------------------------
    def _training_row(self) -> QWidget:
        box = QWidget()
        self.train_button = QPushButton("Train from a folder…")
        self.train_button.setObjectName("punctuation.train")
        self.train_button.setAccessibleName("Train a punctuation model from a folder of your writing")
        self.train_button.clicked.connect(self._pick_training_folder)
        self.train_progress = QProgressBar()
        self.train_progress.setObjectName("punctuation.progress")
        self.train_progress.setAccessibleName("Training progress")
        self.train_progress.setRange(0, 100)
        self.train_progress.hide()
        self.train_status = QLabel()
        self.train_status.setWordWrap(True)
        self.train_status.setAccessibleName("Training status")
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 8, 0, 0)
        col.addWidget(self.train_button)
        col.addWidget(self.train_progress)
        col.addWidget(self.train_status)
        return box

    def _pick_training_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of your own writing", str(Path.home()))
        if folder:
            self.train(Path(folder))

    def train(self, folder: Path) -> None:
        """Train on `folder` in the background; the new model becomes active in the form."""
        from dictate.punctuation import read_corpus, train_model

        self.train_button.setEnabled(False)
        self.train_progress.setValue(0)
        self.train_progress.show()
        self.train_status.setText(f"Reading {folder}…")
        self.progress_seen: list[float] = []
        out = self.cfg.paths.data_dir / "punctuation" / "personal.npz"

        def progress(stage: str, fraction: float) -> None:  # the training thread
            self.background.post(lambda: self._train_progress(stage, fraction))

        def work() -> Path:
            corpus = read_corpus([folder])
            self.background.post(lambda: self.train_status.setText(
                f"Training on {corpus.words:,} words from {corpus.files} files…"))
            return train_model(corpus.paragraphs, progress=progress).save(out)

        self.background.run("dictate-punctuation-train", work, self._trained)

    def _train_progress(self, stage: str, fraction: float) -> None:
        self.progress_seen.append(fraction)
        self.train_progress.setValue(int(round(fraction * 100)))
        self.train_progress.setFormat(f"{stage} %p%")

    def _trained(self, path: Path | None, error: BaseException | None) -> None:
        self.train_button.setEnabled(True)
        if error is not None:
            self.train_progress.hide()
            self.train_status.setText(f"Not trained: {error}")
            return
        self.train_progress.setValue(100)
        self.editors[("punctuation", "model_path")].set(str(path))
        self.editors[("punctuation", "enabled")].set(True)
        self.train_status.setText(f"Trained: {path}. Save to use it.")
        log.info("ui: punctuation model trained: %s", path)

    # -- values -------------------------------------------------------------------------------
    def load(self, cfg: Config) -> None:
        for (section, name), editor in self.editors.items():
            editor.set(getattr(getattr(cfg, section), name))

    def values(self) -> Config:
        new = copy.deepcopy(self.cfg)
        new.problems = []
        for (section, name), editor in self.editors.items():
            setattr(getattr(new, section), name, editor.get())
        return new

    def problems(self, new: Config) -> list[str]:
        from dictate.hotkeys.chords import parse_binding

        found = config_mod.validate(new)
        for name in ("dictate", "cancel"):
            value = getattr(new.hotkeys, name)
            if value or name == "dictate":
                try:
                    parse_binding(value, f"[hotkeys] {name}")
                except DictateError as exc:
                    found.append(str(exc))
        return found

    def save(self) -> bool:
        new = self.values()
        problems = self.problems(new)
        if problems:
            self.message.setText("Not saved:\n" + "\n".join(problems))
            return False
        try:
            config_mod.save(new)
        except DictateError as exc:
            self.message.setText(f"Not saved: {exc}")
            return False
        restart = sorted({label_for(s, n) for (s, n) in NEEDS_RESTART
                          if getattr(getattr(new, s), n) != getattr(getattr(self.cfg, s), n)})
        self.cfg = new
        self.message.setText("Saved." + (f" {', '.join(restart)}: from the next start of dictate." if restart else ""))
        log.info("ui: settings saved to %s", new.paths.config_file)
        if self._on_saved is not None:
            self._on_saved(new)
        return True

    def done(self, result: int) -> None:  # noqa: D401 - closing in any way stops a microphone test
        mic = self.editors.get(("audio", "input_device"))
        if mic is not None and isinstance(mic.widget, MicrophoneEditor):
            mic.widget.stop()
        super().done(result)
