"""Model names to files: stock models download through huggingface_hub into its shared cache
(honouring HF_ENDPOINT, HF_HUB_OFFLINE and HF_HOME); a local CTranslate2 directory or a ggml
`.bin` (a user's fine-tuned model) is used as it is, and so is a model registered under a name
(dictate.engines.user_models)."""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dictate.errors import ModelError

log = logging.getLogger(__name__)


class ModelFormat(enum.Enum):
    CT2 = "ct2"  # faster-whisper / CTranslate2 directory
    GGML = "ggml"  # whisper.cpp single file


# Stock CTranslate2 conversions (the repos faster-whisper itself uses).
CT2_REPOS: dict[str, str] = {
    "tiny": "Systran/faster-whisper-tiny",
    "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base",
    "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small",
    "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium",
    "medium.en": "Systran/faster-whisper-medium.en",
    "large-v1": "Systran/faster-whisper-large-v1",
    "large-v2": "Systran/faster-whisper-large-v2",
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "distil-small.en": "Systran/faster-distil-whisper-small.en",
    "distil-medium.en": "Systran/faster-distil-whisper-medium.en",
    "distil-large-v2": "Systran/faster-distil-whisper-large-v2",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
    "distil-large-v3.5": "distil-whisper/distil-large-v3.5-ct2",
}
CT2_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]

# whisper.cpp's own ggml conversions live in one repo, one file per model.
GGML_REPO = "ggerganov/whisper.cpp"
GGML_NAMES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
              "large-v1", "large-v2", "large-v3", "large-v3-turbo")
GGML_MAGIC = 0x67676D6C  # "ggml", little-endian uint32 at the start of the file

# Approximate download sizes, for `dictate models list` and the README.
SIZES_MB = {"tiny": 75, "base": 145, "small": 485, "medium": 1530, "large": 3100, "large-v3-turbo": 1620,
            "distil-small": 335, "distil-medium": 790, "distil-large": 1510}


def approx_size_mb(name: str) -> int | None:
    if name in SIZES_MB:
        return SIZES_MB[name]
    stem = name.split(".")[0]
    for key in (stem, stem.rsplit("-", 1)[0]):
        if key in SIZES_MB:
            return SIZES_MB[key]
    return None


def stock_names(fmt: ModelFormat) -> tuple[str, ...]:
    return tuple(CT2_REPOS) if fmt is ModelFormat.CT2 else GGML_NAMES


@dataclass(frozen=True)
class Hardware:
    cuda_devices: int
    cpu_cores: int
    memory_gb: float


def detect_hardware() -> Hardware:
    cuda = 0
    try:
        import ctranslate2

        cuda = ctranslate2.get_cuda_device_count()
    except Exception:  # no ctranslate2 or a broken CUDA install: CPU it is
        cuda = 0
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):  # Windows
        memory = 8.0
    return Hardware(cuda_devices=cuda, cpu_cores=os.cpu_count() or 1, memory_gb=memory)


def auto_model_name(hw: Hardware | None = None) -> str:
    """The model `auto` stands for: the largest that stays faster than real time for live typing."""
    hw = hw or detect_hardware()
    if hw.cuda_devices > 0:
        return "large-v3-turbo"
    if hw.cpu_cores >= 8 and hw.memory_gb >= 8:
        return "small"
    if hw.cpu_cores >= 4 and hw.memory_gb >= 4:
        return "base"
    return "tiny"


