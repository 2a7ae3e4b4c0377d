"""Your own models under a name: `dictate models add NAME PATH` registers a local CTranslate2
folder (faster-whisper) or a ggml/gguf file (whisper.cpp), after checking that it loads, so that
`--model NAME`, `[engine] model = "NAME"` and the settings' model list use it like a stock model.

The registry is `models.json` in the config folder: {name: {"path", "format", "added_at"}}.
Paths are stored absolute; a model whose files were moved away is reported when it is used.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from dictate.config import Paths
from dictate.engines.models import GGML_NAMES, CT2_REPOS, ModelFormat, is_ct2_dir, is_ggml_file
from dictate.errors import ModelError
from dictate.fsutil import write_atomic

log = logging.getLogger(__name__)

REGISTRY = "models.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class UserModel:
    name: str
    path: Path
    format: ModelFormat
    added_at: float

    @property
    def engine(self) -> str:
        """The engine that runs this model."""
        return "whisper.cpp" if self.format is ModelFormat.GGML else "faster-whisper"


def registry_path(paths: Paths | None = None) -> Path:
    return (paths or Paths.default()).config_dir / REGISTRY


def _load(paths: Paths | None) -> dict[str, dict]:
    path = registry_path(paths)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read your models list {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, dict], paths: Paths | None) -> None:
    path = registry_path(paths)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise ModelError(f"cannot write your models list {path}: {exc.strerror or exc}") from None


def _model(name: str, d: dict) -> UserModel:
    return UserModel(name, Path(d["path"]), ModelFormat(d["format"]), float(d.get("added_at", 0.0)))


def list_user_models(paths: Paths | None = None) -> list[UserModel]:
    return [_model(n, d) for n, d in sorted(_load(paths).items())]


def lookup(name: str, paths: Paths | None = None) -> UserModel | None:
    """The registered model called `name`, or None (also for anything that cannot be a name)."""
    if not _NAME.fullmatch(name or ""):
        return None
    d = _load(paths).get(name)
    return _model(name, d) if d else None


def detect_format(path: Path) -> ModelFormat:
    if is_ct2_dir(path):
        return ModelFormat.CT2
    if path.is_file():
        try:
            with path.open("rb") as f:
                head = f.read(4)
        except OSError as exc:
            raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
        if is_ggml_file(path) or head == GGUF_MAGIC:
            return ModelFormat.GGML
    if path.is_dir():
        raise ModelError(f"{path} is not a CTranslate2 Whisper folder (it needs model.bin and config.json); "
                         "convert a Hugging Face model with ct2-transformers-converter")
    raise ModelError(f"{path} is neither a CTranslate2 folder nor a ggml/gguf file")


def check_loads(path: Path, fmt: ModelFormat) -> None:
    """Load the model once with its engine (ModelError with the engine's reason if it cannot)."""
    if fmt is ModelFormat.CT2:
        from faster_whisper import WhisperModel

        try:
            WhisperModel(str(path), device="cpu", compute_type="int8", local_files_only=True)
        except Exception as exc:  # CTranslate2 raises RuntimeError, ValueError, OSError...
            raise ModelError(f"faster-whisper cannot load {path}: {str(exc).splitlines()[0] if str(exc) else exc}") \
                from None
        return
    from pywhispercpp.model import Model

    try:
        model = Model(str(path), redirect_whispercpp_logs_to=None, print_progress=False)
    except Exception as exc:
        raise ModelError(f"whisper.cpp cannot load {path}: {exc}") from None
    if getattr(model, "_ctx", None) is None:
        raise ModelError(f"whisper.cpp cannot load {path}: it rejected the file (whisper.cpp reads its own "
                         "ggml format; `dictate models convert` makes one from a CTranslate2 folder)")


def register(name: str, path: str | Path, *, paths: Paths | None = None, replace: bool = False,
             check: bool = True) -> UserModel:
    """Add `path` under `name` after checking that its engine loads it."""
    if not _NAME.fullmatch(name):
        raise ModelError(f"{name!r} cannot be a model name: use letters, digits, '.', '_', '-' (no '/')")
    if name == "auto" or name in CT2_REPOS or name in GGML_NAMES:
        raise ModelError(f"{name!r} is a stock model's name; choose another, e.g. my-{name}")
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    fmt = detect_format(path)
    data = _load(paths)
    if name in data and not replace:
        raise ModelError(f"a model called {name!r} exists already ({data[name]['path']}); remove it first or "
                         "pass --replace")
    if check:
        check_loads(path, fmt)
    data[name] = {"path": str(path), "format": fmt.value, "added_at": time.time()}
    _save(data, paths)
    log.info("model %s -> %s (%s)", name, path, fmt.value)
    return _model(name, data[name])


def remove(name: str, paths: Paths | None = None) -> UserModel:
    data = _load(paths)
    if name not in data:
        raise ModelError(f"no model of yours called {name!r} (see `dictate models list`)")
    model = _model(name, data.pop(name))
    _save(data, paths)
    return model


def resolve_user(model: UserModel, fmt: ModelFormat) -> Path:
    """The registered model's path for an engine that reads `fmt`, or a one-line error."""
    if not model.path.exists():
        raise ModelError(f"your model {model.name!r} is gone from {model.path}; add it again "
                         f"(`dictate models add {model.name} PATH --replace`) or remove it")
    if model.format is not fmt:
        raise ModelError(f"your model {model.name!r} is a {model.format.value} model: use it with "
                         f"--engine {model.engine}")
    return model.path
