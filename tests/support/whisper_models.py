"""Build small Whisper models with random weights for tests, fully offline.

The real engines (faster-whisper / CTranslate2 and whisper.cpp via pywhispercpp)
can only be exercised with a real model file, and nothing can be downloaded on
the test machines. This module writes such models from scratch:

* ``build_ct2_model`` -> a CTranslate2 Whisper directory (``model.bin``,
  ``config.json``, ``vocabulary.json``, ``tokenizer.json``,
  ``preprocessor_config.json``) that ``faster_whisper.WhisperModel`` loads.
* ``build_ggml_model`` -> a legacy ggml ``.bin`` (the format of whisper.cpp's
  ``models/convert-pt-to-ggml.py``) that ``pywhispercpp.model.Model`` loads.

Both builders draw the same random weights for a given ``(dims, seed)``, keyed
by the openai-whisper ``state_dict`` names, so the two engines run the same
network (up to int8 / f16 rounding).

The token-id layout reproduces the real multilingual vocabulary (``<|endoftext|>``
= 50257, ``<|startoftranscript|>`` = 50258, languages from 50259, timestamps from
50364) because both engines hard-code or derive these ids from the vocabulary
size. The 50257 "text" tokens are the 256 GPT-2 byte tokens plus made-up
pseudo-words, so any text can be encoded (byte-level BPE without merges) and
decoded output reads like words.

Random weights decode garbage until a token limit: callers must bound the
output: pass ``FASTER_WHISPER_BOUNDED`` / ``WHISPER_CPP_BOUNDED`` (below) to the
engines' transcribe calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Mapping, Optional

import numpy as np

from dictate.engines.convert import WhisperDims, bytes_to_unicode, token_bytes, write_ggml

logger = logging.getLogger(__name__)

# Bumped whenever the bytes written for the same (dims, seed) change, so stale
# cache entries are never reused.
FORMAT_VERSION = 2

# Decoding options that keep random-weight decoding short: such a model never
# emits <|endoftext|>, so each 30 s window runs to the token limit, and the
# temperature fallback (on by default in both engines) would retry every window.
# faster-whisper: WhisperModel.transcribe(audio, **FASTER_WHISPER_BOUNDED). CTranslate2
# decodes about (prompt length + max_new_tokens) / 2 tokens per window.
FASTER_WHISPER_BOUNDED: Mapping[str, Any] = MappingProxyType(
    {"beam_size": 1, "temperature": 0.0, "max_new_tokens": 16, "condition_on_previous_text": False}
)
# pywhispercpp: Model(path, **WHISPER_CPP_BOUNDED) or model.transcribe(audio, **WHISPER_CPP_BOUNDED).
# max_tokens caps tokens per segment (whisper.cpp stops at index >= max_tokens, so
# max_tokens + 1 tokens); single_segment makes it one decode per 30 s window instead of
# re-seeking to every (random) timestamp; temperature_inc=0 disables the fallback retries.
WHISPER_CPP_BOUNDED: Mapping[str, Any] = MappingProxyType(
    {"max_tokens": 16, "single_segment": True, "temperature_inc": 0.0, "no_context": True, "print_progress": False}
)

# Cache directory for cached_*_model(); override with DICTATE_TEST_MODELS_DIR.
_DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / ".models"
CACHE_DIR_ENV = "DICTATE_TEST_MODELS_DIR"

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30

# Number of text (BPE) tokens in the real multilingual vocabulary: ids 0..50256.
N_TEXT_TOKENS = 50257
# Whisper's language order (the order of the <|xx|> tokens); "yue" only exists
# in the 51866-token vocabulary of large-v3.
LANGUAGES: tuple[str, ...] = (
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl",
    "ar", "sv", "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro",
    "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy",
    "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu",
    "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km",
    "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo",
    "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg",
    "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
)


@dataclass(frozen=True)
class ModelDims(WhisperDims):
    """The product's Whisper hyper-parameters, limited to what the random-weight builders support."""

    def __post_init__(self) -> None:
        # Both engines hard-code these; anything else cannot load.
        if self.n_audio_ctx != 1500:
            raise ValueError("n_audio_ctx must be 1500 (30 s of audio)")
        if self.n_text_ctx != 448:
            raise ValueError("n_text_ctx must be 448")
        if self.n_vocab not in (51865, 51866):
            raise ValueError("only multilingual vocabularies (51865, 51866) are supported")
        if self.n_audio_state != self.n_text_state:
            raise ValueError("whisper.cpp requires n_audio_state == n_text_state")
        if self.n_audio_state % self.n_audio_head or self.n_text_state % self.n_text_head:
            raise ValueError("state size must be divisible by the head count")
        if self.n_mels not in (80, 128):
            raise ValueError("n_mels must be 80 or 128")

    @property
    def n_languages(self) -> int:
        return self.n_vocab - 51765 - 1

    @property
    def key(self) -> str:
        """Readable, collision-safe identifier used in cache paths."""
        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]
        return (
            f"m{self.n_mels}-a{self.n_audio_state}x{self.n_audio_head}x{self.n_audio_layer}"
            f"-t{self.n_text_state}x{self.n_text_head}x{self.n_text_layer}-v{self.n_vocab}-{digest}"
        )


