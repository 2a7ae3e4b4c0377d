"""Privacy: with a local engine and a local model, a whole session opens no network connection.

An audit hook (sys.addaudithook) sees every socket.connect / sendto / getaddrinfo made from Python
in this process, from any thread; while armed it records them and, for internet sockets, refuses
them. The sessions run the real CLI in-process with the real engines on the random-weight models,
and with the Hugging Face offline switch removed, so a silent download attempt would show."""

from __future__ import annotations

import socket
import subprocess
import shutil
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

from dictate import cli
from dictate.audio.files import decode
from dictate.config import load
from dictate.engines import create_engine
from dictate.engines.remote import RemoteEngine, RemoteError
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions
from tests.support.http_server import ServerConfig, TranscriptionServer
from tests.support.media import write_audio

INET = (socket.AF_INET, socket.AF_INET6)


@dataclass
class NetGuard:
    armed: bool = False
    block: bool = True
    events: list[tuple[str, object]] = field(default_factory=list)

    def hook(self, event: str, args: tuple) -> None:
        if not self.armed:
            return
        if event == "socket.getaddrinfo":
            self.events.append((event, args[0]))
            if self.block:
                raise OSError("network blocked by the privacy test")
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock, address = args[0], args[-1] if event != "socket.sendmsg" else args[-1]
            if getattr(sock, "family", None) in INET:
                self.events.append((event, address))
                if self.block:
                    raise ConnectionRefusedError("network blocked by the privacy test")


GUARD = NetGuard()
sys.addaudithook(GUARD.hook)  # hooks cannot be removed; it does nothing unless armed


@pytest.fixture
def guard(monkeypatch):
    # Remove the test suite's offline switches: the product alone must keep the session local.
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    import huggingface_hub.constants as hub

    # huggingface_hub reads the switch once, when first imported (maybe by an earlier test).
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    GUARD.events.clear()
    GUARD.block = True
    GUARD.armed = True
    try:
        yield GUARD
    finally:
        GUARD.armed = False


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt install espeak-ng)")
    out = tmp_path_factory.mktemp("privacy")
    raw = out / "raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "this stays on my computer. nothing leaves it."], check=True)
    audio = np.concatenate([decode(raw), np.zeros(SAMPLE_RATE_HZ, np.float32), decode(raw)])
    return write_audio(out / "speech.flac", audio, SAMPLE_RATE_HZ)


def test_the_guard_sees_and_stops_real_connections(ct2_model):
    """Without this, zero recorded connections would prove nothing."""
    with TranscriptionServer(ct2_model, ServerConfig()) as srv:
        eng = RemoteEngine(srv.base_url, "whisper-1", max_retries=0)
        audio = np.zeros(SAMPLE_RATE_HZ, np.float32)
        GUARD.events.clear()
        GUARD.block, GUARD.armed = False, True
        try:
            eng.transcribe(audio, TranscribeOptions(temperature=0.0))
        finally:
            GUARD.armed = False
        assert ("socket.connect", srv.server_address[:2]) in GUARD.events
        GUARD.events.clear()
        GUARD.block, GUARD.armed = True, True
        try:
            with pytest.raises(RemoteError, match="unreachable"):
                eng.transcribe(audio, TranscribeOptions(temperature=0.0))
        finally:
            GUARD.armed = False
        assert GUARD.events and len(srv.uploads) == 1, "the blocked request never reached the server"


@pytest.mark.parametrize("engine, model_fixture", [("faster-whisper", "ct2_model"), ("whisper.cpp", "ggml_model")])
def test_file_transcription_opens_no_connection(guard, request, engine, model_fixture, speech_wav, tmp_path, capsys):
    model = request.getfixturevalue(model_fixture)
    code = cli.main(["transcribe", str(speech_wav), "--engine", engine, "--model", str(model),
                     "--max-new-tokens", "4", "--format", "json,srt", "--word-timestamps",
                     "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (tmp_path / "out" / "speech.json").stat().st_size > 0
    assert guard.events == [], f"network use during a local session: {guard.events}"


def test_note_session_opens_no_connection(guard, ct2_model, speech_wav, isolated_dirs, capsys):
    code = cli.main(["note", "start", "--input", str(speech_wav), "--speed", "8", "--model", str(ct2_model),
                     "--max-new-tokens", "4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "note saved in" in err
    assert out.strip(), "faster-whisper transcribed the note (random weights still produce words)"
    assert list((isolated_dirs / "data" / "notes").rglob("*.flac")), "the note's audio was kept"
    assert guard.events == [], f"network use during a local note: {guard.events}"


def test_configuring_a_remote_engine_sends_nothing_until_used(guard):
    cfg = load()
    cfg.remote.base_url = "https://transcribe.example.com/v1"
    eng = create_engine("remote", cfg)
    assert isinstance(eng, RemoteEngine) and eng.requests_sent == 0
    assert guard.events == []


def test_a_stock_model_is_fetched_only_on_first_use_and_the_guard_sees_it(guard):
    """The one sanctioned network use of a local engine: the first use of a stock model that is
    not downloaded yet. The guard sees the attempt (so it would see a silent one too)."""
    from dictate.errors import ModelError

    cfg = load()
    with pytest.raises(ModelError, match="could not be fetched"):
        create_engine("faster-whisper", cfg, model="tiny")
    assert guard.events, "the download attempt went through the network and the guard saw it"


def test_live_dictation_session_opens_no_connection(guard, ct2_model, speech_wav, tmp_path, capsys):
    stats = tmp_path / "stats.json"
    code = cli.main(["listen", "--input", str(speech_wav), "--speed", "4", "--model", str(ct2_model),
                     "--max-new-tokens", "4", "--stats", str(stats)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert stats.stat().st_size > 0 and out.strip(), "the live loop ran and committed text"
    assert guard.events == [], f"network use during live dictation: {guard.events}"
