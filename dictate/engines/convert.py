"""Convert a CTranslate2 Whisper model (faster-whisper's format) into a ggml file for whisper.cpp.

Both formats hold the same network. CTranslate2's ``model.bin`` is a flat list of named arrays
(layout below); ggml is the legacy single-file format whisper.cpp reads: a header with the
hyper-parameters, the mel filterbank, the text vocabulary as raw bytes, then each tensor under
openai-whisper's ``state_dict`` name. The conversion reads the arrays, undoes CTranslate2's
storage choices (int8/int16 quantization with a scale per row, fused q/k/v projections), and
writes them out under the names whisper.cpp looks up.

CTranslate2 ``model.bin`` (little endian; strings are a uint16 byte count including a NUL, the
bytes, the NUL):
    uint32 binary version, string spec name, uint32 spec revision, uint32 variable count,
    per variable: string name, uint8 rank, uint32 dims[rank], uint8 dtype, uint32 byte count, bytes;
    uint32 alias count, per alias: string alias, string target.

numpy only: no torch, no ctranslate2, no network.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from dictate.errors import ModelError

log = logging.getLogger(__name__)

GGML_MAGIC = 0x67676D6C  # "ggml"
SAMPLE_RATE = 16000
N_FFT = 400

# CTranslate2 binary versions that store a dtype id per variable (4+); 6 is current (4.x).
_CT2_VERSIONS = range(4, 7)
# CTranslate2's DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16: widened by hand below
}
_BFLOAT16 = 5
_MAX_RANK = 8
# f16 only: whisper.cpp loads f32 files but its CPU backend aborts the process on f32
# convolution weights (GGML_ASSERT in the conv op, pywhispercpp 1.5), and f16 loses nothing
# against a CTranslate2 model stored as float16 or int8.
GGML_DTYPES = ("f16",)

# Tensors whisper.cpp wants in f32 even in an f16 file (besides every 1-D tensor).
_GGML_F32_TENSORS = frozenset(
    {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"}
)


@dataclass(frozen=True)
class WhisperDims:
    """Whisper hyper-parameters, named as in openai-whisper's ``ModelDimensions``."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_vocab: int


# --------------------------------------------------------------------------- mel filterbank


