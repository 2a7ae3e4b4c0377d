"""Settings: values checked against their declared choices and ranges on load and on save (a
hand-edited file's bad key is reported in one line and gets its default); the settings dialog,
generated from the config fields' metadata, round-trips every field through config.toml; the
remote key goes to the real keyring (a private Secret Service) and into no file; the microphone
list is PortAudio's real one, with a live level from the virtual microphone; the hotkey is
captured by pressing it; a punctuation model is trained from a folder with progress."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dictate import config  # noqa: E402
from dictate.config import Config, Paths  # noqa: E402
from dictate.errors import ConfigError  # noqa: E402
from tests.conftest import REPO, dictate_env  # noqa: E402

HAND_EDITED = """\
[notes]
audio_format = "mp3"
beam_size = 0
paragraph_pause_s = 1.5

[streaming]
min_chunk_s = 0

[engine]
threads = "many"
model = "base.en"

[ui]
overlay = "middle"
"""


def test_a_hand_edited_file_reports_each_bad_key_and_uses_its_default(caplog):
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(HAND_EDITED)
    cfg = config.load()
    default = Config(paths=paths)
    assert cfg.notes.audio_format == default.notes.audio_format == "flac"
    assert cfg.notes.beam_size == default.notes.beam_size
    assert cfg.streaming.min_chunk_s == default.streaming.min_chunk_s
    assert cfg.engine.threads == default.engine.threads
    assert cfg.ui.overlay == default.ui.overlay
    assert cfg.notes.paragraph_pause_s == 1.5 and cfg.engine.model == "base.en"  # the good keys are kept
    assert len(cfg.problems) == 5
    for key in ("[notes] audio_format", "[notes] beam_size", "[streaming] min_chunk_s", "[engine] threads",
                "[ui] overlay"):
        line = next(p for p in cfg.problems if key in p)
        assert "\n" not in line and "default" in line
        assert key in caplog.text
    assert any("not one of flac, opus" in p for p in cfg.problems)
    assert any("below its minimum 1" in p for p in cfg.problems)


def test_the_cli_says_it_in_one_line_per_key():
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(HAND_EDITED)
    run = subprocess.run([sys.executable, "-m", "dictate", "note", "list"], cwd=REPO, env=dictate_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if "[notes] audio_format" in ln]
    assert len(lines) == 1 and "mp3" in lines[0] and "Traceback" not in run.stderr


def test_save_refuses_values_outside_their_declared_range():
    cfg = config.load()
    cfg.notes.beam_size = 0
    with pytest.raises(ConfigError, match=r"\[notes\] beam_size"):
        config.save(cfg)
    assert not cfg.paths.config_file.exists()
    cfg.notes.beam_size = 3
    cfg.notes.audio_format = "mp3"
    with pytest.raises(ConfigError, match=r"\[notes\] audio_format"):
        config.save(cfg)
    cfg.notes.audio_format = "opus"
    config.save(cfg)
    assert config.load().notes.beam_size == 3


def test_every_field_declares_help_and_consistent_metadata():
    for section in dataclasses.fields(Config):
        if not section.metadata.get("persist", True):
            continue
        for f in dataclasses.fields(section.default_factory()):
            meta = f.metadata
            assert meta.get("help"), f"[{section.name}] {f.name} has no help text"
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            assert config.check(section.name, f, default) == default  # every default passes its own checks
            if "choices" in meta:
                assert default in meta["choices"]


# --- the dialog ----------------------------------------------------------------------------------

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from dictate.ui.settings import HotkeyEdit, MicrophoneEditor, SettingsDialog  # noqa: E402
from tests.support.keyring_env import keyring_env  # noqa: E402,F401 - fixture
from tests.support.pulse import virtual_mic  # noqa: E402,F401 - fixture


def other_value(section: str, f: dataclasses.Field, tmp_path):
    """A valid value for the field that differs from its default."""
    meta, default = f.metadata, (f.default_factory() if f.default is dataclasses.MISSING else f.default)
    kind = meta.get("kind")
    if isinstance(default, bool):
        return not default
    if isinstance(default, (int, float)):
        step = 1 if isinstance(default, int) else 0.25
        up = default + step
        return up if up <= meta.get("maximum", float("inf")) else default - step
    if isinstance(default, list):
        return ["Kubernetes", "Zoë Ångström"]
    if kind == "hotkey":
        return "<ctrl>+<alt>+k" if f.name == "dictate" else "<super>+F9"
    if kind == "dir":
        return str(tmp_path / "my notes")
    if kind == "file":
        return str(tmp_path / "punct.npz")
    if kind == "device":
        return "pulse"
    if kind == "model":
        return "tiny.en"
    if meta.get("choices"):
        return next(c for c in meta["choices"] if c != default)
    if meta.get("suggestions"):
        return next(c for c in meta["suggestions"] if c != default)
    return default + "-changed" if default else "changed"


def all_fields():
    for section in dataclasses.fields(Config):
        if section.metadata.get("persist", True):
            for f in dataclasses.fields(section.default_factory()):
                yield section.name, f


def test_the_dialog_round_trips_every_field_through_config_toml(qtbot, tmp_path):
    cfg = config.load()
    saved = []
    d = SettingsDialog(cfg, on_saved=saved.append)
    qtbot.addWidget(d)
    fields = list(all_fields())
    assert set(d.editors) == {(s, f.name) for s, f in fields}  # one editor per field, from the metadata
    for (s, name), editor in d.editors.items():  # the dialog shows the config's values
        assert editor.get() == getattr(getattr(cfg, s), name), (s, name)
    expected = {}
    for s, f in fields:
        value = other_value(s, f, tmp_path)
        d.editors[(s, f.name)].set(value)
        expected[(s, f.name)] = value
    assert d.save(), d.message.text()
    assert saved and saved[-1].engine.model == "tiny.en"
    text = cfg.paths.config_file.read_text(encoding="utf-8")
    again = config.load()
    assert again.problems == []
    for (s, name), value in expected.items():
        got = getattr(getattr(again, s), name)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, (s, name, got, value)
        assert f"{name} = " in text
    # Opened again, the dialog shows what the file holds.
    d2 = SettingsDialog(again)
    qtbot.addWidget(d2)
    for key, value in expected.items():
        got = d2.editors[key].get()
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, key
    # Back to the defaults: nothing is left in the file.
    for s, f in fields:
        d2.editors[(s, f.name)].set(f.default_factory() if f.default is dataclasses.MISSING else f.default)
    assert d2.save()
    assert config.changed_keys(config.load()) == {}


def test_invalid_values_are_not_saved_and_a_bad_file_is_shown(qtbot):
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(HAND_EDITED)
    cfg = config.load()
    d = SettingsDialog(cfg)
    qtbot.addWidget(d)
    assert "[notes] audio_format" in d.message.text()  # the file's problems are shown
    assert d.editors[("notes", "audio_format")].get() == "flac"  # and the defaults are in the form
    d.editors[("hotkeys", "dictate")].set("a")  # typing key without a modifier
    before = paths.config_file.read_text()
    assert not d.save()
    assert "[hotkeys] dictate" in d.message.text()
    assert paths.config_file.read_text() == before
    d.editors[("hotkeys", "dictate")].set("<ctrl>+<alt>+d")
    assert d.save()
    assert config.load().problems == []  # saving wrote the defaults' worth: the bad keys are gone


def test_hotkey_is_captured_by_pressing_it(qtbot):
    d = SettingsDialog(config.load())
    qtbot.addWidget(d)
    d.show()
    d.activateWindow()
    qtbot.waitActive(d)
    edit = d.editors[("hotkeys", "dictate")].widget
    assert isinstance(edit, HotkeyEdit)
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_Control, Qt.KeyboardModifier.ControlModifier)  # a modifier alone: nothing
    assert edit.text() == "<ctrl>+<alt>+space"
    qtbot.keyClick(edit, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    assert edit.text() == "<ctrl>+<alt>+k"
    qtbot.keyClick(edit, Qt.Key.Key_F9)
    assert edit.text() == "F9"
    qtbot.keyClick(edit, Qt.Key.Key_Space, Qt.KeyboardModifier.MetaModifier | Qt.KeyboardModifier.ShiftModifier)
    assert edit.text() == "<shift>+<super>+space"
    cancel = d.editors[("hotkeys", "cancel")].widget
    cancel.setFocus()
    qtbot.keyClick(cancel, Qt.Key.Key_Backspace)  # none
    assert cancel.text() == ""
    assert d.save()
    saved = config.load()
    assert saved.hotkeys.dictate == "<shift>+<super>+space" and saved.hotkeys.cancel == ""
    from dictate.hotkeys.chords import parse_binding

    assert str(parse_binding(saved.hotkeys.dictate)) == "<shift>+<super>+<space>"


def test_every_control_has_a_name_and_is_reached_by_keyboard(qtbot):
    d = SettingsDialog(config.load())
    qtbot.addWidget(d)
    d.show()
    d.activateWindow()
    qtbot.waitActive(d)
    for i in range(d.tabs.count()):
        d.tabs.setCurrentIndex(i)
        qtbot.wait(20)
        page = d.tabs.currentWidget()
        controls = [c for c in page.findChildren(QWidget) if c.focusPolicy() & Qt.FocusPolicy.TabFocus
                    and c.isVisibleTo(page) and type(c).__name__ not in ("QScrollBar",)
                    and not (type(c).__name__ == "QLineEdit" and type(c.parent()).__name__ in ("QComboBox",
                                                                                              "QSpinBox",
                                                                                              "QDoubleSpinBox"))]
        assert controls, d.tabs.tabText(i)
        for c in controls:
            assert c.accessibleName(), (d.tabs.tabText(i), type(c).__name__, c.objectName())
        first = controls[0]
        first.setFocus()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is not None, timeout=2000)
        reached = set()
        for _ in range(len(controls) * 3 + 6):
            f = QApplication.focusWidget()
            assert f is not None
            reached.add(f.parent() if type(f.parent()).__name__ in ("QComboBox", "QSpinBox", "QDoubleSpinBox")
                        else f)
            qtbot.keyClick(d.windowHandle(), Qt.Key.Key_Tab)
        missing = [c.objectName() or type(c).__name__ for c in controls if c not in reached]
        assert not missing, (d.tabs.tabText(i), missing)


def _all_file_bytes(*roots):
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                yield p, p.read_bytes()


def test_the_remote_key_goes_to_the_keyring_and_into_no_file(qtbot, keyring_env, isolated_dirs):
    from dictate import secrets

    secret = "sk-test-7f3a9c1e5b2d4f60-SETTINGS"
    d = SettingsDialog(config.load())
    qtbot.addWidget(d)
    assert "No key stored" in d.key_status.text()
    d.key_edit.setText(secret)
    assert d.key_edit.echoMode() == d.key_edit.EchoMode.Password
    d.key_store.click()
    assert d.key_edit.text() == ""  # not kept in the widget
    assert "stored in the keyring" in d.key_status.text()
    assert secrets.get(secrets.SecretKey.REMOTE) == secret
    d.editors[("remote", "base_url")].set("https://whisper.example.org/v1")
    assert d.save()
    d2 = SettingsDialog(config.load())
    qtbot.addWidget(d2)
    assert d2.key_edit.text() == "" and "never shown" in d2.key_status.text()
    assert secret not in d2.key_status.text()
    # Not in the config, data, cache, log or state folders (the keyring's own files are elsewhere).
    roots = [isolated_dirs / n for n in ("config", "data", "cache", "log", "state") if (isolated_dirs / n).exists()]
    assert roots
    for path, data in _all_file_bytes(*roots):
        assert secret.encode() not in data, path
    assert "whisper.example.org" in Paths.default().config_file.read_text()
    d2.key_delete.click()
    assert secrets.get(secrets.SecretKey.REMOTE) is None and "No key stored" in d2.key_status.text()


def test_the_microphone_list_is_portaudios_and_the_meter_moves(qtbot, virtual_mic):
    from dictate.audio.capture import input_devices
    from tests.support.scripted_engine import build_script

    d = SettingsDialog(config.load())
    qtbot.addWidget(d)
    mic = d.editors[("audio", "input_device")].widget
    assert isinstance(mic, MicrophoneEditor)
    names = [mic.box.itemText(i) for i in range(mic.box.count())]
    assert names[0] == "" and names[1:] == [n for _i, n in input_devices()] and len(names) > 1
    mic.test.click()
    assert mic.error.text() == ""
    qtbot.waitUntil(lambda: mic.meter.db < -50, timeout=10_000)  # the mic's silence
    virtual_mic.play(build_script([("speech", 2.0)], seed=2).audio)
    qtbot.waitUntil(lambda: mic.meter.db > -30, timeout=10_000)  # speech (bursts at about -20 dBFS)
    d.reject()  # closing ends the test and gives the microphone back
    assert mic._mic is None and not mic.test.isChecked()


def test_a_punctuation_model_is_trained_from_a_folder_with_progress(qtbot, tmp_path):
    from tests.support.synthetic_authors import paragraphs

    folder = tmp_path / "writing"
    folder.mkdir()
    for i in range(3):
        (folder / f"essay{i}.txt").write_text("\n\n".join(paragraphs("terse", 2000, seed=i)), encoding="utf-8")
    d = SettingsDialog(config.load())
    qtbot.addWidget(d)
    d.train(folder)
    qtbot.waitUntil(lambda: d.train_button.isEnabled(), timeout=120_000)
    assert "Trained" in d.train_status.text(), d.train_status.text()
    assert len(set(d.progress_seen)) > 1 and d.train_progress.value() == 100  # progress was shown as it went
    model_path = d.editors[("punctuation", "model_path")].get()
    assert model_path and os.path.exists(model_path)
    assert d.editors[("punctuation", "enabled")].get() is True
    assert d.save()
    saved = config.load()
    assert saved.punctuation.enabled and saved.punctuation.model_path == model_path
    from dictate.punctuation import load_model

    assert load_model(model_path).punctuate_text("hello world how are you").strip()


def test_saved_settings_apply_to_the_running_app_and_a_screenshot(qtbot, qapp, tmp_path):
    """The tray app's own wiring (offscreen, without a tray: the stand-in window): the cues, the
    overlay and the hotkey mode follow at once; the controller reads the same config object."""
    from dictate.controller import Controller
    from dictate.ui.app import DesktopApp, Options
    from tests.support.tone_engine import ToneEngine
    from tests.test_app import keep_screenshot

    cfg = config.load()
    desktop = DesktopApp(cfg, Options(tray=False))
    desktop.controller = Controller(cfg, engine_factory=ToneEngine, sink=object())
    try:
        desktop._build_shell(qapp)
        entries = {e.key: e for e in desktop.shell.entries()}
        entries["settings"].run()  # the menu entry
        d = desktop.windows["settings"]
        qtbot.waitExposed(d)
        assert d.isVisible()
        d.editors[("ui", "sounds")].set(False)
        d.editors[("ui", "overlay")].set("top")
        d.editors[("hotkeys", "mode")].set("toggle")
        d.editors[("engine", "model")].set("base.en")
        d.editors[("output", "backend")].set("stdout")
        assert d.save()
        # The model follows at once (the controller reloads it); the typing method at the next start.
        assert "from the next start" in d.message.text() and "Method" in d.message.text()
        assert "Model" not in d.message.text()
        assert desktop.player.enabled is False
        assert desktop.overlay.position == "top"
        assert desktop.shell.model.push_to_talk is False
        assert desktop.controller.cfg.ui.overlay == "top" and desktop.controller.cfg is cfg
        assert config.load().hotkeys.mode == "toggle"
        d.tabs.setCurrentIndex(0)
        qtbot.wait(50)
        path = tmp_path / "settings.png"
        assert d.grab().save(str(path))
        keep_screenshot(path)
    finally:
        desktop._shutdown()  # the app's own way out: windows, notifier, controller, cues
