"""The Engine protocol and the factory that turns a name (or `module:attribute`) into an engine.

Backends are imported lazily: `dictate --help` and the UI start without loading CTranslate2 or
whisper.cpp, and a missing optional backend only matters when it is asked for."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Iterator, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from dictate.errors import EngineError
from dictate.types import Segment, TranscribeOptions

if TYPE_CHECKING:
    from dictate.config import Config

log = logging.getLogger(__name__)

BUILTIN_ENGINES = ("faster-whisper", "whisper.cpp", "remote")


@runtime_checkable
class Engine(Protocol):
    """Audio is mono 16 kHz float32 in [-1, 1]; times in the result are seconds from its start."""

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list[Segment]: ...


def iter_segments(engine: Engine, audio: NDArray[np.float32], options: TranscribeOptions) -> Iterator[Segment]:
    """Segments as the engine produces them, for progress on long files. Engines that decode
    incrementally offer `transcribe_iter`; for the others the whole list arrives at the end."""
    it = getattr(engine, "transcribe_iter", None)
    if callable(it):
        yield from it(audio, options)
    else:
        yield from engine.transcribe(audio, options)


def check_audio(audio: NDArray[np.float32]) -> NDArray[np.float32]:
    """Engines accept only what the protocol promises; a wrong array is a bug upstream, said clearly."""
    if not isinstance(audio, np.ndarray) or audio.ndim != 1:
        raise EngineError("engine input must be a 1-D array of mono 16 kHz samples")
    if audio.dtype != np.float32:
        audio = audio.astype(np.float32)
    return np.ascontiguousarray(audio)


def _load_spec(spec: str) -> Engine:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise EngineError(f"engine {spec!r}: expected one of {', '.join(BUILTIN_ENGINES)} or module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"engine {spec!r}: cannot import {module_name}: {exc}") from exc
    factory = module
    for part in attribute.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise EngineError(f"engine {spec!r}: {module_name} has no attribute {attribute}")
    if not callable(factory):
        raise EngineError(f"engine {spec!r}: {attribute} is not callable")
    try:
        engine = factory()
    except Exception as exc:  # third-party code: report, do not crash
        raise EngineError(f"engine {spec!r} failed to start: {exc}") from exc
    if not isinstance(engine, Engine):
        raise EngineError(f"engine {spec!r}: {attribute}() returned {type(engine).__name__}, which has no transcribe()")
    return engine


def create_engine(name_or_spec: str, config: "Config", *, model: str | None = None,
                  allow_download: bool = True) -> Engine:
    """Build an engine from config; `model` overrides config.engine.model."""
    model_name = model or config.engine.model
    if name_or_spec == "faster-whisper":
        from dictate.engines.faster import FasterWhisperEngine

        return FasterWhisperEngine(model_name, device=config.engine.device, compute_type=config.engine.compute_type,
                                   threads=config.engine.threads, allow_download=allow_download)
    if name_or_spec == "whisper.cpp":
        from dictate.engines.whispercpp import WhisperCppEngine

        return WhisperCppEngine(model_name, threads=config.engine.threads, allow_download=allow_download)
    if name_or_spec == "remote":
        try:
            from dictate.engines.remote import RemoteEngine
        except ImportError as exc:
            raise EngineError("the remote engine is not available in this build") from exc
        return RemoteEngine.from_config(config, model=model)
    return _load_spec(name_or_spec)
