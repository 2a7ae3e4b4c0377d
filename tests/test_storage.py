"""Note folders (real FLAC/Opus through PyAV) and the history database (real sqlite3)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from dictate.audio.files import decode
from dictate.errors import OutputError
from dictate.storage import (AudioEncoder, History, HistoryEntry, NoteStatus, NoteStore, audio_file_name,
                             encode_audio, render_markdown)
from dictate.types import Segment, Word

RATE = 16_000


def speechy(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_flac_keeps_every_sample_at_16_bits(tmp_path: Path) -> None:
    audio = speechy(3.0)
    path = encode_audio(np.array_split(audio, 7), tmp_path / audio_file_name("flac"), "flac")
    assert path.name == "audio.flac" and not (tmp_path / "audio.flac.part").exists()
    decoded = decode(path)
    assert decoded.size == audio.size
    np.testing.assert_allclose(decoded, np.round(audio * 32767) / 32768, atol=1e-6)


def test_opus_is_small_and_sounds_the_same(tmp_path: Path) -> None:
    audio = speechy(5.0)
    path = encode_audio([audio], tmp_path / audio_file_name("opus"), "opus")
    assert path.suffix == ".opus"
    assert path.stat().st_size < audio.size * 2 / 4  # 32 kbit/s: a quarter of 16-bit PCM or less
    decoded = decode(path)
    assert abs(decoded.size - audio.size) < RATE // 10
    n = min(decoded.size, audio.size)
    corr = np.corrcoef(decoded[RATE // 10:n], audio[RATE // 10:n])[0, 1]
    assert corr > 0.9


def test_encoder_abort_leaves_no_file(tmp_path: Path) -> None:
    enc = AudioEncoder(tmp_path / "audio.flac")
    enc.write(speechy(0.5))
    enc.abort()
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_and_unwritable_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="unknown audio format"):
        AudioEncoder(tmp_path / "a.wav", "wav")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot"):
        NoteStore(blocker).write("n1", {"status": "ready"}, "text")


def test_note_round_trip(tmp_path: Path) -> None:
    store = NoteStore(tmp_path / "notes")
    segs = [Segment(0.0, 1.5, " Hello there.", (Word(0.0, 0.5, " Hello", 0.9), Word(0.6, 1.5, " there.", 0.8)),
                    no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.1)]
    src = encode_audio([speechy(1.5)], tmp_path / "audio.flac")
    store.put_audio("20250101-120000-abcdef", src)
    md = render_markdown("Hello there", ["Hello there."], when="2025-01-01 12:00", duration_s=1.5,
                         notices=["the microphone was lost at 0:01"])
    note = store.write("20250101-120000-abcdef", {"status": NoteStatus.READY, "audio_file": "audio.flac",
                                                  "engine": "faster-whisper"}, md, segs)
    again = store.get(note.id)
    assert again is not None and again.status == NoteStatus.READY
    assert again.text().startswith("# Hello there\n") and "> the microphone was lost" in again.text()
    assert again.segments() == segs
    assert again.audio_path is not None and decode(again.audio_path).size == int(1.5 * RATE)
    assert [n.id for n in store.list()] == [note.id]
    assert json.loads((note.folder / "note.json").read_text())["engine"] == "faster-whisper"
    assert store.get("missing") is None


def test_pending_note_without_text(tmp_path: Path) -> None:
    store = NoteStore(tmp_path)
    note = store.write("n", {"status": NoteStatus.PENDING, "error": "model missing"})
    assert store.get("n").status == NoteStatus.PENDING and note.text() == "" and note.segments() == []


def test_markdown_layout() -> None:
    md = render_markdown("T", ["One.", "", "Two."], when="today", duration_s=3725)
    assert md == "# T\n\n*today · 1:02:05*\n\nOne.\n\nTwo.\n"


@pytest.fixture
def history(tmp_path: Path) -> History:
    h = History(tmp_path / "db" / "history.sqlite3")
    h.add(HistoryEntry("n1", "note", 100.0, "Shopping list", "buy milk and eggs", duration_s=60.0,
                       engine="faster-whisper", model="tiny", options={"beam_size": 5}, location="/notes/n1"))
    h.add(HistoryEntry("d1", "dictation", 200.0, "", "dear sir, thanks for the eggs"))
    h.add(HistoryEntry("f1", "file", 300.0, "lecture.mp3", "the lecture on 100% milk_fat"))
    return h


def test_history_lists_newest_first_and_filters(history: History) -> None:
    assert [e.id for e in history.list()] == ["f1", "d1", "n1"]
    assert [e.id for e in history.list(kind="note")] == ["n1"]
    n1 = history.get("n1")
    assert n1.options == {"beam_size": 5} and n1.duration_s == 60.0 and n1.location == "/notes/n1"
    assert history.get("nope") is None
    assert len(list(history)) == 3


def test_history_search(history: History) -> None:
    assert history.fts
    assert {e.id for e in history.search("eggs")} == {"n1", "d1"}
    assert [e.id for e in history.search("eggs milk")] == ["n1"]  # every word
    assert [e.id for e in history.search("shop")] == ["n1"]  # prefixes and titles
    assert [e.id for e in history.search("eggs", kind="dictation")] == ["d1"]
    assert history.search('"quoted" OR NEAR(') == []  # user text is never query syntax
    assert len(history.search("")) == 3


def test_history_search_without_fts(history: History) -> None:
    history.fts = False
    assert {e.id for e in history.search("EGGS")} == {"n1", "d1"}
    assert [e.id for e in history.search("100%")] == ["f1"]
    assert history.search("milk_f") and not history.search("milkxf")


def test_search_follows_updates_and_deletes(history: History) -> None:
    history.update("d1", text="completely different words")
    assert [e.id for e in history.search("eggs")] == ["n1"]
    history.delete("n1")
    assert history.search("eggs") == []


def test_retranscription_keeps_a_revision(history: History) -> None:
    history.replace_text("n1", "buy oat milk", engine="whisper.cpp", options={"beam_size": 8})
    entry = history.get("n1")
    assert entry.text == "buy oat milk" and entry.engine == "whisper.cpp" and entry.options == {"beam_size": 8}
    [rev] = history.revisions("n1")
    assert rev.text == "buy milk and eggs" and rev.engine == "faster-whisper" and rev.options == {"beam_size": 5}
    with pytest.raises(OutputError):
        history.replace_text("nope", "x")


def test_history_is_plain_sqlite(history: History) -> None:
    with sqlite3.connect(history.path) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 3


def test_unusable_history_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot open the history"):
        History(blocker / "history.sqlite3")
