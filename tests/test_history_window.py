"""The history window under QT_QPA_PLATFORM=offscreen over a real history database: search across
dictations, notes and files, copy, delete, open the audio, and transcribe again with the real
tiny.en weights (WER-checked)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QGuiApplication  # noqa: E402

from dictate.storage import History, HistoryEntry  # noqa: E402
from dictate.ui.history_window import HistoryWindow  # noqa: E402
from tests.support.spoken_files import SENTENCES, spoken_file  # noqa: E402
from tests.support.wer import score  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "resources" / "screenshots"


def keep_screenshot(path: Path) -> None:
    """Saved under the test's tmp dir; with DICTATE_UPDATE_SCREENSHOTS=1 also the README's copy."""
    if os.environ.get("DICTATE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


@pytest.fixture
def cfg():
    from dictate import config

    return config.load()


@pytest.fixture
def filled(cfg, tmp_path):
    """Three kinds of entry; the file's audio is real speech."""
    audio = spoken_file(tmp_path / "garden.mp3", SENTENCES[0])
    h = History(cfg.paths.history_db)
    now = time.time()
    h.add(HistoryEntry(id="d1", kind="dictation", created_at=now - 30, title="Dear Sam", text="Dear Sam, thanks for the "
                       "parcel", duration_s=3.2, engine="faster-whisper", model="tiny.en"))
    h.add(HistoryEntry(id="n1", kind="note", created_at=now - 20, title="Shopping", text="Buy apples and a parcel "
                       "of tea", duration_s=65.0, engine="faster-whisper", model="base"))
    h.add(HistoryEntry(id="f1", kind="file", created_at=now - 10, title="garden.mp3", text="she opens the widow",
                       duration_s=4.0, engine="faster-whisper", model="tiny.en",
                       options={"language": "en", "beam_size": 5}, location=str(audio), audio_path=str(audio)))
    return h


def window(qtbot, cfg, **kw) -> HistoryWindow:
    w = HistoryWindow(cfg, **kw)
    qtbot.addWidget(w)
    w.show()
    return w


def titles(w: HistoryWindow) -> list[str]:
    return [w.table.item(r, 2).text() for r in range(w.table.rowCount())]


def test_search_filter_copy_open_and_delete(qtbot, cfg, filled):
    w = window(qtbot, cfg)
    assert titles(w) == ["garden.mp3", "Shopping", "Dear Sam"]  # newest first
    qtbot.keyClicks(w.search_edit, "parc")  # prefixes of words, in titles and texts
    qtbot.waitUntil(lambda: titles(w) == ["Dear Sam", "Shopping"] or titles(w) == ["Shopping", "Dear Sam"],
                    timeout=30_000)
    w.kind_box.setCurrentIndex(2)  # notes
    assert titles(w) == ["Shopping"]
    assert w.text.toPlainText() == "Buy apples and a parcel of tea"
    assert "note" in w.details.text() and "base" in w.details.text()
    assert not w.audio_button.isEnabled()  # that note has no audio
    w.copy_button.click()
    assert QGuiApplication.clipboard().text() == "Buy apples and a parcel of tea"
    w.search_edit.clear()
    w.kind_box.setCurrentIndex(0)
    qtbot.waitUntil(lambda: len(titles(w)) == 3, timeout=30_000)
    w.table.selectRow(0)
    assert w.audio_button.isEnabled()
    assert w.open_audio().toLocalFile() == filled.get("f1").audio_path
    asked = []
    w.confirm = lambda q: asked.append(q) or False
    w.table.selectRow(2)
    w.delete_button.click()
    assert asked == ["Delete “Dear Sam” from the history?"] and filled.get("d1") is not None
    w.confirm = lambda q: True
    w.delete_button.click()
    assert filled.get("d1") is None and titles(w) == ["garden.mp3", "Shopping"]
    assert not w.retranscribe_button.isEnabled()  # no engine was given to this window


@pytest.mark.slow
def test_transcribe_again_with_real_weights(qtbot, cfg, filled, tmp_path):
    from dictate.engines.faster import FasterWhisperEngine
    from dictate.notes import WorkerEngine
    from dictate.worker import EngineWorker
    from tests.support.real_models import tiny_en_ct2

    worker = EngineWorker(FasterWhisperEngine(tiny_en_ct2(), device="cpu", compute_type="int8", threads=2))
    try:
        w = window(qtbot, cfg, engine_factory=lambda: WorkerEngine(worker))
        w.table.selectRow(0)
        assert w.selected().id == "f1" and w.retranscribe_button.isEnabled()
        w.retranscribe_button.click()
        assert not w.retranscribe_button.isEnabled()  # one at a time
        qtbot.waitUntil(lambda: w._busy is None, timeout=120_000)
        assert "Transcribed again" in w.status.text(), w.status.text()
        entry = filled.get("f1")
        s = score(SENTENCES[0], entry.text)
        assert s.wer <= 0.25, (s, entry.text)
        assert [r.text for r in filled.revisions("f1")] == ["she opens the widow"]
        assert w.selected().id == "f1" and w.text.toPlainText() == entry.text
        w.resize(900, 420)
        shot = tmp_path / "history-window.png"
        assert w.grab().save(str(shot))
        keep_screenshot(shot)
    finally:
        worker.close(2)