# Tiny enough to build, load and run in well under a second. One decoder layer:
# whisper.cpp treats exactly 2 decoder layers as distil-whisper (forces no timestamps).
MICRO = ModelDims(
    n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
    n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=1, n_vocab=51865,
)
# The real openai "tiny" and "base" shapes, for realistic load/latency figures.
TINY = ModelDims(
    n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
    n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4, n_vocab=51865,
)
BASE = ModelDims(
    n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6,
    n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6, n_vocab=51865,
)


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of Whisper's special tokens for a multilingual vocabulary."""

    eot: int
    sot: int
    languages: tuple[int, ...]
    translate: int
    transcribe: int
    sot_lm: int
    sot_prev: int
    no_speech: int
    no_timestamps: int
    timestamp_begin: int

    @classmethod
    def for_dims(cls, dims: ModelDims) -> "SpecialTokens":
        sot = N_TEXT_TOKENS + 1
        n_lang = dims.n_languages
        after = sot + 1 + n_lang
        return cls(
            eot=N_TEXT_TOKENS,
            sot=sot,
            languages=tuple(range(sot + 1, sot + 1 + n_lang)),
            translate=after,
            transcribe=after + 1,
            sot_lm=after + 2,
            sot_prev=after + 3,
            no_speech=after + 4,
            no_timestamps=after + 5,
            timestamp_begin=after + 6,
        )


def _pseudo_words(count: int) -> list[str]:
    """Distinct pronounceable words, so random decodes read like (nonsense) text."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]  # 70
    n = len(syllables)
    words = []
    for k in range(count):
        word = syllables[k % n] + syllables[(k // n) % n]
        if k >= n * n:
            word += syllables[k // (n * n)]
        words.append(word)
    return words


def text_token_strings() -> list[str]:
    """The 50257 byte-level BPE token strings for ids 0..50256.

    Ids 0..255 are GPT-2's byte tokens in GPT-2's order (so id 220 is the space
    "Ġ", as in real Whisper), then " <pseudo-word>" tokens, and id 50256 is the
    empty token of the real multilingual vocabulary.
    """
    byte_tokens = list(bytes_to_unicode().values())
    space = bytes_to_unicode()[ord(" ")]
    words = [space + w for w in _pseudo_words(N_TEXT_TOKENS - len(byte_tokens) - 1)]
    # The real multilingual vocabulary has an empty token at id 50256, and
    # CTranslate2 (checked with 4.8.5) only reports is_multilingual when it is there.
    tokens = byte_tokens + words + [""]
    assert len(set(tokens)) == N_TEXT_TOKENS
    return tokens


def special_token_strings(dims: ModelDims) -> list[str]:
    """Token strings for ids 50257..n_vocab-1, in Whisper's order."""
    langs = LANGUAGES[: dims.n_languages]
    n_timestamps = dims.n_vocab - (N_TEXT_TOKENS + 2 + len(langs) + 6)
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{lang}|>" for lang in langs],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
        *[f"<|{i * 0.02:.2f}|>" for i in range(n_timestamps)],
    ]


def vocabulary(dims: ModelDims) -> list[str]:
    """All n_vocab token strings, index == token id."""
    tokens = text_token_strings() + special_token_strings(dims)
    assert len(tokens) == dims.n_vocab
    return tokens


