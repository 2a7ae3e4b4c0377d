"""Where `dictate transcribe` writes: every input its own predictable output (real files in
several formats, decoded by PyAV), existing files never replaced by surprise, and the JSON and
the history naming the engine that did the work when a fallback chain moved on."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from dictate import cli
from dictate.batch import output_names
from dictate.storage import History
from tests.support.media import tone, write_audio

TONE_ENGINE = "tests.support.tone_engine:make"
RATE = 16_000


def clip(freq: int) -> np.ndarray:
    """One second of `freq` Hz: the tone engine writes "<freq> Hz", so each output says its input."""
    return tone(freq, 1.0, RATE)


def transcribe(*args: str, capsys) -> tuple[int, str, str]:
    code = cli.main(["transcribe", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_output_names_are_decided_from_the_whole_batch() -> None:
    paths = [Path("a/talk.mp3"), Path("a/talk.flac"), Path("b/talk.mp3"), Path("solo.wav"), Path("SOLO.ogg"),
             Path("c/other.m4a")]
    assert output_names(paths) == ["talk.mp3", "talk.flac", "talk.mp3 (2)", "solo.wav", "SOLO.ogg", "other"]
    assert output_names([Path("x.wav")]) == ["x"]  # the usual case keeps the plain stem


def test_inputs_sharing_a_stem_each_get_their_own_output(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    made = {  # file -> the tone it holds
        src / "speech.mp3": 440, src / "speech.flac": 550, src / "speech.ogg": 660, src / "speech.m4a": 770,
        src / "speech.wav": 880, src / "a" / "take.wav": 330, src / "b" / "take.wav": 990,
        src / "unique.flac": 220,
    }
    for path, freq in made.items():
        write_audio(path, clip(freq), RATE)
    out = tmp_path / "out"
    code, stdout, err = transcribe(*map(str, made), "--engine", TONE_ENGINE, "--no-vad", "--format", "txt,srt",
                                   "--output-dir", str(out), capsys=capsys)
    assert code == 0, err
    expected = {"speech.mp3": 440, "speech.flac": 550, "speech.ogg": 660, "speech.m4a": 770, "speech.wav": 880,
                "take.wav": 330, "take.wav (2)": 990, "unique": 220}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{f}" for n in expected for f in ("txt", "srt"))
    for name, freq in expected.items():
        assert (out / f"{name}.txt").read_text() == f"{freq} Hz\n", name
        assert f"{freq} Hz" in (out / f"{name}.srt").read_text()
    assert "8 of 8 files transcribed" in err


def test_an_existing_file_is_kept_unless_overwrite_is_given(tmp_path: Path, capsys) -> None:
    a = write_audio(tmp_path / "a.wav", clip(440), RATE)
    b = write_audio(tmp_path / "b.wav", clip(660), RATE)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("my own notes\n")
    code, _, err = transcribe(str(a), str(b), "--engine", TONE_ENGINE, "--no-vad", "--output-dir", str(out),
                              capsys=capsys)
    assert code == 1
    assert (out / "a.txt").read_text() == "my own notes\n"
    assert (out / "b.txt").read_text() == "660 Hz\n"  # the other file still went through
    assert f"{out / 'a.txt'} exists; not replaced (use --overwrite to replace it)" in err
    assert "1 of 2 files transcribed" in err and "Traceback" not in err
    code, _, err = transcribe(str(a), "--engine", TONE_ENGINE, "--no-vad", "--output-dir", str(out), "--overwrite",
                              capsys=capsys)
    assert code == 0, err
    assert (out / "a.txt").read_text() == "440 Hz\n"
    assert not list(out.glob("*.part"))


def test_the_input_itself_is_never_an_output(tmp_path: Path, capsys) -> None:
    """A WAV saved as rec.txt (FFmpeg reads it by its content): its TXT output would be itself."""
    rec = tmp_path / "rec.txt"
    write_audio(tmp_path / "rec.wav", clip(440), RATE).rename(rec)
    before = rec.read_bytes()
    code, _, err = transcribe(str(rec), "--engine", TONE_ENGINE, "--no-vad", "--output-dir", str(tmp_path),
                              "--overwrite", capsys=capsys)
    assert code == 1
    assert "is the input file itself" in err
    assert rec.read_bytes() == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_json_and_history_name_the_engine_that_did_the_work(isolated_dirs: Path, ct2_model: Path, tmp_path: Path,
                                                           capsys) -> None:
    """[engine] fallback = remote, then faster-whisper; the server is down, so faster-whisper (on
    the random-weight model) transcribes: that is what the JSON and the history must say."""
    cfg_dir = isolated_dirs / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / "config.toml").write_text(
        f'[engine]\nfallback = ["remote", "faster-whisper"]\nmodel = "{ct2_model}"\n'
        f'[remote]\nbase_url = "http://127.0.0.1:{_closed_port()}/v1"\nmax_retries = 0\n', encoding="utf-8")
    wav = write_audio(tmp_path / "two.wav", np.concatenate([clip(440), clip(660)]), RATE)
    out = tmp_path / "out"
    code, _, err = transcribe(str(wav), "--max-new-tokens", "4", "--no-vad", "--format", "json",
                              "--output-dir", str(out), capsys=capsys)
    assert code == 0, err
    assert "remote is unavailable" in err
    doc = json.loads((out / "two.json").read_text())
    assert doc["engine"] == "faster-whisper"
    assert Path(doc["model"]).resolve() == ct2_model.resolve()
    entries = History(isolated_dirs / "data" / "history.sqlite3").list(kind="file")
    assert [(e.title, e.engine) for e in entries] == [("two.wav", "faster-whisper")]
    assert Path(entries[0].model).resolve() == ct2_model.resolve()
