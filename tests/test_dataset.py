"""Corrections become training pairs: a dictation recorded by the controller (collecting on) keeps
its audio, `dictate history edit` turns audio + corrected text into a pair, a second edit updates
the same pair, `dictate dataset add` adds pairs by hand (the same audio twice is one pair), and
`dictate dataset status` sums the hours by split. Real files on disk, real FLAC encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dictate import cli
from dictate import config as config_mod
from dictate import dataset
from dictate.audio.files import decode
from dictate.controller import State
from dictate.storage import History, HistoryEntry, NoteStore, encode_audio
from dictate.types import SAMPLE_RATE_HZ, Command, CommandKind
from tests.support.scripted_engine import build_script
from tests.test_controller import make, sample

SR = SAMPLE_RATE_HZ


def _collecting(on: bool = True) -> config_mod.Config:
    cfg = config_mod.load()
    cfg.dataset.collect_corrections = on
    config_mod.save(cfg)
    return config_mod.load()


def _entry_with_audio(cfg, tmp_path: Path, kind: str = "file", seconds: float = 3.0, seed: int = 0) -> HistoryEntry:
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    path = encode_audio([audio], tmp_path / f"src-{seed}.flac")
    entry = HistoryEntry(id=f"e{seed:04d}", kind=kind, title="t", text="the old wrong text", duration_s=seconds,
                         location=str(path), audio_path=str(path))
    return History(cfg.paths.history_db).add(entry)


def test_split_is_a_stable_hash_of_the_source():
    ids = [f"dictation-{i:05d}" for i in range(2000)]
    splits = [dataset.split_for(i) for i in ids]
    assert splits == [dataset.split_for(i) for i in ids]
    share = splits.count("validation") / len(splits)
    assert 0.07 < share < 0.13  # about VALIDATION_PERCENT


def test_controller_keeps_dictation_audio_while_collecting_and_edit_makes_a_pair(tmp_path, capsys):
    cfg = _collecting(True)
    assert not cfg.history.keep_dictation_audio  # collecting alone keeps the audio
    cfg.streaming.min_chunk_s = 0.5
    cfg.output.trailing_space = False
    script = build_script([("silence", 1.0), ("speech", 3.0), ("silence", 1.0)], seed=11)
    ctl, src, sink, events, _ = make(cfg, script)
    ctl.start()
    events.wait_state(State.IDLE)
    src.play(script.audio, speed=3.0, marks={
        sample(0.5): lambda: ctl.submit(Command(CommandKind.START)),
        sample(script.words[-1].end_s): lambda: ctl.submit(Command(CommandKind.STOP)),
    })
    events.wait_state(State.IDLE, after=events.states.index(State.LISTENING))
    ctl.shutdown()
    entry = History(cfg.paths.history_db).list(kind="dictation")[0]
    assert entry.audio_path and Path(entry.audio_path).is_file()

    assert cli.main(["history", "edit", entry.id, "--text", "What I really said,\nin two lines."]) == 0
    err = capsys.readouterr().err
    assert "text corrected" in err and "training pair" in err
    pair = dataset.get_pair(cfg, f"dictation-{entry.id}")
    assert pair is not None and pair.text == "What I really said, in two lines." and pair.source == "dictation"
    kept, source = decode(pair.audio_path), decode(entry.audio_path)
    assert kept.size == source.size and np.max(np.abs(kept - source)) < 2 / 32767  # FLAC: lossless 16 bit
    assert abs(pair.duration_s - source.size / SR) < 1e-3
    hist = History(cfg.paths.history_db)
    assert hist.get(entry.id).text == "What I really said,\nin two lines."
    assert [r.text for r in hist.revisions(entry.id)] == [entry.text]

    # A second correction updates the same pair; nothing is duplicated.
    assert cli.main(["history", "edit", entry.id, "--text", "What I said."]) == 0
    pairs = dataset.list_pairs(cfg)
    assert [p.id for p in pairs] == [pair.id] and pairs[0].text == "What I said."
    assert pairs[0].created_at == pair.created_at and pairs[0].audio_sha256 == pair.audio_sha256


def test_collecting_off_edits_text_without_a_pair(tmp_path, capsys):
    cfg = _collecting(False)
    entry = _entry_with_audio(cfg, tmp_path)
    assert cli.main(["history", "edit", entry.id, "--text", "right"]) == 0
    assert History(cfg.paths.history_db).get(entry.id).text == "right"
    assert dataset.list_pairs(cfg) == []
    assert "training pair" not in capsys.readouterr().err


def test_edit_without_audio_says_why_and_keeps_the_text(tmp_path, capsys):
    cfg = _collecting(True)
    History(cfg.paths.history_db).add(HistoryEntry(id="noaudio", kind="dictation", text="old"))
    assert cli.main(["history", "edit", "noaudio", "--text", "new"]) == 0
    assert "no training pair: its audio was not kept" in capsys.readouterr().err
    assert History(cfg.paths.history_db).get("noaudio").text == "new" and dataset.list_pairs(cfg) == []
    assert cli.main(["history", "edit", "missing", "--text", "x"]) == 1
    assert cli.main(["history", "edit", "noaudio", "--text", "  "]) == 1
    assert "empty" in capsys.readouterr().err


def test_editing_a_note_rewrites_its_markdown(tmp_path):
    cfg = _collecting(True)
    store = NoteStore(cfg.notes_dir)
    entry = _entry_with_audio(cfg, tmp_path, kind="note", seed=3)
    store.write(entry.id, {"title": "Groceries", "started_at": "2026-01-02T10:00:00", "duration_s": 3.0,
                           "notices": []}, "# Groceries\n\nthe old wrong text\n")
    result = dataset.edit_entry(cfg, entry.id, "Milk and bread.\n\nAnd tea.")
    assert result.changed and result.pair is not None and result.pair.id == f"note-{entry.id}"
    md = store.get(entry.id).text()
    assert md.startswith("# ") and "Milk and bread.\n\nAnd tea." in md and "wrong" not in md
    assert result.pair.text == "Milk and bread. And tea."


def test_dataset_add_and_status(tmp_path, capsys):
    cfg = config_mod.load()
    text = tmp_path / "words.txt"
    text.write_text("Hello there, this is my voice.\n", encoding="utf-8")
    sources = [_entry_with_audio(cfg, tmp_path, seconds=s, seed=i) for i, s in enumerate((2.0, 4.0, 6.0), 10)]
    for e in sources:
        assert cli.main(["dataset", "add", e.audio_path, str(text)]) == 0
    assert cli.main(["dataset", "add", sources[0].audio_path, str(text)]) == 0  # again: the same pair
    capsys.readouterr()
    pairs = dataset.list_pairs(cfg)
    assert len(pairs) == 3 and all(p.id.startswith("manual-") and p.text == "Hello there, this is my voice."
                                   for p in pairs)
    st = dataset.status(cfg)
    assert st.pairs == 3 and abs(st.hours * 3600 - 12.0) < 0.01
    by_split = {s.split: s for s in st.splits}
    for name in dataset.SPLITS:
        mine = [p for p in pairs if p.split == name]
        assert by_split[name].pairs == len(mine)
        assert abs(by_split[name].hours * 3600 - sum(p.duration_s for p in mine)) < 0.01
    assert cli.main(["dataset", "status", "--list"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "validation" in out and "of the 5-10 h" in out and "collecting corrections: off" in out
    assert all(p.id in out for p in pairs)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    assert cli.main(["dataset", "add", sources[1].audio_path, str(empty)]) == 1
    assert cli.main(["dataset", "add", str(tmp_path / "nope.wav"), str(text)]) == 1
    not_audio = tmp_path / "not-audio.wav"
    not_audio.write_bytes(b"this is not audio at all" * 100)
    assert cli.main(["dataset", "add", str(not_audio), str(text)]) == 1
    assert len(dataset.list_pairs(cfg)) == 3  # the failures left nothing behind
    assert cli.main(["dataset", "remove", pairs[0].id]) == 0
    assert len(dataset.list_pairs(cfg)) == 2


@pytest.mark.parametrize("collect", [False, True])
def test_config_field_is_documented_and_off_by_default(collect):
    field = config_mod.DatasetConfig.__dataclass_fields__["collect_corrections"]
    assert config_mod.DatasetConfig().collect_corrections is False
    assert "training" in field.metadata["help"] and "audio" in field.metadata["help"]
    cfg = _collecting(collect)
    assert cfg.dataset.collect_corrections is collect
