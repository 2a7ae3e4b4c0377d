"""The remote engine against a real loopback HTTP server (real multipart parsing, real
faster-whisper on the random-weight test model) and against servers that misbehave."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dictate import cli, secrets
from dictate.audio.files import decode
from dictate.engines import create_engine
from dictate.engines.fallback import EngineUnavailableError
from dictate.engines.pauses import cut_points, split
from dictate.engines.remote import RemoteEngine, RemoteError, encode_audio, parse_response
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions
from tests.support.http_server import ServerConfig, TranscriptionServer
from tests.support.keyring_env import keyring_env  # noqa: F401 - fixture
from tests.support.media import write_audio

KEY = "sk-test-7f3a9c1e5b2d4a6f8e0c1b3d5f7a9e2c"
OPTS = TranscribeOptions(language="en", temperature=0.0, max_new_tokens=6)


@pytest.fixture
def serve(ct2_model):
    servers: list[TranscriptionServer] = []

    def start(**kwargs) -> TranscriptionServer:
        srv = TranscriptionServer(ct2_model, ServerConfig(**kwargs)).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def noise(seconds: float, seed: int = 0, amplitude: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SAMPLE_RATE_HZ)) * amplitude).astype(np.float32)


def engine(srv: TranscriptionServer, **kwargs) -> RemoteEngine:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("backoff_s", 0.01)
    return RemoteEngine(srv.base_url, "whisper-1", **kwargs)


@pytest.fixture(scope="module")
def speech_with_pauses(tmp_path_factory) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Six espeak-ng utterances with 0.8 s of silence between them; (audio, the gaps in samples)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt install espeak-ng)")
    out = tmp_path_factory.mktemp("speech")
    lines = ["the quick brown fox jumps over the lazy dog", "she sells sea shells by the sea shore",
             "a journey of a thousand miles begins with one step", "all that glitters is not gold",
             "the early bird catches the worm", "actions speak louder than words"]
    pieces, gaps, pos = [], [], 0
    gap = np.zeros(int(0.8 * SAMPLE_RATE_HZ), np.float32)
    for i, line in enumerate(lines):
        wav = out / f"{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), line], check=True)
        clip = decode(wav)
        pieces.append(clip)
        pos += clip.size
        if i < len(lines) - 1:
            pieces.append(gap)
            gaps.append((pos, pos + gap.size))
            pos += gap.size
    return np.concatenate(pieces), gaps


# -- round trip ---------------------------------------------------------------------------------

def test_round_trip_through_a_real_server(serve):
    srv = serve(api_key=KEY)
    audio = noise(4.0)
    eng = engine(srv)
    segments = eng.transcribe(audio, TranscribeOptions(language="en", temperature=0.0, word_timestamps=True,
                                                       initial_prompt="Dictation.", hotwords=("Kubernetes",)))
    assert len(srv.uploads) == 1
    up = srv.uploads[0]
    assert up.path == "/v1/audio/transcriptions"
    assert up.headers["Authorization"] == f"Bearer {KEY}"
    assert up.fields["model"] == ["whisper-1"]
    assert up.fields["response_format"] == ["verbose_json"]
    assert up.fields["language"] == ["en"]
    assert up.fields["timestamp_granularities[]"] == ["segment", "word"]
    assert up.fields["prompt"] == ["Kubernetes Dictation."]
    assert (up.filename, up.content_type) == ("audio.flac", "audio/flac")
    # FLAC is lossless: the server decoded what we recorded, to 16-bit precision, at half the size of WAV.
    assert up.audio is not None and up.audio.size == audio.size
    assert np.max(np.abs(up.audio - audio)) < 1e-4
    assert len(up.file_bytes) < audio.size * 2
    # The server's own answer, mapped to Segments and Words.
    assert segments, "the random-weight model always produces some text"
    assert all(0.0 <= s.start_s <= s.end_s <= 4.0 for s in segments)
    assert "".join(s.text for s in segments).strip()
    words = [w for s in segments for w in s.words]
    assert words and all(w.text.startswith(" ") for w in words)
    for s in segments:
        assert all(s.start_s - 0.05 <= (w.start_s + w.end_s) / 2 <= s.end_s + 0.05 for w in s.words)
        assert s.avg_logprob is not None and s.no_speech_prob is not None


def test_no_word_timestamps_unless_asked_and_translate_route(serve):
    srv = serve()
    eng = engine(srv, api_key=None)
    segments = eng.transcribe(noise(2.0), OPTS)
    assert segments and all(not s.words for s in segments)
    assert srv.uploads[0].fields["timestamp_granularities[]"] == ["segment"]
    assert "Authorization" not in srv.uploads[0].headers
    eng.transcribe(noise(2.0), TranscribeOptions(task="translate", temperature=0.0, language="de"))
    assert srv.uploads[1].path == "/v1/audio/translations"
    assert "language" not in srv.uploads[1].fields


def test_wav_upload_for_servers_that_only_read_wav(serve):
    srv = serve()
    audio = noise(1.0)
    engine(srv, upload_format="wav").transcribe(audio, OPTS)
    assert srv.uploads[0].filename == "audio.wav" and srv.uploads[0].file_bytes[:4] == b"RIFF"
    assert np.max(np.abs(srv.uploads[0].audio - audio)) < 1e-4


def test_building_the_engine_sends_nothing(serve):
    srv = serve()
    eng = engine(srv)
    assert srv.uploads == [] and eng.requests_sent == 0
    assert KEY not in repr(eng)


# -- misbehaving servers ------------------------------------------------------------------------

def test_rejected_key_is_one_line_and_never_shows_the_key(serve):
    srv = serve(api_key="sk-the-right-one-000000000000")
    with pytest.raises(RemoteError) as info:
        engine(srv).transcribe(noise(1.0), OPTS)
    message = str(info.value)
    assert "rejected the API key (HTTP 401)" in message and "dictate secrets set remote" in message
    assert "\n" not in message
    # The server quoted the key it was sent; none of it reaches the message.
    assert KEY not in message and KEY[3:20] not in message and KEY[-12:] not in message
    assert len(srv.uploads) == 1, "a rejected key is not retried"


def test_missing_key_says_how_to_add_one(serve):
    srv = serve(mode="401")
    with pytest.raises(RemoteError, match=r"wants an API key \(HTTP 401\).*dictate secrets set remote"):
        engine(srv, api_key=None).transcribe(noise(1.0), OPTS)


def test_rate_limited_then_served(serve):
    srv = serve(mode="429", fail_times=2)
    delays: list[float] = []
    segments = engine(srv, max_retries=3, sleep=delays.append).transcribe(noise(1.0), OPTS)
    assert segments
    assert len(srv.uploads) == 3
    assert delays == [0.0, 0.0]  # the server's Retry-After: 0 is honoured


def test_rate_limited_past_the_retries(serve):
    srv = serve(mode="429", fail_times=10)
    with pytest.raises(RemoteError, match=r"^rate-limited by the remote server \(HTTP 429\) after 1 retries"):
        engine(srv, max_retries=1, sleep=lambda s: None).transcribe(noise(1.0), OPTS)
    assert len(srv.uploads) == 2


def test_server_error_retried_with_growing_backoff_then_reported(serve):
    srv = serve(mode="500")
    delays: list[float] = []
    with pytest.raises(RemoteError) as info:
        engine(srv, max_retries=3, backoff_s=0.1, sleep=delays.append).transcribe(noise(1.0), OPTS)
    assert str(info.value) == ("remote server error (HTTP 500) after 3 retries: "
                               "internal error: the model fell over")
    assert len(srv.uploads) == 4
    assert len(delays) == 3 and delays[0] < delays[1] < delays[2]
    assert isinstance(info.value, EngineUnavailableError)  # a fallback engine may take over


def test_transient_503_then_served(serve):
    srv = serve(mode="500-then-ok", fail_times=1)
    assert engine(srv, sleep=lambda s: None).transcribe(noise(1.0), OPTS)
    assert len(srv.uploads) == 2


def test_slow_server_hits_the_read_timeout(serve):
    srv = serve(mode="slow", slow_s=3.0)
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match=r"did not answer within 0.5 s"):
        engine(srv, read_timeout_s=0.5).transcribe(noise(1.0), OPTS)
    assert time.monotonic() - t0 < 2.0


def test_unreachable_server_fails_fast():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    eng = RemoteEngine(f"http://127.0.0.1:{port}/v1", "whisper-1", max_retries=3)
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match=r"^remote server http://127.0.0.1:\d+/v1 unreachable \(Connection refused\)$"):
        eng.transcribe(noise(1.0), OPTS)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("mode, expected", [
    ("garbage", r"^bad response from the remote server: not JSON \('<html>"),
    ("garbage-json", r"^bad response from the remote server: a segment without text$"),
])
def test_garbage_answers(serve, mode, expected):
    srv = serve(mode=mode)
    with pytest.raises(RemoteError, match=expected):
        engine(srv).transcribe(noise(1.0), OPTS)


def test_plain_text_answer_becomes_one_segment(serve):
    srv = serve(mode="text-only")
    segments = engine(srv).transcribe(noise(1.5), OPTS)
    assert [(s.start_s, s.end_s, s.text) for s in segments] == [(0.0, 1.5, " plain text")]


def test_bad_base_url_is_a_config_error():
    from dictate.errors import ConfigError

    with pytest.raises(ConfigError, match="should look like http://host:port/v1"):
        RemoteEngine("localhost:8000", "whisper-1")


def test_words_in_their_own_list_go_to_their_segments():
    reply = json.dumps({"text": " a b c", "segments": [
        {"start": 0.0, "end": 1.0, "text": " a b"}, {"start": 1.0, "end": 2.0, "text": " c"}],
        "words": [{"word": "a", "start": 0.1, "end": 0.4}, {"word": "b", "start": 0.5, "end": 0.9},
                  {"word": "c", "start": 1.2, "end": 1.6}]}).encode()
    segs = parse_response(reply, 2.0)
    assert [[w.text for w in s.words] for s in segs] == [[" a", " b"], [" c"]]
    assert segs[1].words[0].start_s == 1.2


# -- long audio: split at pauses under the size limit -----------------------------------------

def test_cut_points_fall_in_pauses(speech_with_pauses):
    audio, gaps = speech_with_pauses
    max_samples = 8 * SAMPLE_RATE_HZ
    cuts = cut_points(audio, max_samples)
    assert cuts
    bounds = [0, *cuts, audio.size]
    assert all(b - a <= max_samples for a, b in zip(bounds, bounds[1:]))
    for c in cuts:
        assert any(g0 <= c <= g1 for g0, g1 in gaps), f"cut at {c / SAMPLE_RATE_HZ:.2f} s is not in a pause"
    pieces = split(audio, max_samples)
    assert np.array_equal(np.concatenate([p for _, p in pieces]), audio)


def test_cut_points_without_pauses_still_bound_the_length():
    audio = noise(20.0, amplitude=0.3)
    cuts = cut_points(audio, 6 * SAMPLE_RATE_HZ)
    bounds = [0, *cuts, audio.size]
    assert all(0 < b - a <= 6 * SAMPLE_RATE_HZ for a, b in zip(bounds, bounds[1:]))


def test_large_upload_split_at_pauses_round_trip(serve, speech_with_pauses):
    audio, gaps = speech_with_pauses
    whole = len(encode_audio(audio))
    limit = whole // 3
    srv = serve(max_upload_bytes=limit)  # the server enforces the limit too (413 above it)
    segments = engine(srv, max_upload_bytes=limit).transcribe(audio, OPTS)
    assert len(srv.uploads) >= 3
    assert all(len(u.file_bytes) <= limit for u in srv.uploads)
    # The uploads together are the recording: nothing lost, nothing sent twice.
    received = np.concatenate([u.audio for u in srv.uploads])
    assert received.size == audio.size and np.max(np.abs(received - audio)) < 1e-4
    # Every cut is in a pause between utterances, never inside one.
    offsets = np.cumsum([u.audio.size for u in srv.uploads])[:-1]
    for c in offsets:
        assert any(g0 <= c <= g1 for g0, g1 in gaps)
    # Segment times are in the whole recording's clock: later pieces start later.
    assert segments and segments[-1].start_s >= offsets[-1] / SAMPLE_RATE_HZ - 0.01
    assert all(a.start_s <= b.start_s + 1e-6 for a, b in zip(segments, segments[1:]))


def test_server_refusing_the_size_says_what_to_change(serve):
    srv = serve(max_upload_bytes=1000)
    with pytest.raises(RemoteError, match=r"too large \(HTTP 413\); lower \[remote\] max_upload_mb"):
        engine(srv).transcribe(noise(1.0), OPTS)


# -- through the CLI, key from the real Secret Service -----------------------------------------

def _files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def test_cli_remote_key_from_keyring_never_written_anywhere(serve, keyring_env, isolated_dirs, tmp_path, capsys):
    secrets.set(secrets.SecretKey.REMOTE, KEY)
    srv = serve(api_key=KEY)
    wav = write_audio(tmp_path / "in.wav", noise(2.0), SAMPLE_RATE_HZ)
    out_dir = isolated_dirs / "out"
    code = cli.main(["-vv", "transcribe", str(wav), "--engine", "remote", "--base-url", srv.base_url,
                     "--format", "json,txt", "--output-dir", str(out_dir), "--word-timestamps"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert srv.uploads[0].headers["Authorization"] == f"Bearer {KEY}"
    data = json.loads((out_dir / "in.json").read_text())
    assert data["segments"] and data["segments"][0]["text"]

    # Now a wrong key: the server quotes it back; the one-line error must not.
    secrets.set(secrets.SecretKey.REMOTE, KEY[::-1])
    code = cli.main(["-vv", "transcribe", str(wav), "--engine", "remote", "--base-url", srv.base_url])
    captured2 = capsys.readouterr()
    assert code == 1
    assert "rejected the API key (HTTP 401)" in captured2.err

    written = _files_under(isolated_dirs)
    logs = [p for p in written if p.suffix == ".log"]
    assert logs and any("remote" in p.read_text() for p in logs), "the log was written, so the scan means something"
    for secret in (KEY, KEY[::-1]):
        for text in (captured.out, captured.err, captured2.out, captured2.err):
            assert secret not in text and secret[8:24] not in text
        for path in written:
            blob = path.read_bytes()
            assert secret.encode() not in blob and secret[8:24].encode() not in blob, path


def test_from_config_reads_the_keyring(keyring_env):
    from dictate import config

    secrets.set(secrets.SecretKey.REMOTE, KEY)
    cfg = config.load()
    cfg.remote.base_url = "http://127.0.0.1:9/v1"
    cfg.remote.model = "large-v3"
    eng = create_engine("remote", cfg)
    assert isinstance(eng, RemoteEngine) and eng.model == "large-v3" and eng._api_key == KEY
    assert eng.max_upload_bytes == int(cfg.remote.max_upload_mb * 1_000_000)
    assert create_engine("remote", cfg, model="small").model == "small"
