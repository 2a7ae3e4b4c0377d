"""The home-server case: the remote engine against a third-party OpenAI-compatible transcription
server, faster-whisper-server (from PyPI, CPU here), serving real tiny.en weights from their
folder the way a user serves their own (fine-tuned) model. tests/test_remote.py has the project's
own loopback server and the misbehaving ones."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from dictate import config
from dictate.audio import files
from dictate.engines.remote import RemoteEngine
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions
from tests.conftest import REPO, dictate_env
from tests.support.real_models import tiny_en_ct2
from tests.support.wer import score

pytestmark = pytest.mark.slow

FIRST = "She opened the window and looked at the garden in the morning light."
SECOND = "The children walked to school along the river every day."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """faster-whisper-server on a loopback port with tiny.en; yields its base URL (up to /v1)."""
    try:
        import faster_whisper_server  # noqa: F401
    except ImportError:
        pytest.fail("faster-whisper-server is missing: pip install -e '.[test]'", pytrace=False)
    port = free_port()
    # The server's own config file, as a user serving a model folder of theirs writes it
    # (the model name is what [remote] model says; int8 as on any CPU).
    cfg = tmp_path_factory.mktemp("server") / "models.yaml"
    cfg.write_text(json.dumps({"models": [{"name": "whisper-1", "path": str(tiny_en_ct2()),
                                           "model_options": {"device": "cpu", "compute_type": "int8"}}]}))
    proc = subprocess.Popen([sys.executable, "-m", "faster_whisper_server", "--config", str(cfg), "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # loads the model before it answers; slow on a loaded machine
        while True:
            assert proc.poll() is None, f"the server exited: {proc.stderr.read()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if json.load(r).get("status") == "ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "faster-whisper-server did not come up in 90 s"
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sentences with a second of silence between them, as a WAV file."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (packaging/install-system-deps.sh --test)", pytrace=False)
    folder = tmp_path_factory.mktemp("speech")
    parts = []
    for i, text in enumerate((FIRST, SECOND)):
        wav = folder / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True, timeout=60)
        parts += [files.decode(wav), np.zeros(SAMPLE_RATE_HZ, np.float32)]
    audio = np.concatenate(parts)
    out = folder / "two.wav"
    import wave

    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out


def test_remote_engine_on_faster_whisper_server(server: str, speech: Path) -> None:
    audio = files.decode(speech)
    engine = RemoteEngine(server, "whisper-1", read_timeout_s=180)
    segments = engine.transcribe(audio, TranscribeOptions(language="en"))
    text = " ".join(s.text for s in segments)
    assert score(f"{FIRST} {SECOND}", text).wer <= 0.2, text
    # Times from the server, in the audio's clock and in order.
    assert segments and all(0 <= s.start_s <= s.end_s <= audio.size / SAMPLE_RATE_HZ + 0.01 for s in segments)
    assert [s.start_s for s in segments] == sorted(s.start_s for s in segments)



def test_cli_with_remote_pointed_at_the_server(server: str, speech: Path) -> None:
    """What the README tells a home-server user to write: [remote] base_url (and wav uploads, as
    whisper.cpp's server needs; this server reads both)."""
    cfg = config.load()
    cfg.engine.name = "remote"
    cfg.remote.base_url = server
    cfg.remote.upload_format = "wav"
    cfg.remote.read_timeout_s = 180.0
    config.save(cfg)
    run = subprocess.run([sys.executable, "-m", "dictate", "transcribe", str(speech), "--language", "en"], cwd=REPO,
                         env=dictate_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert score(f"{FIRST} {SECOND}", run.stdout).wer <= 0.2, run.stdout
