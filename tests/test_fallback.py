"""The fallback chain: scripted engines for the logic, then the real CLI with a remote engine whose
server is down (or failing) and faster-whisper on the random-weight model taking over."""

from __future__ import annotations

import argparse
import json
import logging
import socket

import numpy as np
import pytest

from dictate import cli
from dictate.commands.common import engine_chain, make_engine
from dictate.config import Config
from dictate.engines.fallback import Candidate, EngineUnavailableError, FallbackEngine
from dictate.errors import AudioDecodeError, EngineError, ModelError
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions
from tests.support.http_server import ServerConfig, TranscriptionServer
from tests.support.media import tone, write_audio
from tests.support.tone_engine import ToneEngine

OPTS = TranscribeOptions(temperature=0.0, max_new_tokens=4)


class Down:
    """An engine whose server is down."""

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio, options):
        self.calls += 1
        raise EngineUnavailableError("remote server http://127.0.0.1:9/v1 unreachable (Connection refused)")


class Flaky:
    """Delivers the first `good` seconds as segments, then its server goes away."""

    def __init__(self, good: int) -> None:
        self.good = good

    def transcribe_iter(self, audio, options):
        for i in range(self.good):
            yield Segment(float(i), float(i + 1), f" part{i}")
        raise EngineUnavailableError("connection lost")

    def transcribe(self, audio, options):
        return list(self.transcribe_iter(audio, options))


def tones(*freqs: int) -> np.ndarray:
    return np.concatenate([tone(f, 1.0, SAMPLE_RATE_HZ) for f in freqs])


def test_next_engine_takes_the_job_and_the_user_is_told_once(caplog):
    down, local = Down(), ToneEngine()
    notices: list[str] = []
    chain = FallbackEngine([("remote", lambda: down), ("tone", lambda: local)], notice=notices.append)
    with caplog.at_level(logging.WARNING, logger="dictate.engines.fallback"):
        for _ in range(3):
            assert [s.text for s in chain.transcribe(tones(440, 880), OPTS)] == [" 440 Hz", " 880 Hz"]
    assert notices == ["remote is unavailable (remote server http://127.0.0.1:9/v1 unreachable "
                       "(Connection refused)); using tone instead"]
    assert [r.getMessage() for r in caplog.records] == notices
    assert down.calls == 1, "once down, the chain stays on the next engine"
    assert chain.active_name == "tone" and local.calls == 3


def test_preferred_engine_is_tried_again_after_a_while():
    down, local = Down(), ToneEngine()
    chain = FallbackEngine([("remote", lambda: down), ("tone", lambda: local)], retry_after_s=0.0)
    chain.transcribe(tones(440), OPTS)
    chain.transcribe(tones(440), OPTS)
    assert down.calls == 2
    down.transcribe = lambda audio, options: [Segment(0.0, 1.0, " back")]  # the server is back
    assert [s.text for s in chain.transcribe(tones(440), OPTS)] == [" back"]
    assert chain.active_name == "remote"


def test_engine_that_cannot_be_built_is_skipped():
    def missing():
        raise ModelError("model 'large-v3' is not downloaded")

    notices: list[str] = []
    chain = FallbackEngine([("faster-whisper", missing), ("tone", ToneEngine)], notice=notices.append)
    assert chain.transcribe(tones(440), OPTS)[0].text == " 440 Hz"
    assert notices == ["faster-whisper is unavailable (model 'large-v3' is not downloaded); using tone instead"]


def test_failure_half_way_resumes_after_the_last_delivered_segment():
    chain = FallbackEngine([("remote", lambda: Flaky(good=2)), ("tone", ToneEngine)])
    segs = chain.transcribe(tones(440, 550, 660, 770), OPTS)
    # Seconds 0-1 came from the first engine; the second resumed at 2 s, with times in the whole clock.
    assert [(s.start_s, s.end_s, s.text) for s in segs] == [
        (0.0, 1.0, " part0"), (1.0, 2.0, " part1"), (2.0, 3.0, " 660 Hz"), (3.0, 4.0, " 770 Hz")]


