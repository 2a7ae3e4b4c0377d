"""The models manager (Qt offscreen) over huggingface_hub's real download code and a loopback hub
serving the real tiny.en weights (78 MB) at a network's pace: the list with sizes, what is
downloaded and what `auto` picks; a download with progress, cancelled at once, resumed from where
it stopped (a Range request) and complete, byte for byte, where huggingface_hub and faster-whisper
find it; deleted with the space freed; the offline message; your own model added (loaded to
check it), used and removed."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget  # noqa: E402

from dictate import config  # noqa: E402
from dictate.engines import fetch  # noqa: E402
from dictate.engines.models import ModelFormat, auto_model_name, is_ct2_dir  # noqa: E402
from dictate.ui.models_window import ModelsWindow  # noqa: E402
from tests.support.fake_hub import FakeHub, repo_from_dir  # noqa: E402
from tests.support.real_models import tiny_en_ct2  # noqa: E402

RATE = 30e6  # bytes/s: the 75 MB model.bin takes a few seconds, so a cancel lands mid-file


@pytest.fixture
def hub(monkeypatch):
    with FakeHub({"Systran/faster-whisper-tiny.en": repo_from_dir(tiny_en_ct2())}, rate_bytes_s=RATE) as h:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", h.url)
        yield h


def row_of(w: ModelsWindow, name: str) -> dict:
    return next(r for r in w.rows() if r["name"] == name)


@pytest.mark.slow
def test_download_with_progress_cancel_then_done_and_delete(qtbot, hub, tmp_path):
    from tests.test_app import keep_screenshot

    w = ModelsWindow(config.load(), engine="faster-whisper")
    qtbot.addWidget(w)
    w.show()
    names = [w.table.item(r, 0).text() for r in range(w.table.rowCount())]
    assert {"tiny", "tiny.en", "base", "small", "large-v3-turbo"} <= set(names)
    auto = auto_model_name()
    assert w.table.item(names.index(auto), 3).text() == "auto picks this one here"
    assert sum(w.table.item(r, 3).text() == "auto picks this one here" for r in range(len(names))) == 1
    assert w.table.item(names.index("tiny.en"), 2).text() == "not downloaded"
    assert w.table.item(names.index("tiny.en"), 1).text() == "~75 MB"

    w.select("tiny.en")
    assert w.download_button.isEnabled() and not w.cancel_button.isEnabled()
    qtbot.mouseClick(w.download_button, Qt.MouseButton.LeftButton)
    assert w.download is not None and w.cancel_button.isEnabled() and not w.download_button.isEnabled()
    qtbot.waitUntil(lambda: w.progress.maximum() == 1000 and w.progress.value() > 100, timeout=60_000)
    assert w.progress.isVisible() and "of 78 MB" in w.progress.format()
    keep_screenshot(_grab(w, tmp_path / "models.png"))
    proc = w.download._proc
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: w.download is None, timeout=10_000)
    cancel_s = time.monotonic() - t0
    assert proc.poll() is not None  # the child is gone
    assert "cancelled" in w.message.text()
    assert fetch.cached("tiny.en", ModelFormat.CT2) is None
    kept = fetch.partial_bytes("tiny.en", ModelFormat.CT2)
    assert kept > 0  # what reached the disk before the cancel is kept for the resume
    assert row_of(w, "tiny.en")["where"] == "not downloaded"

    seen = []
    qtbot.mouseClick(w.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (seen.append(w.progress.value()) or w.download is None), timeout=120_000)
    assert "is ready" in w.message.text(), w.message.text()
    here = fetch.cached("tiny.en", ModelFormat.CT2)
    assert here is not None and is_ct2_dir(here.path)
    assert hub.ranges == [f"bytes={kept}-"]  # resumed, not fetched again
    assert fetch.partial_bytes("tiny.en", ModelFormat.CT2) == 0

    def sha(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    assert sha(here.path / "model.bin") == sha(tiny_en_ct2() / "model.bin")
    import huggingface_hub

    from dictate.engines.user_models import check_loads

    found = huggingface_hub.snapshot_download("Systran/faster-whisper-tiny.en", local_files_only=True,
                                              cache_dir=str(fetch.cache_dir()))
    assert os.path.samefile(found, here.path)  # huggingface_hub's own reader finds it
    check_loads(here.path, ModelFormat.CT2)  # and faster-whisper loads it
    assert row_of(w, "tiny.en")["where"] == "downloaded" and row_of(w, "tiny.en")["size"] == "78 MB"
    assert max(seen) > 0 and seen == sorted(seen[: seen.index(max(seen)) + 1]) + seen[seen.index(max(seen)) + 1:]

    w.select("tiny.en")
    assert w.delete_button.isEnabled()
    qtbot.mouseClick(w.delete_button, Qt.MouseButton.LeftButton)
    assert w.message.text() == "Deleted tiny.en: 78 MB freed."
    assert fetch.cached("tiny.en", ModelFormat.CT2) is None
    assert not (fetch.cache_dir() / "models--Systran--faster-whisper-tiny.en").exists()
    print(f"cancel took effect in {cancel_s:.2f} s")


def _grab(w: QWidget, path):
    assert w.grab().save(str(path))
    return path


def test_offline_says_so_in_one_line(qtbot):
    assert fetch.offline()  # the suite runs with HF_HUB_OFFLINE=1
    w = ModelsWindow(config.load())
    qtbot.addWidget(w)
    w.select("small")
    w.start_download()
    assert w.download is None
    assert "HF_HUB_OFFLINE is set (offline)" in w.message.text() and "\n" not in w.message.text()


def test_your_own_model_is_added_used_and_removed(qtbot):
    cfg = config.load()
    used = []
    w = ModelsWindow(cfg, engine="whisper.cpp", on_use=lambda e, m: used.append((e, m)))
    qtbot.addWidget(w)
    w.add_local("my-tiny", tiny_en_ct2())  # loaded by faster-whisper to check it, off the GUI thread
    qtbot.waitUntil(lambda: w.add_button.isEnabled(), timeout=60_000)
    assert "my-tiny added" in w.message.text(), w.message.text()
    assert w.engine.currentText() == "faster-whisper"  # a CTranslate2 folder: shown with its engine
    row = row_of(w, "my-tiny")
    assert row["kind"] == "yours" and row["where"] == str(tiny_en_ct2().resolve())
    assert w.selected_name() == "my-tiny"
    w.use_button.click()
    assert used == [("faster-whisper", "my-tiny")]
    from dictate.engines.models import resolve

    assert resolve("my-tiny", ModelFormat.CT2) == tiny_en_ct2().resolve()  # the name works everywhere
    w.delete_button.click()
    assert "no longer listed" in w.message.text()
    assert all(r["name"] != "my-tiny" for r in w.rows())
    assert tiny_en_ct2().exists()  # its files stay

    w.add_local("broken", tiny_en_ct2() / "config.json")
    qtbot.waitUntil(lambda: w.add_button.isEnabled(), timeout=30_000)
    assert w.message.text().startswith("Not added:")


def test_every_control_has_a_name_and_is_reached_by_tab(qtbot):
    w = ModelsWindow(config.load(), on_use=lambda e, m: None)
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()
    qtbot.waitActive(w)
    controls = [c for c in w.findChildren(QWidget) if c.focusPolicy() & Qt.FocusPolicy.TabFocus
                and c.isVisibleTo(w) and c.isEnabled() and type(c).__name__ not in ("QScrollBar",)]
    assert len(controls) >= 5
    for c in controls:
        assert c.accessibleName(), (type(c).__name__, c.objectName())
    w.engine.setFocus()
    reached = set()
    for _ in range(len(controls) * 3):
        reached.add(QApplication.focusWidget())
        qtbot.keyClick(w.windowHandle(), Qt.Key.Key_Tab)
    assert {c for c in controls if isinstance(c, QAbstractButton)} | {w.table, w.engine} <= reached


def test_the_settings_dialog_opens_it_and_takes_the_choice(qtbot):
    from dictate.ui.settings import SettingsDialog

    d = SettingsDialog(config.load())
    qtbot.addWidget(d)
    d.models_button.click()
    m = d.models_window
    qtbot.addWidget(m)
    m.engine.setCurrentText("whisper.cpp")
    m.select("base.en")
    m.use_button.click()
    assert d.editors[("engine", "name")].get() == "whisper.cpp"
    assert d.editors[("engine", "model")].get() == "base.en"
    assert d.save()
    saved = config.load()
    assert (saved.engine.name, saved.engine.model) == ("whisper.cpp", "base.en")


def test_the_tray_menu_opens_it(qtbot, qapp):
    from dictate.controller import Controller
    from dictate.ui.app import DesktopApp, Options
    from tests.support.tone_engine import ToneEngine

    cfg = config.load()
    desktop = DesktopApp(cfg, Options(tray=False))
    desktop.controller = Controller(cfg, engine_factory=ToneEngine, sink=object())
    try:
        desktop._build_shell(qapp)
        entries = {e.key: e for e in desktop.shell.entries()}
        assert list(entries)[-3:] == ["settings", "models", "quit"]
        entries["models"].run()
        w = desktop.windows["models"]
        qtbot.waitExposed(w)
        assert w.isVisible() and w.table.rowCount() >= 10
    finally:
        desktop._shutdown()  # the app's own way out: windows, notifier, controller, cues