def is_ct2_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def is_ggml_file(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return len(head) == 4 and int.from_bytes(head, "little") == GGML_MAGIC


def _looks_like_path(name: str) -> bool:
    """A path on disk, as opposed to a stock name or a hub repo id such as `org/model`."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.endswith(".bin")


def _local(name: str, fmt: ModelFormat) -> Path:
    path = Path(name).expanduser()
    if not path.exists():
        raise ModelError(f"model {name!r} not found: no such file or directory")
    if fmt is ModelFormat.CT2:
        if is_ct2_dir(path):
            return path
        if path.is_file() and is_ggml_file(path):
            raise ModelError(f"model {name!r} is a ggml file: use it with --engine whisper.cpp")
        raise ModelError(f"model {name!r} is not a CTranslate2 Whisper directory (it needs model.bin and config.json); "
                         "convert it with ct2-transformers-converter")
    if path.is_file() and is_ggml_file(path):
        return path
    if is_ct2_dir(path):
        raise ModelError(f"model {name!r} is a CTranslate2 directory: use it with --engine faster-whisper")
    raise ModelError(f"model {name!r} is not a ggml Whisper model; convert it with whisper.cpp's convert-pt-to-ggml.py")


def _hub_target(name: str, fmt: ModelFormat) -> tuple[str, str | None]:
    """(repo id, single file name or None for a snapshot)."""
    if fmt is ModelFormat.CT2:
        if name in CT2_REPOS:
            return CT2_REPOS[name], None
        if "/" in name:  # any CTranslate2 Whisper repo on the hub
            return name, None
        raise ModelError(f"unknown model {name!r}; stock names: {', '.join(CT2_REPOS)} (or a CTranslate2 directory)")
    if name in GGML_NAMES:
        return GGML_REPO, f"ggml-{name}.bin"
    raise ModelError(f"unknown whisper.cpp model {name!r}; stock names: {', '.join(GGML_NAMES)} (or a ggml .bin file)")


def _fetch(repo: str, filename: str | None, *, local_only: bool) -> Path:
    import huggingface_hub

    if filename is None:
        return Path(huggingface_hub.snapshot_download(repo, allow_patterns=CT2_FILES, local_files_only=local_only))
    return Path(huggingface_hub.hf_hub_download(repo, filename, local_files_only=local_only))


def cached_path(name: str, fmt: ModelFormat) -> Path | None:
    """Where a stock model is in the local cache, or None; never touches the network."""
    repo, filename = _hub_target(name, fmt)
    try:
        path = _fetch(repo, filename, local_only=True)
    except Exception:  # huggingface_hub raises several kinds for "not cached"
        return None
    if fmt is ModelFormat.CT2 and not is_ct2_dir(path):
        return None
    return path


def download(name: str, fmt: ModelFormat) -> Path:
    """Fetch a stock model into the shared hub cache, with huggingface_hub's progress bar on stderr."""
    repo, filename = _hub_target(name, fmt)
    hint = f"run `dictate models download {name}` on a connected machine, or pass --model with a local model path"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelError(f"model {name!r} is not downloaded and HF_HUB_OFFLINE is set: {hint}")
    size = approx_size_mb(name)
    log.warning("downloading model %s (%s) from %s", name, f"~{size} MB" if size else "size unknown", repo)
    try:
        path = _fetch(repo, filename, local_only=False)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {name!r} is not downloaded and could not be fetched ({reason[:160]}): {hint}") from None
    if fmt is ModelFormat.CT2 and not is_ct2_dir(path):
        raise ModelError(f"model {name!r} downloaded from {repo} is incomplete; run `dictate models download {name}` again")
    return path


def resolve(name: str, fmt: ModelFormat, *, allow_download: bool = True) -> Path:
    """A loadable path for `name`: a local model as is, a cached stock model, or (first use) a download."""
    name = name.strip()
    if not name:
        raise ModelError("no model given; pass --model NAME or set [engine] model in the config")
    if name == "auto":
        name = auto_model_name()
        log.info("model auto -> %s", name)
    from dictate.engines.user_models import lookup, resolve_user  # imports this module

    mine = lookup(name)
    if mine is not None:  # a name given with `dictate models add`
        return resolve_user(mine, fmt)
    if _looks_like_path(name):
        return _local(name, fmt)
    cached = cached_path(name, fmt)
    if cached is not None:
        return cached
    if not allow_download:
        raise ModelError(f"model {name!r} is not downloaded: run `dictate models download {name}` first")
    return download(name, fmt)
