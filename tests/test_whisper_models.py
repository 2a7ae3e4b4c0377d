"""The offline random-weight Whisper models load and run in both real engines."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.support.whisper_models import (
    CACHE_DIR_ENV,
    FASTER_WHISPER_BOUNDED,
    MICRO,
    TINY,
    WHISPER_CPP_BOUNDED,
    ModelDims,
    build_ct2_model,
    build_ggml_model,
    cached_ct2_model,
    cached_ggml_model,
    random_state_dict,
    vocabulary,
)

SAMPLE_RATE = 16000
DURATION = 3.0
MAX_NEW_TOKENS = 16
MAX_TOKENS = 8


def noise(seconds: float = DURATION, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def faster_whisper_micro():
    from faster_whisper import WhisperModel

    return WhisperModel(str(cached_ct2_model(MICRO)), device="cpu", compute_type="int8", cpu_threads=2)


@pytest.fixture(scope="module")
def whisper_cpp_micro():
    from pywhispercpp.model import Model

    # redirect_whispercpp_logs_to=None silences the (long) load log.
    return Model(str(cached_ggml_model(MICRO)), redirect_whispercpp_logs_to=None, n_threads=2, print_progress=False)


def _fw_kwargs(**overrides: object) -> dict[str, object]:
    return {**FASTER_WHISPER_BOUNDED, "max_new_tokens": MAX_NEW_TOKENS, **overrides}


def test_faster_whisper_transcribes_with_bounded_tokens(faster_whisper_micro) -> None:
    model = faster_whisper_micro
    assert model.model.is_multilingual
    segments, info = model.transcribe(noise(), language="en", **_fw_kwargs())
    segments = list(segments)  # transcribe() is lazy
    assert info.language == "en"
    assert info.duration == pytest.approx(DURATION)
    assert segments, "random weights always decode some tokens"
    for segment in segments:
        assert isinstance(segment.start, float) and isinstance(segment.end, float)
        assert 0.0 <= segment.start <= segment.end <= DURATION + 0.01
        assert segment.text.strip()
        assert math.isfinite(segment.avg_logprob)
        assert 0.0 <= segment.no_speech_prob <= 1.0
    # CTranslate2 stops at (prompt length + max_new_tokens) / 2 generated tokens.
    assert sum(len(s.tokens) for s in segments) <= MAX_NEW_TOKENS


def test_faster_whisper_word_timestamps(faster_whisper_micro) -> None:
    segments, _ = faster_whisper_micro.transcribe(noise(), language="en", word_timestamps=True, **_fw_kwargs())
    words = [word for segment in segments for word in segment.words]
    assert words
    for word in words:
        assert word.word.strip()
        assert 0.0 <= word.start <= word.end <= DURATION + 0.01
        assert 0.0 <= word.probability <= 1.0


def test_faster_whisper_detects_language(faster_whisper_micro) -> None:
    model = faster_whisper_micro
    segments, info = model.transcribe(noise(), language=None, **_fw_kwargs())
    list(segments)
    assert info.language in model.supported_languages
    assert 0.0 < info.language_probability <= 1.0
    assert len(info.all_language_probs) == 99


def test_faster_whisper_output_depends_on_audio(faster_whisper_micro) -> None:
    # Lets downstream tests tell chunks apart: silence and noise decode differently.
    texts = set()
    for audio in (noise(), np.zeros(int(DURATION * SAMPLE_RATE), np.float32)):
        segments, _ = faster_whisper_micro.transcribe(audio, language="en", without_timestamps=True, **_fw_kwargs())
        texts.add(" ".join(s.text for s in segments))
    assert len(texts) == 2


def test_whisper_cpp_transcribes_with_bounded_tokens(whisper_cpp_micro) -> None:
    params = {**WHISPER_CPP_BOUNDED, "max_tokens": MAX_TOKENS}
    segments = whisper_cpp_micro.transcribe(noise(), language="en", **params)
    assert len(segments) == 1  # single_segment
    for segment in segments:
        assert isinstance(segment.t0, int) and isinstance(segment.t1, int)
        # Centiseconds. Random timestamp tokens may end a segment past the audio.
        assert 0 <= segment.t0 <= segment.t1
        assert segment.text
        # Each pseudo-word is one token; whisper.cpp decodes max_tokens + 1 of them.
        assert len(segment.text.split()) <= MAX_TOKENS + 1


def test_whisper_cpp_auto_language(whisper_cpp_micro) -> None:
    import _pywhispercpp as pw

    whisper_cpp_micro.transcribe(noise(), language="auto", **WHISPER_CPP_BOUNDED)
    assert pw.whisper_is_multilingual(whisper_cpp_micro._ctx)
    assert pw.whisper_full_lang_id(whisper_cpp_micro._ctx) >= 0


def test_tiny_builds_loads_and_runs(tmp_path: Path) -> None:
    from faster_whisper import WhisperModel
    from pywhispercpp.model import Model

    ct2_dir = build_ct2_model(tmp_path / "ct2-tiny", TINY)
    ggml_file = build_ggml_model(tmp_path / "ggml-tiny.bin", TINY)

    fw = WhisperModel(str(ct2_dir), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = fw.transcribe(noise(), language="en", **_fw_kwargs(max_new_tokens=6))
    assert list(segments)

    wcpp = Model(str(ggml_file), redirect_whispercpp_logs_to=None, n_threads=2, print_progress=False)
    assert wcpp.transcribe(noise(), language="en", **{**WHISPER_CPP_BOUNDED, "max_tokens": 2})


def test_same_seed_same_weights_for_both_formats() -> None:
    a, b, c = random_state_dict(MICRO, 0), random_state_dict(MICRO, 0), random_state_dict(MICRO, 1)
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["decoder.token_embedding.weight"], c["decoder.token_embedding.weight"])
    assert all(np.isfinite(v).all() for v in a.values())


def test_vocabulary_matches_real_multilingual_layout() -> None:
    tokens = vocabulary(MICRO)
    assert len(tokens) == 51865
    assert tokens[220] == "Ġ"  # GPT-2 byte token for " "
    assert tokens[50256] == ""  # CTranslate2 needs it to call the model multilingual
    assert tokens[50257:50260] == ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"]
    assert tokens[50358:50365] == [
        "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
        "<|nocaptions|>", "<|notimestamps|>", "<|0.00|>",
    ]
    assert tokens[-1] == "<|30.00|>"


def test_dims_are_validated() -> None:
    with pytest.raises(ValueError):
        ModelDims(80, 1500, 64, 2, 1, 448, 64, 2, 1, 51864)  # English-only vocabulary


def test_cache_is_atomic_under_concurrent_builders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    with ThreadPoolExecutor(max_workers=3) as pool:
        ggml = set(pool.map(lambda _: cached_ggml_model(MICRO, seed=7), range(3)))
        ct2 = set(pool.map(lambda _: cached_ct2_model(MICRO, seed=7), range(3)))
    assert len(ggml) == 1 and len(ct2) == 1
    (ggml_file,), (ct2_dir,) = ggml, ct2
    assert ggml_file.is_file() and (ct2_dir / "model.bin").is_file() and (ct2_dir / "tokenizer.json").is_file()
    assert sorted(os.listdir(tmp_path)) == sorted([ggml_file.name, ct2_dir.name])  # no temp leftovers

    mtime = ggml_file.stat().st_mtime_ns
    assert cached_ggml_model(MICRO, seed=7) == ggml_file
    assert ggml_file.stat().st_mtime_ns == mtime  # reused, not rebuilt
