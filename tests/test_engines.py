"""Conformance: every backend goes through the same checks. The real engines run real inference
on random-weight models built locally (they decode gibberish, so output length is bounded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dictate.config import Config, Paths
from dictate.engines import Engine, create_engine
from dictate.errors import EngineError, ModelError
from dictate.types import Segment, TranscribeOptions
from tests.support.media import tone
from tests.support.tone_engine import ToneEngine

ENGINES = ["faster-whisper", "whisper.cpp", "scripted", "module:attribute"]
DURATION_S = 3.0


def _config(model: Path | None = None) -> Config:
    cfg = Config(paths=Paths.default())
    if model is not None:
        cfg.engine.model = str(model)
    cfg.engine.threads = 2
    return cfg


@pytest.fixture(scope="module")
def engines(ct2_model: Path, ggml_model: Path) -> dict[str, Engine]:
    return {
        "faster-whisper": create_engine("faster-whisper", _config(ct2_model)),
        "whisper.cpp": create_engine("whisper.cpp", _config(ggml_model)),
        "scripted": ToneEngine(),
        "module:attribute": create_engine("tests.support.tone_engine:make", _config()),
    }


def _audio() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (tone(440, DURATION_S, 16_000, 0.3) + rng.normal(0, 0.02, int(DURATION_S * 16_000))).astype(np.float32)


OPTIONS = TranscribeOptions(language="en", temperature=0.0, max_new_tokens=12, word_timestamps=True)


@pytest.mark.parametrize("name", ENGINES)
def test_segments_are_well_formed(engines: dict[str, Engine], name: str) -> None:
    segments = engines[name].transcribe(_audio(), OPTIONS)
    assert isinstance(segments, list) and segments, "non-silent audio gives at least one segment"
    previous_start = 0.0
    for seg in segments:
        assert isinstance(seg, Segment) and isinstance(seg.text, str)
        assert 0.0 <= seg.start_s <= seg.end_s <= DURATION_S
        assert seg.start_s >= previous_start - 1e-6
        previous_start = seg.start_s
        for word in seg.words:
            assert 0.0 <= word.start_s <= word.end_s <= DURATION_S
            assert 0.0 <= word.probability <= 1.0
    words = [w for s in segments for w in s.words]
    assert words, "word_timestamps=True gives words"
    assert "".join(w.text for w in words).split() == " ".join(s.text for s in segments).split()


@pytest.mark.parametrize("name", ENGINES)
def test_deterministic_at_temperature_zero(engines: dict[str, Engine], name: str) -> None:
    first = engines[name].transcribe(_audio(), OPTIONS)
    second = engines[name].transcribe(_audio(), OPTIONS)
    assert [s.text for s in first] == [s.text for s in second]


@pytest.mark.parametrize("name", ENGINES)
def test_empty_audio_gives_no_segments(engines: dict[str, Engine], name: str) -> None:
    assert engines[name].transcribe(np.zeros(0, dtype=np.float32), OPTIONS) == []


@pytest.mark.parametrize("name", ENGINES)
def test_float64_is_accepted_and_2d_is_refused(engines: dict[str, Engine], name: str) -> None:
    assert engines[name].transcribe(_audio().astype(np.float64), OPTIONS)
    with pytest.raises(EngineError):
        engines[name].transcribe(np.zeros((2, 16_000), dtype=np.float32), OPTIONS)


@pytest.mark.parametrize("name", ENGINES)
def test_prompt_hotwords_beam_and_detection(engines: dict[str, Engine], name: str) -> None:
    options = TranscribeOptions(language=None, beam_size=2, initial_prompt="Meeting notes.", hotwords=("Kubernetes",),
                                temperature=0.0, max_new_tokens=8)
    segments = engines[name].transcribe(_audio(), options)
    assert all(isinstance(s, Segment) for s in segments)


def test_real_engines_report_whisper_confidence(engines: dict[str, Engine]) -> None:
    seg = engines["faster-whisper"].transcribe(_audio(), OPTIONS)[0]
    assert seg.no_speech_prob is not None and 0.0 <= seg.no_speech_prob <= 1.0
    assert seg.avg_logprob is not None and seg.avg_logprob <= 0.0
    assert seg.compression_ratio is not None and seg.compression_ratio > 0
    assert engines["whisper.cpp"].transcribe(_audio(), OPTIONS)[0].avg_logprob is not None


def test_batched_pipeline_on_a_long_file(engines: dict[str, Engine]) -> None:
    audio = np.tile(_audio(), 25)  # 75 s: three 30 s windows decoded as one batch
    options = TranscribeOptions(language="en", temperature=0.0, max_new_tokens=6, batch_size=4)
    segments = engines["faster-whisper"].transcribe(audio, options)
    assert segments and max(s.end_s for s in segments) > 30.0
    assert all(0 <= s.start_s <= s.end_s <= 75.0 for s in segments)


def test_scripted_engine_sees_what_it_was_given(engines: dict[str, Engine]) -> None:
    audio = np.concatenate([tone(440, 1.0, 16_000), np.zeros(16_000, np.float32), tone(880, 1.0, 16_000)])
    segments = engines["scripted"].transcribe(audio, OPTIONS)
    assert [(s.start_s, s.end_s, s.text) for s in segments] == [(0.0, 1.0, " 440 Hz"), (2.0, 3.0, " 880 Hz")]


@pytest.mark.parametrize("spec,message", [
    ("nosuchmodule_xyz:make", "cannot import"),
    ("tests.support.tone_engine:nothing", "has no attribute"),
    ("tests.support.tone_engine:SILENCE_RMS", "not callable"),
    ("dictate.config:Paths.default", "no transcribe()"),
    ("just-a-name", "module:attribute"),
])
def test_bad_engine_specs_are_clear(spec: str, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        create_engine(spec, _config())


def test_model_of_the_wrong_kind_is_refused(ct2_model: Path, ggml_model: Path) -> None:
    with pytest.raises(ModelError, match="--engine whisper.cpp"):
        create_engine("faster-whisper", _config(ggml_model))
    with pytest.raises(ModelError, match="--engine faster-whisper"):
        create_engine("whisper.cpp", _config(ct2_model))