def test_other_errors_are_not_hidden_by_the_chain():
    class Broken:
        def transcribe(self, audio, options):
            raise EngineError("faster-whisper failed: out of memory")

    chain = FallbackEngine([("faster-whisper", Broken), ("tone", ToneEngine)])
    with pytest.raises(EngineError, match="out of memory"):
        chain.transcribe(tones(440), OPTS)

    class BadAudio:
        def transcribe(self, audio, options):
            raise AudioDecodeError("x.wav: the file is empty")

    with pytest.raises(AudioDecodeError):
        FallbackEngine([("a", BadAudio), ("tone", ToneEngine)]).transcribe(tones(440), OPTS)


def test_all_down_is_one_clear_error():
    chain = FallbackEngine([Candidate("remote", Down), Candidate("other", Down)])
    with pytest.raises(EngineError, match=r"^no engine could take the job \(tried remote, other\); last: remote server"):
        chain.transcribe(tones(440), OPTS)


def test_engine_chain_from_config_and_arguments():
    cfg = Config()
    assert engine_chain(argparse.Namespace(engine=None), cfg) == ["faster-whisper"]
    cfg.engine.fallback = ["remote", "faster-whisper"]
    assert engine_chain(argparse.Namespace(engine=None), cfg) == ["remote", "faster-whisper"]
    # An explicit engine is exactly that engine: a local engine never falls back to a server unasked.
    assert engine_chain(argparse.Namespace(engine="faster-whisper"), cfg) == ["faster-whisper"]
    cfg.engine.name, cfg.engine.fallback = "remote", ["whisper.cpp", "remote"]
    assert engine_chain(argparse.Namespace(engine=None), cfg) == ["whisper.cpp", "remote"]
    cfg.engine.fallback = ["faster-whisper"]
    assert engine_chain(argparse.Namespace(engine=None), cfg) == ["remote", "faster-whisper"]
    assert isinstance(make_engine(argparse.Namespace(engine=None, model=None), cfg), FallbackEngine)


# -- the real thing: remote down, faster-whisper on the test model takes over --------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(isolated_dirs, base_url: str, model) -> None:
    cfg_dir = isolated_dirs / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / "config.toml").write_text(
        f'[engine]\nfallback = ["remote", "faster-whisper"]\nmodel = "{model}"\n'
        f'[remote]\nbase_url = "{base_url}"\nmax_retries = 1\n', encoding="utf-8")


@pytest.mark.parametrize("how", ["unreachable", "server-error"])
def test_cli_remote_down_faster_whisper_takes_over(how, isolated_dirs, ct2_model, tmp_path, capsys):
    server = None
    if how == "unreachable":
        base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    else:
        server = TranscriptionServer(None, ServerConfig(mode="500")).start()
        base_url = server.base_url
    try:
        _write_config(isolated_dirs, base_url, ct2_model)
        files = [write_audio(tmp_path / f"{i}.wav", tones(440, 660), SAMPLE_RATE_HZ) for i in range(2)]
        code = cli.main(["transcribe", *map(str, files), "--max-new-tokens", "4", "--format", "json",
                         "--no-vad"])
    finally:
        if server is not None:
            server.stop()
    out = capsys.readouterr()
    assert code == 0, out.err
    told = [line for line in out.err.splitlines() if "remote is unavailable" in line]
    assert len(told) == 1, out.err  # two files, one notice
    assert told[0].endswith("; using faster-whisper instead")
    assert ("unreachable (Connection refused)" if how == "unreachable" else "HTTP 500") in told[0]
    docs = [json.loads(chunk) for chunk in out.out.replace("}\n{", "}\n\x00{").split("\x00")]
    assert len(docs) == 2 and all(d["segments"] for d in docs)
    if server is not None:
        assert len(server.uploads) == 2, "one try and one retry, then the chain stayed on faster-whisper"