def _write_tokenizer_json(path: Path, dims: ModelDims) -> None:
    """A HF ``tokenizers`` byte-level BPE without merges over our vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    text_tokens = text_token_strings()
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(text_tokens)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = special_token_strings(dims)
    # Added tokens get consecutive ids after the model vocabulary: 50257, 50258, ...
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    for i, token in enumerate(specials):
        assert tokenizer.token_to_id(token) == N_TEXT_TOKENS + i, token
    tokenizer.save(str(path))


def _write_preprocessor_config(path: Path, dims: ModelDims) -> None:
    # faster-whisper reads the mel count (feature_size) from this file.
    config = {
        "chunk_length": CHUNK_LENGTH,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": dims.n_mels,
        "hop_length": HOP_LENGTH,
        "n_fft": N_FFT,
        "n_samples": CHUNK_LENGTH * SAMPLE_RATE,
        "nb_max_frames": CHUNK_LENGTH * SAMPLE_RATE // HOP_LENGTH,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": SAMPLE_RATE,
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- weights


def _sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """openai-whisper's fixed encoder positional embedding."""
    log_increment = np.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = np.exp(-log_increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def random_state_dict(dims: ModelDims, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights under openai-whisper ``state_dict`` names.

    Fan-in scaled normals keep activations finite; layer-norm gammas are 1.
    The token embedding (tied to the output projection) gives text tokens a
    much larger scale than special tokens so greedy decoding emits text rather
    than a stream of timestamps (the timestamp rules pick a timestamp whenever
    their summed probability beats the best text token).
    """
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}

    def normal(*shape: int, std: float) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def block(prefix: str, n_state: int, cross: bool) -> None:
        # (name, query gain, output gain). Cross-attention is sharpened and amplified
        # so the (mostly padded) audio visibly changes the decoded text.
        attns = [("attn", 1.0, 0.5)] + ([("cross_attn", 4.0, 4.0)] if cross else [])
        for attn, q_gain, out_gain in attns:
            sd[f"{prefix}.{attn}.query.weight"] = normal(n_state, n_state, std=q_gain * n_state**-0.5)
            sd[f"{prefix}.{attn}.query.bias"] = zeros(n_state)
            sd[f"{prefix}.{attn}.key.weight"] = normal(n_state, n_state, std=n_state**-0.5)
            sd[f"{prefix}.{attn}.value.weight"] = normal(n_state, n_state, std=n_state**-0.5)
            sd[f"{prefix}.{attn}.value.bias"] = zeros(n_state)
            sd[f"{prefix}.{attn}.out.weight"] = normal(n_state, n_state, std=out_gain * n_state**-0.5)
            sd[f"{prefix}.{attn}.out.bias"] = zeros(n_state)
            sd[f"{prefix}.{attn}_ln.weight"] = ones(n_state)
            sd[f"{prefix}.{attn}_ln.bias"] = zeros(n_state)
        sd[f"{prefix}.mlp.0.weight"] = normal(4 * n_state, n_state, std=n_state**-0.5)
        sd[f"{prefix}.mlp.0.bias"] = zeros(4 * n_state)
        sd[f"{prefix}.mlp.2.weight"] = normal(n_state, 4 * n_state, std=0.5 * (4 * n_state) ** -0.5)
        sd[f"{prefix}.mlp.2.bias"] = zeros(n_state)
        sd[f"{prefix}.mlp_ln.weight"] = ones(n_state)
        sd[f"{prefix}.mlp_ln.bias"] = zeros(n_state)

    a = dims.n_audio_state
    # Gain 3 on the convolutions: audio features must not drown in the positional embedding.
    sd["encoder.conv1.weight"] = normal(a, dims.n_mels, 3, std=3.0 * (3 * dims.n_mels) ** -0.5)
    sd["encoder.conv1.bias"] = zeros(a)
    sd["encoder.conv2.weight"] = normal(a, a, 3, std=3.0 * (3 * a) ** -0.5)
    sd["encoder.conv2.bias"] = zeros(a)
    sd["encoder.positional_embedding"] = _sinusoids(dims.n_audio_ctx, a)
    for i in range(dims.n_audio_layer):
        block(f"encoder.blocks.{i}", a, cross=False)
    sd["encoder.ln_post.weight"] = ones(a)
    sd["encoder.ln_post.bias"] = zeros(a)

    t = dims.n_text_state
    # Logit std of a text token is ~3 (layer-normed input has norm sqrt(t)); special
    # tokens get a tenth of that.
    embedding = normal(dims.n_vocab, t, std=3.0 * t**-0.5)
    embedding[N_TEXT_TOKENS:] *= np.float32(0.1)
    sd["decoder.token_embedding.weight"] = embedding
    # A strong positional signal keeps greedy decoding from looping on one token
    # (with tied embeddings the input token otherwise predicts itself).
    sd["decoder.positional_embedding"] = normal(dims.n_text_ctx, t, std=2.0)
    for i in range(dims.n_text_layer):
        block(f"decoder.blocks.{i}", t, cross=True)
    sd["decoder.ln.weight"] = ones(t)
    sd["decoder.ln.bias"] = zeros(t)
    return sd


# --------------------------------------------------------------------------- ggml (whisper.cpp)


def _write_ggml(f: BinaryIO, dims: ModelDims, weights: dict[str, np.ndarray]) -> None:
    """Serialise with the product's ggml writer (f16), over the made-up vocabulary."""
    write_ggml(f, dims, weights, token_bytes(text_token_strings()), dtype="f16")


def build_ggml_model(out_file: Path, dims: ModelDims = MICRO, seed: int = 0) -> Path:
    """Write a whisper.cpp ggml model with random weights to ``out_file``."""
    out_file = Path(out_file)
    start = time.perf_counter()
    weights = random_state_dict(dims, seed)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "wb") as f:
        _write_ggml(f, dims, weights)
    logger.info("built ggml model %s in %.2f s", out_file, time.perf_counter() - start)
    return out_file


# --------------------------------------------------------------------------- CTranslate2 (faster-whisper)


def _ct2_spec(dims: ModelDims, weights: dict[str, np.ndarray]):  # -> ctranslate2.specs.WhisperSpec
    """Fill a WhisperSpec the way ctranslate2's transformers WhisperLoader does."""
    from ctranslate2.specs import common_spec, whisper_spec

    spec = whisper_spec.WhisperSpec(dims.n_audio_layer, dims.n_audio_head, dims.n_text_layer, dims.n_text_head)
    w = weights

    def linear(target: common_spec.LinearSpec, name: str) -> None:
        target.weight = w[f"{name}.weight"]
        if f"{name}.bias" in w:
            target.bias = w[f"{name}.bias"]

    def layer_norm(target: common_spec.LayerNormSpec, name: str) -> None:
        target.gamma = w[f"{name}.weight"]
        target.beta = w[f"{name}.bias"]

    def fused(target: common_spec.LinearSpec, names: list[str]) -> None:
        # Whisper's key projection has no bias: fill zeros, as utils.fuse_linear does.
        target.weight = np.concatenate([w[f"{n}.weight"] for n in names])
        target.bias = np.concatenate(
            [w.get(f"{n}.bias", np.zeros(w[f"{n}.weight"].shape[0], np.float32)) for n in names]
        )

    def block(layer, prefix: str, cross: bool) -> None:
        a = f"{prefix}.attn"
        fused(layer.self_attention.linear[0], [f"{a}.query", f"{a}.key", f"{a}.value"])
        linear(layer.self_attention.linear[1], f"{a}.out")
        layer_norm(layer.self_attention.layer_norm, f"{prefix}.attn_ln")
        if cross:
            c = f"{prefix}.cross_attn"
            linear(layer.attention.linear[0], f"{c}.query")
            fused(layer.attention.linear[1], [f"{c}.key", f"{c}.value"])
            linear(layer.attention.linear[2], f"{c}.out")
            layer_norm(layer.attention.layer_norm, f"{prefix}.cross_attn_ln")
        linear(layer.ffn.linear_0, f"{prefix}.mlp.0")
        linear(layer.ffn.linear_1, f"{prefix}.mlp.2")
        layer_norm(layer.ffn.layer_norm, f"{prefix}.mlp_ln")

    enc = spec.encoder
    enc.conv1.weight, enc.conv1.bias = w["encoder.conv1.weight"], w["encoder.conv1.bias"]
    enc.conv2.weight, enc.conv2.bias = w["encoder.conv2.weight"], w["encoder.conv2.bias"]
    enc.position_encodings.encodings = w["encoder.positional_embedding"]
    layer_norm(enc.layer_norm, "encoder.ln_post")
    for i, layer in enumerate(enc.layer):
        block(layer, f"encoder.blocks.{i}", cross=False)

    dec = spec.decoder
    dec.embeddings.weight = w["decoder.token_embedding.weight"]
    dec.position_encodings.encodings = w["decoder.positional_embedding"]
    layer_norm(dec.layer_norm, "decoder.ln")
    for i, layer in enumerate(dec.layer):
        block(layer, f"decoder.blocks.{i}", cross=True)
    # Output projection tied to the token embedding (ctranslate2 stores an alias).
    dec.projection.weight = w["decoder.token_embedding.weight"]

    special = SpecialTokens.for_dims(dims)
    config = spec.config
    config.suppress_ids = _suppress_ids(special)
    config.suppress_ids_begin = [220, special.eot]  # " " and <|endoftext|>, as in real Whisper
    config.lang_ids = list(special.languages)
    # Real models list tuned heads; the converter's default is "all heads of the upper half".
    config.alignment_heads = [
        (layer, head) for layer in range(dims.n_text_layer // 2, dims.n_text_layer) for head in range(dims.n_text_head)
    ]
    spec.register_vocabulary(vocabulary(dims))
    return spec


def _suppress_ids(special: SpecialTokens) -> list[int]:
    """Like real Whisper's suppress_tokens: symbol tokens plus task/control specials."""
    byte_ids = {b: i for i, b in enumerate(bytes_to_unicode())}
    symbols = '"#()*+/:;<=>@[\\]^_`{|}~'
    ids = {byte_ids[ord(s)] for s in symbols}
    ids |= {special.sot, special.translate, special.transcribe, special.sot_lm, special.sot_prev, special.no_speech}
    return sorted(ids)


def build_ct2_model(
    out_dir: Path,
    dims: ModelDims = MICRO,
    seed: int = 0,
    quantization: Optional[str] = "int8",
) -> Path:
    """Write a CTranslate2 Whisper model directory with random weights to ``out_dir``.

    ``quantization`` is the storage type (any ctranslate2 quantization, or None
    for float32); faster-whisper converts at load time to its ``compute_type``.
    An existing ``out_dir`` is replaced.
    """
    from ctranslate2.converters import Converter

    out_dir = Path(out_dir)
    start = time.perf_counter()
    # Fresh arrays: ctranslate2's int8 quantization rescales them in place.
    weights = random_state_dict(dims, seed)

    class _RandomWhisperConverter(Converter):
        def _load(self):
            return _ct2_spec(dims, weights)

    _RandomWhisperConverter().convert(str(out_dir), quantization=quantization, force=True)
    _write_tokenizer_json(out_dir / "tokenizer.json", dims)
    _write_preprocessor_config(out_dir / "preprocessor_config.json", dims)
    logger.info("built CTranslate2 model %s in %.2f s", out_dir, time.perf_counter() - start)
    return out_dir


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """Where cached_*_model() keep their models (tests/.models/ unless overridden)."""
    return Path(os.environ.get(CACHE_DIR_ENV) or _DEFAULT_CACHE_DIR)


def cached_ct2_model(dims: ModelDims = MICRO, seed: int = 0, quantization: Optional[str] = "int8") -> Path:
    """A CTranslate2 model directory for ``dims``, built once and reused across runs.

    Safe with concurrent builders (pytest-xdist workers, parallel runs): each
    builds into a private temp directory and renames it into place; the loser
    of the race discards its copy.
    """
    root = cache_dir()
    final = root / f"ct2-{dims.key}-s{seed}-{quantization or 'float32'}-f{FORMAT_VERSION}"
    if (final / "model.bin").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        build_ct2_model(tmp / "model", dims, seed, quantization)
        try:
            os.rename(tmp / "model", final)  # atomic; fails if another builder won
        except OSError:
            if not (final / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def cached_ggml_model(dims: ModelDims = MICRO, seed: int = 0) -> Path:
    """A whisper.cpp ggml model file for ``dims``, built once and reused across runs."""
    root = cache_dir()
    final = root / f"ggml-{dims.key}-s{seed}-f{FORMAT_VERSION}.bin"
    if final.is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", dir=root)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        build_ggml_model(tmp, dims, seed)
        tmp.chmod(0o644)  # mkstemp creates 0600 files
        os.replace(tmp, final)  # atomic; identical content if another builder won
    finally:
        tmp.unlink(missing_ok=True)
    return final
