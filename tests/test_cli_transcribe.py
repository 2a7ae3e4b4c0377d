"""`dictate transcribe` as a user runs it: a real subprocess, real files, real engines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, dictate_env
from tests.support.media import AUDIO_FORMATS, tone, write_audio, write_video

TONE_ENGINE = "tests.support.tone_engine:make"


def dictate(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], cwd=REPO, env=dictate_env(env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    clip = np.concatenate([tone(440, 1.0, 44_100), np.zeros(44_100, np.float32), tone(880, 1.0, 44_100)])
    files = {ext: write_audio(d / f"two-tones.{ext}", clip, 44_100, 2) for ext in AUDIO_FORMATS}
    files["wav8k"] = write_audio(d / "two-tones-8k.wav", np.concatenate(
        [tone(440, 1.0, 8_000), np.zeros(8_000, np.float32), tone(880, 1.0, 8_000)]), 8_000)
    files["mp4"] = write_video(d / "two-tones.mp4", 3.0, clip)
    files["silent-film"] = write_video(d / "silent-film.mp4", 1.0)
    broken = d / "broken.mp3"
    broken.write_bytes(np.random.default_rng(3).bytes(5000))
    files["broken"] = broken
    return files


@pytest.mark.parametrize("kind", [*AUDIO_FORMATS, "wav8k", "mp4"])
def test_every_format_through_the_cli(media: dict[str, Path], kind: str) -> None:
    """The scripted engine names the tone it hears each second: exact text proves decoding,
    resampling and downmixing reached the engine intact."""
    run = dictate("transcribe", str(media[kind]), "--engine", TONE_ENGINE, "--no-vad")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "440 Hz 880 Hz\n"


def test_all_formats_written_to_output_dir(media: dict[str, Path], tmp_path: Path) -> None:
    run = dictate("transcribe", str(media["flac"]), "--engine", TONE_ENGINE, "--no-vad", "--word-timestamps",
                  "--format", "txt,srt,vtt,json", "--output-dir", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    out = tmp_path / "out"
    assert (out / "two-tones.txt").read_text() == "440 Hz 880 Hz\n"
    assert (out / "two-tones.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:01,000\n440 Hz\n\n2\n00:00:02,000")
    assert (out / "two-tones.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n440 Hz")
    doc = json.loads((out / "two-tones.json").read_text())
    assert doc["duration_s"] == pytest.approx(3.0, abs=0.05)
    assert [w["text"] for w in doc["segments"][1]["words"]] == [" 880", " Hz"]
    assert not list(out.glob("*.part"))


def test_bad_files_are_reported_and_the_rest_continue(media: dict[str, Path], tmp_path: Path) -> None:
    run = dictate("transcribe", str(media["broken"]), str(media["wav"]), str(tmp_path / "gone.wav"),
                  str(media["silent-film"]), str(media["ogg"]), "--engine", TONE_ENGINE, "--no-vad")
    assert run.returncode == 1
    assert run.stdout == "440 Hz 880 Hz\n440 Hz 880 Hz\n"
    lines = run.stderr.strip().splitlines()
    assert any("broken.mp3: not an audio or video file" in l for l in lines)
    assert any("gone.wav: no such file" in l for l in lines)
    assert any("silent-film.mp4: has no audio track" in l for l in lines)
    assert "2 of 5 files transcribed" in lines[-1]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("engine", ["faster-whisper", "whisper.cpp"])
def test_real_engines_through_the_cli(media: dict[str, Path], tmp_path: Path, engine: str,
                                      ct2_model: Path, ggml_model: Path) -> None:
    model = ct2_model if engine == "faster-whisper" else ggml_model
    run = dictate("transcribe", str(media["mp3"]), str(media["mp4"]), "--engine", engine, "--model", str(model),
                  "--no-vad", "--max-new-tokens", "8", "--language", "en", "--beam-size", "2",
                  "--format", "srt,json", "--output-dir", str(tmp_path), "--threads", "2")
    assert run.returncode == 0, run.stderr
    for stem in ("two-tones.mp3", "two-tones.mp4"):  # one stem, two inputs: each keeps its own outputs
        doc = json.loads((tmp_path / f"{stem}.json").read_text())
        assert doc["engine"] == engine and doc["segments"]
        assert all(0 <= s["start_s"] <= s["end_s"] <= doc["duration_s"] + 1e-6 for s in doc["segments"])
        assert (tmp_path / f"{stem}.srt").read_text().startswith("1\n00:00:")


def test_faster_whisper_vad_filter_runs(media: dict[str, Path], ct2_model: Path) -> None:
    """Silero VAD (bundled with faster-whisper, offline) finds no speech in pure tones: no text, no error."""
    run = dictate("transcribe", str(media["wav"]), "--model", str(ct2_model), "--vad", "--max-new-tokens", "8")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_missing_stock_model_offline_says_how_to_get_it(media: dict[str, Path]) -> None:
    run = dictate("transcribe", str(media["wav"]), "--model", "base", env={"HF_HUB_OFFLINE": "1"})
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1, run.stderr
    assert "dictate models download base" in run.stderr and "Traceback" not in run.stderr


def test_newcomer_without_a_model_gets_one_line(media: dict[str, Path]) -> None:
    """No model anywhere, default settings, and the hub unreachable (no network here, or offline)."""
    run = dictate("transcribe", str(media["mp3"]), env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert run.returncode == 1
    # The download attempt is announced (nothing is fetched silently), then one line says how to get a model.
    announce, error = run.stderr.splitlines()
    assert announce.startswith("dictate: downloading model")
    assert "dictate models download" in error and "--model" in error


def test_missing_local_model_path(media: dict[str, Path], tmp_path: Path) -> None:
    run = dictate("transcribe", str(media["wav"]), "--model", str(tmp_path / "my-finetune"))
    assert run.returncode == 1 and "not found" in run.stderr and run.stderr.count("\n") == 1


def test_unwritable_output_dir_is_an_error_not_a_traceback(media: dict[str, Path], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = dictate("transcribe", str(media["wav"]), "--engine", TONE_ENGINE, "--output-dir", str(blocker / "sub"))
    assert run.returncode == 1 and "cannot create" in run.stderr and "Traceback" not in run.stderr


def test_usage_errors_exit_2() -> None:
    assert dictate("transcribe").returncode == 2
    run = dictate("transcribe", "x.wav", "--format", "docx")
    assert run.returncode == 2 and "unknown format docx" in run.stderr


def test_progress_on_stderr_for_long_files(tmp_path: Path) -> None:
    long = write_audio(tmp_path / "long.flac", np.tile(tone(440, 1.0, 16_000), 90), 16_000)
    run = dictate("transcribe", str(long), "--engine", TONE_ENGINE, "--no-vad")
    assert run.returncode == 0
    progress = [l for l in run.stderr.splitlines() if l.startswith("long.flac:")]
    assert progress and progress[-1].startswith("long.flac: 100% (1:30 / 1:30)")
    assert run.stdout.count("440 Hz") == 90


def test_python_dash_m_and_version() -> None:
    run = dictate("--version")
    assert run.returncode == 0 and run.stdout.startswith("dictate ")


def test_transcriptions_go_into_the_history(media: dict[str, Path], isolated_dirs: Path) -> None:
    from dictate.storage import History

    run = dictate("transcribe", str(media["wav"]), str(media["broken"]), "--engine", TONE_ENGINE, "--no-vad",
                  env={"DICTATE_DATA_DIR": str(isolated_dirs / "data")})
    assert run.returncode == 1
    entries = History(isolated_dirs / "data" / "history.sqlite3").search("880")
    assert [(e.kind, e.title, e.text) for e in entries] == [("file", "two-tones.wav", "440 Hz 880 Hz")]
    assert Path(entries[0].audio_path).samefile(media["wav"])
    listed = dictate("note", "list", "--kind", "file", env={"DICTATE_DATA_DIR": str(isolated_dirs / "data")})
    assert "two-tones.wav" in listed.stdout, listed.stderr
