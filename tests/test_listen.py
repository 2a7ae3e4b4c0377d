"""`dictate listen` end to end in a subprocess: files played as a microphone through the scripted
engine and the real faster-whisper / whisper.cpp engines on random-weight models, and the real
microphone path through a PulseAudio virtual mic, with Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, dictate_env
from tests.support.pulse import virtual_mic  # noqa: F401 (fixture)
from tests.support.scripted_engine import build_script, save_script

SCRIPTED = "tests.support.scripted_engine:from_env"


def listen(args: list[str], env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", "listen", *args], cwd=REPO, env=dictate_env(env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    script = build_script([("silence", 0.5), ("speech", 14.0), ("silence", 1.5), ("speech", 4.0),
                           ("silence", 1.0)], seed=21)
    wav, env = save_script(script, tmp_path_factory.mktemp("script"))
    return script, wav, env


def test_listen_file_prints_exactly_what_was_said(scripted, tmp_path):
    script, wav, env = scripted
    stats_path = tmp_path / "stats.json"
    res = listen(["--input", str(wav), "--speed", "6", "--engine", SCRIPTED, "--stats", str(stats_path),
                  "--partial"], env)
    assert res.returncode == 0, res.stderr
    assert res.stdout == " ".join(script.texts) + "\n"
    assert "…" in res.stderr  # tentative text went to stderr, not stdout
    stats = json.loads(stats_path.read_text())
    assert stats["samples_captured"] == script.audio.size
    assert stats["samples_lost"] == 0 and stats["overflows"] == 0
    assert stats["windows"] >= 5 and 0 < stats["max_window_s"] < 25.5
    assert stats["engine_busy_s"] >= 0
    assert len(stats["commit_latencies_s"]) == len(script.words)
    assert all(0 <= x < 5 for x in stats["commit_latencies_s"])
    assert stats["final_latency_s"] is not None and stats["final_latency_s"] < 2


def test_commits_are_flushed_as_they_happen(scripted):
    """The first words reach stdout long before the input has been played."""
    script, wav, env = scripted
    proc = subprocess.Popen([sys.executable, "-m", "dictate", "listen", "--input", str(wav), "--speed", "4",
                             "--engine", SCRIPTED], cwd=REPO, env=dictate_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        first = proc.stdout.read(len(script.texts[0]))
        first_at = time.monotonic() - t0
        rest, err = proc.communicate(timeout=60)
        total = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert (first + rest).split() == script.texts
    assert first_at < total - 2  # ~5 s of playing at 4x; the first commit came early


@pytest.mark.parametrize("engine,model_fixture", [("faster-whisper", "ct2_model"), ("whisper.cpp", "ggml_model")])
def test_real_engines_run_live_end_to_end(engine, model_fixture, request, scripted, tmp_path):
    _, wav, _ = scripted
    model = request.getfixturevalue(model_fixture)
    stats_path = tmp_path / "stats.json"
    res = listen(["--input", str(wav), "--speed", "4", "--engine", engine, "--model", str(model),
                  "--language", "en", "--max-new-tokens", "8", "--stats", str(stats_path)], timeout=240)
    assert res.returncode == 0, res.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["samples_lost"] == 0
    assert stats["windows"] >= 3
    assert stats["engine_busy_s"] > 0
    assert stats["max_window_s"] < 25.5
    # random weights say nonsense, but they say it through the live pipeline
    assert len(stats["commit_latencies_s"]) == len(res.stdout.split())


def test_bad_input_file_is_one_line(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_text("this is not audio")
    res = listen(["--input", str(bad), "--engine", SCRIPTED])
    assert res.returncode == 1
    assert res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "x.wav" in res.stderr
    res = listen(["--input", str(bad), "--speed", "0", "--engine", SCRIPTED])
    assert res.returncode == 1 and "speed" in res.stderr


def test_no_microphone_is_one_line(tmp_path):
    res = listen(["--engine", SCRIPTED], {"PULSE_SERVER": f"unix:{tmp_path}/none"})
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["dictate: no microphone found (no audio input device)"]


def test_microphone_listen_and_ctrl_c_transcribes_the_tail(virtual_mic, tmp_path):
    """Real capture from the virtual mic; Ctrl-C while the last words are still uncommitted."""
    script = build_script([("silence", 0.3), ("speech", 6.0), ("silence", 0.4)], seed=4)
    # The engine only knows this mic's audio once it has been captured; the scripted engine needs
    # the exact samples, so here a tone engine that names each second's loudest frequency is used.
    stats_path = tmp_path / "stats.json"
    proc = subprocess.Popen([sys.executable, "-m", "dictate", "listen", "--engine", "tests.support.tone_engine:make",
                             "--stats", str(stats_path)], cwd=REPO, env=dictate_env(virtual_mic.env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # model and stream up
        handle = virtual_mic.play(script.audio)
        assert handle.wait(20)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in err
    stats = json.loads(stats_path.read_text())
    assert stats["samples_lost"] == 0
    assert stats["samples_captured"] >= script.audio.size
    assert stats["final_latency_s"] is not None and stats["final_latency_s"] < 3
    assert "Hz" in out  # the tone engine heard the speech-like bursts
