"""The one engine of the app, loaded in the background.

`LoadingEngine` stands in for the engine from the first moment: the EngineWorker owns it at once,
so dictation, notes and file jobs can submit work before the model is there. A job that arrives
early waits on the engine thread until the model is ready (the audio meanwhile keeps arriving and
is kept by its pipeline); when loading failed, every job fails with the loader's one-line error.

    engine = LoadingEngine(lambda: create_engine("faster-whisper", cfg))
    engine.start(on_done=callback)     # loads on the thread `dictate-model-loader`
    worker = EngineWorker(engine)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from dictate.engines import Engine, iter_segments
from dictate.errors import DictateError, EngineError
from dictate.types import Segment, TranscribeOptions

log = logging.getLogger(__name__)


class LoadingEngine:
    """An Engine whose real engine is built by `factory` on a background thread."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self._factory = factory
        self._ready = threading.Event()
        self._engine: Engine | None = None
        self.error: DictateError | None = None
        self.load_s: float | None = None
        self._thread: threading.Thread | None = None

    def start(self, on_done: Callable[["LoadingEngine"], None] | None = None) -> "LoadingEngine":
        self._thread = threading.Thread(target=self._load, args=(on_done,), name="dictate-model-loader",
                                        daemon=True)
        self._thread.start()
        return self

    def _load(self, on_done: Callable[["LoadingEngine"], None] | None) -> None:
        t0 = time.monotonic()
        self._engine, self.error = _build(self._factory)
        self.load_s = time.monotonic() - t0
        if self.error is not None:
            log.error("model: %s", self.error)
        else:
            log.info("model ready in %.1f s", self.load_s)
        self._ready.set()
        if on_done is not None:
            on_done(self)

    def replace(self, factory: Callable[[], Engine],
                on_done: Callable[[Engine | None, DictateError | None], None]) -> None:
        """Build another engine in the background (a model changed in the settings). The current
        one serves until the new one is ready, and stays if it fails: `on_done(engine, None)` or
        `on_done(None, error)`. A job running on the old engine finishes on it."""
        def load() -> None:
            t0 = time.monotonic()
            engine, error = _build(factory)
            if engine is None:
                log.error("model: %s (the current model stays)", error)
                on_done(None, error)
                return
            self._engine, self.error = engine, None
            self._ready.set()  # the first load may have failed: jobs waiting on it go on now
            self.load_s = time.monotonic() - t0
            log.info("model replaced in %.1f s", self.load_s)
            on_done(engine, None)

        threading.Thread(target=load, name="dictate-model-loader", daemon=True).start()

    @property
    def ready(self) -> bool:
        """Loading has ended (successfully or not)."""
        return self._ready.is_set()

    @property
    def loaded(self) -> bool:
        return self._ready.is_set() and self._engine is not None

    @property
    def engine(self) -> Engine | None:
        return self._engine

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._ready.wait(timeout_s)

    def _get(self) -> Engine:
        self._ready.wait()
        if self._engine is None:
            # EngineError so that the worker reports it as the job's failure, message unchanged
            error = self.error or EngineError("the engine is not loaded")
            raise error if isinstance(error, EngineError) else EngineError(str(error))
        return self._engine

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list[Segment]:
        return list(iter_segments(self._get(), audio, options))

    def transcribe_iter(self, audio: NDArray[np.float32], options: TranscribeOptions) -> Iterator[Segment]:
        yield from iter_segments(self._get(), audio, options)

    def __getattr__(self, name: str):
        # model_path, active_name and the like, once the real engine is there
        engine = self.__dict__.get("_engine")
        if engine is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(engine, name)


def _build(factory: Callable[[], Engine]) -> tuple[Engine | None, DictateError | None]:
    """The engine, or the one-line error it failed with."""
    try:
        return factory(), None
    except DictateError as exc:
        return None, exc
    except Exception as exc:  # a third-party engine's bug: one line, and the app stays up
        log.exception("the engine failed to start")
        return None, EngineError(f"the engine failed to start: {exc}")