def _hz_to_mel(freqs: NDArray[np.float64]) -> NDArray[np.float64]:
    # Slaney mel scale (librosa's default, which Whisper's filters were made with):
    # linear below 1 kHz, logarithmic above.
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    mels = freqs / f_sp
    log_region = freqs >= min_log_hz
    mels[log_region] = min_log_mel + np.log(freqs[log_region] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: NDArray[np.float64]) -> NDArray[np.float64]:
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    freqs = f_sp * mels
    log_region = mels >= min_log_mel
    freqs[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
    return freqs


def mel_filters(n_mels: int) -> NDArray[np.float32]:
    """Slaney-normalised mel filterbank (n_mels, 201): librosa.filters.mel(sr=16000, n_fft=400, n_mels)."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_pts = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], n_mels + 2)
    )
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:] - mel_pts[:-2]))[:, None]
    return weights.astype(np.float32)


# --------------------------------------------------------------------------- byte-level BPE


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-char map, in the id order of its 256 byte tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def token_bytes(tokens: Iterable[str]) -> list[bytes]:
    """Byte-level BPE token strings ("Ġthe") -> the raw bytes whisper.cpp stores (b" the")."""
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    try:
        return [bytes(decoder[c] for c in token) for token in tokens]
    except KeyError as exc:
        raise ModelError(f"vocabulary holds a character outside the byte-level alphabet: {exc}") from None


# --------------------------------------------------------------------------- ggml writer


def write_ggml(
    f: BinaryIO,
    dims: WhisperDims,
    weights: Mapping[str, NDArray[np.floating]],
    tokens: list[bytes],
    *,
    filters: NDArray[np.float32] | None = None,
    dtype: str = "f16",
) -> None:
    """Serialise a Whisper model in whisper.cpp's legacy ggml layout.

    ``weights`` are float arrays under openai-whisper names; ``tokens`` are the text tokens
    (ids below <|endoftext|>) as raw bytes: whisper.cpp derives the special ids from n_vocab.
    ``dtype`` "f16" stores matrices as float16; vectors and positional embeddings stay f32, as
    whisper.cpp expects.
    """
    if dtype not in GGML_DTYPES:
        raise ValueError(f"dtype must be one of {GGML_DTYPES}")
    f.write(struct.pack("<I", GGML_MAGIC))
    f.write(
        struct.pack(
            "<11i",
            dims.n_vocab, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer,
            dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer, dims.n_mels,
            1,  # ftype: mostly f16
        )
    )
    filters = mel_filters(dims.n_mels) if filters is None else filters
    f.write(struct.pack("<2i", *filters.shape))
    f.write(np.ascontiguousarray(filters, dtype="<f4").tobytes())

    f.write(struct.pack("<i", len(tokens)))
    for raw in tokens:
        f.write(struct.pack("<i", len(raw)))
        f.write(raw)

    for name, data in weights.items():
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            data = data.reshape(-1, 1)  # whisper.cpp broadcasts them as [n_state, 1]
        f32 = data.ndim < 2 or name in _GGML_F32_TENSORS
        data = data.astype("<f4" if f32 else "<f2", copy=False)
        encoded = name.encode()
        f.write(struct.pack("<3i", data.ndim, len(encoded), 0 if f32 else 1))
        f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))  # ggml: innermost dim first
        f.write(encoded)
        f.write(np.ascontiguousarray(data).tobytes())


# --------------------------------------------------------------------------- CTranslate2 reader


class _Reader:
    """Sequential reads from model.bin that fail with a ModelError naming the file."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f = f
        self._path = path
        self._size = os.fstat(f.fileno()).st_size

    def _bad(self, why: str) -> ModelError:
        return ModelError(f"{self._path} is not a valid CTranslate2 model: {why}")

    def read(self, n: int) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise self._bad(f"file ends early at byte {self._f.tell()} (truncated download?)")
        return data

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.read(struct.calcsize("<" + fmt)))

    def uint(self, fmt: str = "I") -> int:
        return int(self.unpack(fmt)[0])

    def string(self) -> str:
        n = self.uint("H")
        raw = self.read(n)
        if n == 0 or raw[-1] != 0:
            raise self._bad(f"malformed name at byte {self._f.tell() - n}")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise self._bad(f"malformed name at byte {self._f.tell() - n}") from None

    def remaining(self) -> int:
        return self._size - self._f.tell()


def read_ct2_variables(model_bin: Path) -> tuple[str, dict[str, NDArray]]:
    """Read a CTranslate2 ``model.bin``: (spec name, {variable name: array as stored}).

    Aliases are resolved into extra entries that share the target's array.
    """
    model_bin = Path(model_bin)
    try:
        f = open(model_bin, "rb")
    except OSError as exc:
        raise ModelError(f"cannot read {model_bin}: {exc.strerror or exc}") from None
    with f:
        r = _Reader(f, model_bin)
        version = r.uint()
        if version not in _CT2_VERSIONS:
            raise r._bad(f"unsupported binary version {version} (expected {_CT2_VERSIONS.start}"
                         f"-{_CT2_VERSIONS.stop - 1}; re-convert it with a current ctranslate2)")
        spec = r.string()
        r.uint()  # spec revision: the variable names below are what matter
        count = r.uint()
        variables: dict[str, NDArray] = {}
        for _ in range(count):
            name = r.string()
            rank = r.uint("B")
            if rank > _MAX_RANK:
                raise r._bad(f"variable {name} has rank {rank}")
            shape = r.unpack(f"{rank}I") if rank else ()
            type_id = r.uint("B")
            nbytes = r.uint()
            if type_id not in _CT2_DTYPES:
                raise r._bad(f"variable {name} has unknown dtype {type_id}")
            dt = _CT2_DTYPES[type_id]
            if nbytes != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
                raise r._bad(f"variable {name}: {nbytes} bytes do not fit shape {list(shape)}")
            if nbytes > r.remaining():
                raise r._bad(f"file ends inside variable {name} (truncated download?)")
            array = np.frombuffer(r.read(nbytes), dtype=dt).reshape(shape)
            if type_id == _BFLOAT16:
                array = (array.astype(np.uint32) << 16).view(np.float32)
            variables[name] = array
        for _ in range(r.uint()):
            alias, target = r.string(), r.string()
            for suffix in ("", "_scale"):
                if target + suffix in variables:
                    variables[alias + suffix] = variables[target + suffix]
    return spec, variables


