"""`dictate dataset export` on real weights and real files: espeak-ng prose of ~50 s and a short
pair are exported; a small loader that reads the folders as Hugging Face's audiofolder does finds
every piece (16 kHz mono WAV, at most 30 s); the pieces tile the recording and their texts tile
the corrected text; real tiny.en hears in each piece the text given to it (and not its
neighbour's). Exporting again writes nothing, needs no model, and a corrected pair replaces its
own pieces while a user's file is never touched."""

from __future__ import annotations

import csv
import wave
from pathlib import Path

import numpy as np
import pytest

from dictate import cli
from dictate import config as config_mod
from dictate import dataset
from dictate.engines.faster import FasterWhisperEngine
from dictate.export import export, plan_pieces
from dictate.storage import encode_audio
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions
from tests.support import speech, wer
from tests.support.real_models import tiny_en_ct2

SR = SAMPLE_RATE_HZ
LONG = speech.RecordingSpec("export-long", "kjv_genesis.txt", 30, 48.0, "en-us", 165,
                            (0.6, 0.3, 0.9, 0.4, 0.25), seed=21)
SHORT = speech.RecordingSpec("export-short", "jargon_file.txt", 5, 7.0, "en-us", 160, (0.4,), seed=22)


def load_audiofolder(root: Path) -> dict[str, list[dict]]:
    """What `datasets.load_dataset("audiofolder", data_dir=root)` builds: a split per folder, a row
    per metadata.csv line, its audio decoded from file_name (relative to the metadata file)."""
    out: dict[str, list[dict]] = {}
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        with open(split_dir / "metadata.csv", newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames[0] == "file_name"
            rows = []
            for row in reader:
                with wave.open(str(split_dir / row["file_name"]), "rb") as w:
                    assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
                    pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767.0
                rows.append({**row, "audio": pcm, "path": split_dir / row["file_name"]})
        out[split_dir.name] = rows
    return out


@pytest.fixture(scope="module")
def engine():
    return FasterWhisperEngine(tiny_en_ct2(), compute_type="int8")


@pytest.fixture(scope="module")
def recordings():
    return speech.build(LONG), speech.build(SHORT)


def _add(cfg, rec, folder: Path) -> dataset.Pair:
    audio = encode_audio([rec.audio], folder / f"{rec.spec.name}.flac")
    text = folder / f"{rec.spec.name}.txt"
    text.write_text(rec.text + "\n", encoding="utf-8")
    return dataset.add_manual(cfg, audio, text)


@pytest.mark.slow
def test_export_layout_pieces_and_alignment_on_real_weights(tmp_path, engine, recordings, capsys):
    long_rec, short_rec = recordings
    assert long_rec.duration_s > 45  # must be cut
    cfg = config_mod.load()
    long_pair, short_pair = _add(cfg, long_rec, tmp_path), _add(cfg, short_rec, tmp_path)
    out = tmp_path / "export"
    assert cli.main(["dataset", "export", str(out), "--model", str(tiny_en_ct2())]) == 0
    capsys.readouterr()

    data = load_audiofolder(out)
    rows = [r for split in data.values() for r in split]
    assert set(data) <= {"train", "validation"}
    for pair in (long_pair, short_pair):  # every piece of a recording on its pair's side only
        sides = {split for split, rs in data.items() for r in rs if r["file_name"].startswith(pair.id)}
        assert sides == {pair.split}
    for r in rows:
        assert 0.5 * SR < r["audio"].size <= 30 * SR
        assert r["path"].with_suffix(".txt").read_text(encoding="utf-8").strip() == r["transcription"]
    long_rows = sorted((r for r in rows if r["file_name"].startswith(long_pair.id)), key=lambda r: r["file_name"])
    assert len(long_rows) >= 2
    # The pieces tile the recording and its text: nothing lost, nothing twice.
    joined = np.concatenate([r["audio"] for r in long_rows])
    assert joined.size == long_rec.audio.size
    assert np.max(np.abs(joined - long_rec.audio)) < 1e-3  # 16-bit twice (FLAC, WAV), never a sample moved
    assert " ".join(r["transcription"] for r in long_rows).split() == long_rec.text.split()

    # Real tiny.en hears each piece's own text in it (cut at pauses, not inside words).
    greedy = TranscribeOptions(language="en", beam_size=1, temperature=0.0)
    heard = [" ".join(s.text for s in engine.transcribe(r["audio"], greedy)) for r in long_rows]
    # tiny.en mishears some archaic words anywhere (~15 % WER on the whole recording here); a
    # bad cut shows as words lost or added at a piece's edges.
    for r, hyp in zip(long_rows, heard):
        score = wer.score(r["transcription"], hyp)
        why = (r["file_name"], str(score), wer.alignment(r["transcription"], hyp))
        assert score.wer <= 0.3 and score.deletions <= 3, why
        n = len(wer.normalize(r["transcription"]).split())
        assert not wer.deleted_words(r["transcription"], hyp) & {0, n - 1}, why
    for k in range(len(long_rows) - 1):  # a piece against its neighbour's text is far off: the check can fail
        assert wer.score(long_rows[k + 1]["transcription"], heard[k]).wer > 0.6

    # Again: nothing written, no model needed (the word times are kept with the pair).
    files = sorted(p.relative_to(out) for p in out.rglob("*"))
    cfg = config_mod.load()
    report = export(cfg, out, engine_factory=lambda: pytest.fail("the model was loaded again"))
    assert report.written == 0 and report.removed == 0 and not report.skipped
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == files


def test_rerun_replaces_own_pieces_and_never_a_users_file(tmp_path):
    cfg = config_mod.load()
    rng = np.random.default_rng(5)
    audio = encode_audio([(0.05 * rng.standard_normal(4 * SR)).astype(np.float32)], tmp_path / "a.flac")
    text = tmp_path / "a.txt"
    text.write_text("first version of the words\n", encoding="utf-8")
    pair = dataset.add_manual(cfg, audio, text)
    out = tmp_path / "out"
    r1 = export(cfg, out, engine_factory=lambda: pytest.fail("no model for short pairs"))
    assert r1.written == 3 and r1.pieces[pair.split] == 1  # wav, txt, metadata.csv
    split_dir = out / pair.split
    (first_txt,) = split_dir.glob(f"{pair.id}-*.txt")
    mine = split_dir / "my-own.wav"
    mine.write_bytes(b"a user's file")
    # The user edits a file the export wrote, then corrects the pair.
    first_txt.write_text("my edit\n", encoding="utf-8")
    text.write_text("second version of the words\n", encoding="utf-8")
    dataset.save_pair(cfg, pair.id, audio, text.read_text(), source="manual")
    r2 = export(cfg, out, engine_factory=lambda: pytest.fail("no model for short pairs"))
    assert first_txt.read_text(encoding="utf-8") == "my edit\n"  # edited by the user: kept
    assert mine.read_bytes() == b"a user's file"
    assert not first_txt.with_suffix(".wav").exists() and r2.removed == 1  # our stale wav is gone
    new_txts = [p for p in split_dir.glob(f"{pair.id}-*.txt") if p != first_txt]
    assert [p.read_text(encoding="utf-8") for p in new_txts] == ["second version of the words\n"]
    with open(split_dir / "metadata.csv", encoding="utf-8") as f:
        listed = [row["file_name"] for row in csv.DictReader(f)]
    assert listed == [new_txts[0].with_suffix(".wav").name]
    # A metadata.csv of the user's own is never replaced.
    (split_dir / "metadata.csv").write_text("file_name,transcription\nmy-own.wav,hello\n", encoding="utf-8")
    text.write_text("third version\n", encoding="utf-8")
    dataset.save_pair(cfg, pair.id, audio, text.read_text(), source="manual")
    r3 = export(cfg, out, engine_factory=lambda: None)
    assert any("metadata.csv is yours" in s for s in r3.skipped)
    assert "my-own.wav,hello" in (split_dir / "metadata.csv").read_text(encoding="utf-8")


def test_plan_pieces_cuts_only_between_heard_words():
    """Pure logic: 70 s of 'speech' (noise bursts the VAD takes for speech) with word times; cuts
    land in real pauses between matched words, never next to a misheard one, never where the word
    times show a gap that the audio does not have, and no piece passes 30 s."""
    words, heard, t = [], [], 0.5
    rng = np.random.default_rng(0)
    sounding = []
    for i in range(160):
        w = f"word{i}"
        words.append(w)
        heard.append((w if i % 7 else "garbled", t, t + 0.3))
        sounding.append((t, t + 0.3))
        t += 0.3 + (1.0 if i % 10 == 9 else 0.12)
    # Where the model is a second off: the word times of 45|46 and 115|116 show the longest pause
    # of all, but those words are spoken on without a break.
    lying = {45, 115}
    for i in lying:
        heard[i] = (heard[i][0], heard[i][1], heard[i][2] - 0.6)
        heard[i + 1] = (heard[i + 1][0], heard[i + 1][1] + 0.8, heard[i + 1][2] + 0.8)
        sounding[i] = (sounding[i][0], sounding[i + 1][0])
    audio = (0.001 * rng.standard_normal(int((t + 0.5) * SR))).astype(np.float32)
    for s, e in sounding:
        audio[int(s * SR):int(e * SR)] += (0.2 * rng.standard_normal(int(e * SR) - int(s * SR))).astype(np.float32)
    pieces = plan_pieces(audio, " ".join(words), heard, 30.0)
    assert len(pieces) >= 3 and all(p.end - p.start <= 30 * SR for p in pieces)
    assert " ".join(p.text for p in pieces).split() == words
    for p in pieces[:-1]:
        last = int(p.text.split()[-1][4:])
        assert last % 7 and (last + 1) % 7  # both neighbours of the cut were heard
        assert last not in lying
        assert sounding[last][1] * SR <= p.end <= sounding[last + 1][0] * SR  # inside the pause
    with pytest.raises(Exception, match="were heard"):
        plan_pieces(audio, " ".join(f"other{i}" for i in range(160)), heard, 30.0)
