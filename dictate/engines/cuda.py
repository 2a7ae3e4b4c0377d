"""The CUDA libraries faster-whisper's CTranslate2 loads on a GPU: cuBLAS 12 and cuDNN 9 (the
driver's libcuda.so.1 besides). CTranslate2's wheel does not bundle them; they come from the CUDA
toolkit / cuDNN installed system-wide, or from NVIDIA's pip packages (nvidia-cublas-cu12,
nvidia-cudnn-cu12), whose folders the dynamic loader does not search on its own. Here we find
them, say exactly which is missing, and preload the pip copies so that no LD_LIBRARY_PATH is needed.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CudaLibrary:
    label: str
    sonames: tuple[str, ...]  # Linux names, loaded in this order (dependencies first)
    windows: tuple[str, ...]
    pip_module: str  # the namespace package of NVIDIA's wheel, e.g. nvidia.cublas
    pip_package: str

    @property
    def names(self) -> tuple[str, ...]:
        return self.windows if sys.platform == "win32" else self.sonames


CUBLAS = CudaLibrary("cuBLAS 12", ("libcublasLt.so.12", "libcublas.so.12"), ("cublasLt64_12.dll", "cublas64_12.dll"),
                     "nvidia.cublas", "nvidia-cublas-cu12")
CUDNN = CudaLibrary("cuDNN 9", ("libcudnn.so.9",), ("cudnn64_9.dll",), "nvidia.cudnn", "nvidia-cudnn-cu12==9.*")
LIBRARIES = (CUBLAS, CUDNN)
DRIVER = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"


@dataclass(frozen=True)
class Found:
    library: CudaLibrary
    paths: tuple[Path, ...]  # one per name, empty when missing
    missing: tuple[str, ...]
    error: str = ""  # found but not loadable

    @property
    def ok(self) -> bool:
        return not self.missing and not self.error

    @property
    def fix(self) -> str:
        return f"pip install {self.library.pip_package}" if not self.ok else ""


def pip_dirs(library: CudaLibrary) -> list[Path]:
    """The library folders of NVIDIA's pip package, when it is installed."""
    try:
        spec = importlib.util.find_spec(library.pip_module)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    sub = "bin" if sys.platform == "win32" else "lib"
    return [Path(p) / sub for p in spec.submodule_search_locations if (Path(p) / sub).is_dir()]


def _ldconfig_dirs() -> dict[str, Path]:
    """soname -> path from the loader's cache (`ldconfig -p`), which dlopen() searches."""
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        found = {}
        for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", out, re.M):
            if "x86-64" in m.group(2) or "64bit" in m.group(2) or sys.maxsize <= 2**32:
                found.setdefault(m.group(1), Path(m.group(3)))
        return found
    return {}


def _search_dirs(library: CudaLibrary, env: dict[str, str]) -> list[Path]:
    var = "PATH" if sys.platform == "win32" else "LD_LIBRARY_PATH"
    dirs = [Path(d) for d in env.get(var, "").split(os.pathsep) if d]
    return dirs + pip_dirs(library)


def locate(library: CudaLibrary, env: dict[str, str] | None = None, *, try_load: bool = True) -> Found:
    """Where each file of `library` is (LD_LIBRARY_PATH, NVIDIA's pip package, the loader cache),
    and whether it loads."""
    env = dict(os.environ) if env is None else env
    dirs = _search_dirs(library, env)
    cache: dict[str, Path] | None = None
    paths, missing = [], []
    for name in library.names:
        hit = next((d / name for d in dirs if (d / name).is_file()), None)
        if hit is None and sys.platform.startswith("linux"):
            cache = _ldconfig_dirs() if cache is None else cache
            hit = cache.get(name)
        if hit is None:
            missing.append(name)
        else:
            paths.append(hit)
    error = ""
    if try_load and not missing:
        for path in paths:
            try:
                ctypes.CDLL(str(path), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
            except OSError as exc:
                error = f"{path.name} cannot be loaded: {exc}"
                break
    return Found(library, tuple(paths), tuple(missing), error)


def driver_present() -> bool:
    try:
        ctypes.CDLL(DRIVER)
        return True
    except OSError:
        return False


def preload() -> list[Path]:
    """Load cuBLAS and cuDNN from NVIDIA's pip packages into the process (global symbols), so that
    CTranslate2's own dlopen() of the same sonames finds them already loaded. Libraries the
    loader would find anyway are left to it. Returns what was loaded."""
    loaded = []
    for library in LIBRARIES:
        for folder in pip_dirs(library):
            for name in library.names:
                path = folder / name
                if not path.is_file():
                    continue
                try:
                    ctypes.CDLL(str(path), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
                    loaded.append(path)
                except OSError as exc:
                    log.debug("cuda: %s not loaded: %s", path, exc)
    if loaded:
        log.info("cuda: preloaded %s", ", ".join(p.name for p in loaded))
    return loaded


def ctranslate2_binary() -> Path | None:
    """CTranslate2's native library (the wheel's ctranslate2.libs/ or next to the package)."""
    spec = importlib.util.find_spec("ctranslate2")
    if spec is None or not spec.origin:
        return None
    package = Path(spec.origin).parent
    for folder in (package.parent / "ctranslate2.libs", package):
        for pattern in ("libctranslate2*.so*", "ctranslate2*.dll", "libctranslate2*.dylib"):
            hits = sorted(folder.glob(pattern))
            if hits:
                return hits[0]
    return None


def needed() -> tuple[CudaLibrary, ...]:
    """The libraries this CTranslate2 build loads on a GPU: cuBLAS always; cuDNN only when the
    build names it (releases from 4.7 on run Whisper's convolutions without cuDNN)."""
    binary = ctranslate2_binary()
    if binary is None:
        return LIBRARIES
    try:
        data = binary.read_bytes()
    except OSError:
        return LIBRARIES
    return tuple(lib for lib in LIBRARIES if lib is CUBLAS or b"cudnn" in data.lower())