def _dequantize(variables: Mapping[str, NDArray], name: str) -> NDArray[np.float32]:
    """A variable as float32, undoing CTranslate2's int8/int16 quantization (value = q / scale)."""
    value = variables[name]
    if value.dtype.kind == "f":
        return value.astype(np.float32, copy=False)
    scale = variables.get(name + "_scale")
    if scale is None:
        raise ModelError(f"quantized variable {name} has no {name}_scale")
    scale = scale.astype(np.float32)
    if scale.ndim == 1:  # one scale per output row (int8)
        scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
    return value.astype(np.float32) / scale


# CTranslate2 WhisperSpec names -> openai-whisper names, for the one-to-one tensors.
_LAYER_NORM = {"gamma": "weight", "beta": "bias"}


def _count_layers(variables: Mapping[str, NDArray], side: str) -> int:
    pattern = re.compile(rf"{side}/layer_(\d+)/")
    found = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    return max(found) + 1 if found else 0


def ct2_to_openai(variables: Mapping[str, NDArray]) -> tuple[WhisperDims, dict[str, NDArray[np.float32]]]:
    """Map CTranslate2 WhisperSpec variables back to openai-whisper's ``state_dict`` (float32)."""
    out: dict[str, NDArray[np.float32]] = {}

    def get(name: str) -> NDArray[np.float32]:
        if name not in variables:
            raise ModelError(f"not a Whisper model: variable {name} is missing")
        return _dequantize(variables, name)

    def linear(src: str, dst: str, bias: bool = True) -> None:
        out[f"{dst}.weight"] = get(f"{src}/weight")
        if bias:
            out[f"{dst}.bias"] = get(f"{src}/bias")

    def layer_norm(src: str, dst: str) -> None:
        for ct2_name, name in _LAYER_NORM.items():
            out[f"{dst}.{name}"] = get(f"{src}/{ct2_name}")

    def fused(src: str, dsts: list[str]) -> None:
        # CTranslate2 fuses q/k/v (or k/v) into one projection; Whisper's key has no bias
        # (CTranslate2 stores zeros there), so it is dropped: whisper.cpp has no such tensor.
        weight, bias = get(f"{src}/weight"), get(f"{src}/bias")
        n = len(dsts)
        if weight.shape[0] % n:
            raise ModelError(f"not a Whisper model: {src} cannot be split in {n}")
        for dst, w, b in zip(dsts, np.split(weight, n), np.split(bias, n)):
            out[f"{dst}.weight"] = w
            if not dst.endswith(".key"):
                out[f"{dst}.bias"] = b

    def block(src: str, dst: str, cross: bool) -> None:
        fused(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"])
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        layer_norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        if cross:
            linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
            fused(f"{src}/attention/linear_1", [f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"])
            linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
            layer_norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        layer_norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")

    n_audio_layer = _count_layers(variables, "encoder")
    n_text_layer = _count_layers(variables, "decoder")
    if not n_audio_layer or not n_text_layer:
        raise ModelError("not a Whisper model: no encoder or decoder layers")

    linear("encoder/conv1", "encoder.conv1")
    linear("encoder/conv2", "encoder.conv2")
    out["encoder.positional_embedding"] = get("encoder/position_encodings/encodings")
    for i in range(n_audio_layer):
        block(f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    layer_norm("encoder/layer_norm", "encoder.ln_post")

    out["decoder.token_embedding.weight"] = get("decoder/embeddings/weight")
    out["decoder.positional_embedding"] = get("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        block(f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    layer_norm("decoder/layer_norm", "decoder.ln")

    conv1 = out["encoder.conv1.weight"]
    embedding = out["decoder.token_embedding.weight"]
    if conv1.ndim != 3 or embedding.ndim != 2:
        raise ModelError("not a Whisper model: unexpected convolution or embedding shape")
    n_audio_state, n_mels = conv1.shape[:2]
    n_vocab, n_text_state = embedding.shape

    def heads(side: str, n_state: int) -> int:
        # Spec revision 3 stores the head count; Whisper's heads are always 64 wide otherwise.
        stored = variables.get(f"{side}/num_heads")
        return int(stored) if stored is not None and stored.size == 1 else max(1, n_state // 64)

    dims = WhisperDims(
        n_mels=int(n_mels),
        n_audio_ctx=int(out["encoder.positional_embedding"].shape[0]),
        n_audio_state=int(n_audio_state),
        n_audio_head=heads("encoder", n_audio_state),
        n_audio_layer=n_audio_layer,
        n_text_ctx=int(out["decoder.positional_embedding"].shape[0]),
        n_text_state=int(n_text_state),
        n_text_head=heads("decoder", n_text_state),
        n_text_layer=n_text_layer,
        n_vocab=int(n_vocab),
    )
    if dims.n_audio_state != dims.n_text_state:
        raise ModelError("whisper.cpp needs equal encoder and decoder widths; this model has "
                         f"{dims.n_audio_state} and {dims.n_text_state}")
    return dims, out


def read_vocabulary(ct2_dir: Path) -> list[str]:
    """All token strings of a CTranslate2 Whisper folder, index == token id."""
    txt, js, tok = ct2_dir / "vocabulary.txt", ct2_dir / "vocabulary.json", ct2_dir / "tokenizer.json"
    try:
        if txt.is_file():
            lines = txt.read_text(encoding="utf-8").split("\n")
            # One token per line; a token may be empty (id 50256 of the multilingual vocabulary).
            return lines[:-1] if lines and lines[-1] == "" else lines
        if js.is_file():
            tokens = json.loads(js.read_text(encoding="utf-8"))
            if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
                return tokens
            raise ModelError(f"{js} is not a list of tokens")
        if tok.is_file():
            data = json.loads(tok.read_text(encoding="utf-8"))
            ids: dict[str, int] = dict(data["model"]["vocab"])
            ids.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
            tokens = [""] * (max(ids.values()) + 1)
            for token, i in ids.items():
                tokens[i] = token
            return tokens
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the vocabulary of {ct2_dir}: {exc}") from None
    raise ModelError(f"{ct2_dir} has no vocabulary.txt, vocabulary.json or tokenizer.json")


def _text_tokens(ct2_dir: Path, vocabulary: list[str], n_vocab: int) -> list[bytes]:
    """The tokens below <|endoftext|>, as raw bytes."""
    if len(vocabulary) != n_vocab:
        raise ModelError(f"{ct2_dir}: the vocabulary has {len(vocabulary)} tokens but the model {n_vocab}")
    try:
        eot = vocabulary.index("<|endoftext|>")
    except ValueError:
        raise ModelError(f"{ct2_dir}: the vocabulary has no <|endoftext|>: not a Whisper vocabulary") from None
    return token_bytes(vocabulary[:eot])


def convert_ct2_to_ggml(ct2_dir: Path, out: Path, *, dtype: str = "f16") -> Path:
    """Convert the CTranslate2 Whisper model folder ``ct2_dir`` into the ggml file ``out``.

    ``dtype`` is "f16" (see GGML_DTYPES). The file is written beside
    ``out`` and renamed into place, so a failed conversion leaves nothing behind. Raises
    ModelError with a one-line message on any unusable input.
    """
    ct2_dir, out = Path(ct2_dir), Path(out)
    if dtype not in GGML_DTYPES:
        raise ModelError(f"unsupported ggml type {dtype!r}: use {' or '.join(GGML_DTYPES)}")
    if not ct2_dir.is_dir():
        raise ModelError(f"{ct2_dir} is not a CTranslate2 model folder")
    model_bin = ct2_dir / "model.bin"
    if not model_bin.is_file():
        raise ModelError(f"{ct2_dir} has no model.bin: not a CTranslate2 model folder")

    start = time.perf_counter()
    spec, variables = read_ct2_variables(model_bin)
    if spec != "WhisperSpec":
        raise ModelError(f"{ct2_dir} holds a {spec or 'unnamed'} model, not Whisper")
    dims, weights = ct2_to_openai(variables)
    tokens = _text_tokens(ct2_dir, read_vocabulary(ct2_dir), dims.n_vocab)

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    except OSError as exc:
        raise ModelError(f"cannot write {out}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write_ggml(f, dims, weights, tokens, dtype=dtype)
        tmp.chmod(0o644)  # mkstemp makes 0600 files
        os.replace(tmp, out)
    except OSError as exc:
        raise ModelError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("converted %s to %s (%s, %d+%d layers, %d tokens) in %.2f s", ct2_dir, out, dtype,
             dims.n_audio_layer, dims.n_text_layer, dims.n_vocab, time.perf_counter() - start)
    return out
