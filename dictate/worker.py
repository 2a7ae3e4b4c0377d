"""EngineWorker: the one thread that owns the model. Callers submit jobs and get results by
callback or by waiting on the job; live (voice typing) jobs always go before batch jobs.

    worker = EngineWorker(engine)
    job = worker.submit(audio, options, priority=Priority.LIVE, on_done=callback)
    segments = job.result(timeout_s=10)     # or let `on_done(job)` pick it up
    job.cancel()                            # a queued job never runs; a running one is
                                            # abandoned between segments
    worker.close()

`on_done(job)` runs on the engine thread: keep it short (put the job on a queue.Queue).
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import threading
import time
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from dictate.engines import Engine, iter_segments
from dictate.errors import EngineError
from dictate.types import Segment, TranscribeOptions

log = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    LIVE = 0  # lower runs first
    BATCH = 1


class JobCancelled(Exception):
    """The job was cancelled before it produced its result."""


class Job:
    """A submitted transcription. `result()` returns the segments or raises the engine's error."""

    def __init__(self, audio: NDArray[np.float32], options: TranscribeOptions, priority: Priority,
                 on_done: Callable[["Job"], None] | None, tag: object) -> None:
        self.audio = audio
        self.options = options
        self.priority = priority
        self.tag = tag  # whatever the caller wants back (a window, a segment index)
        self._on_done = on_done
        self._done = threading.Event()
        self._cancelled = threading.Event()
        self._segments: list[Segment] | None = None
        self._error: BaseException | None = None
        self.engine_s = 0.0  # wall time the engine spent on this job

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)

    def result(self, timeout_s: float | None = None) -> list[Segment]:
        if not self._done.wait(timeout_s):
            raise TimeoutError("the engine has not finished this job yet")
        if self._error is not None:
            raise self._error
        assert self._segments is not None
        return self._segments

    def _finish(self, segments: list[Segment] | None, error: BaseException | None) -> None:
        self._segments, self._error = segments, error
        self._done.set()
        if self._on_done is not None:
            try:
                self._on_done(self)
            except Exception:  # a broken callback must not kill the engine thread
                log.exception("engine worker: on_done callback failed")


_STOP = object()


class EngineWorker:
    """Owns `engine` on a thread named `dictate-engine`; jobs run one at a time, LIVE first."""

    def __init__(self, engine: Engine, name: str = "dictate-engine") -> None:
        self.engine = engine
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self.busy_s = 0.0  # total wall time spent in the engine
        self.jobs_run = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, audio: NDArray[np.float32], options: TranscribeOptions, *, priority: Priority = Priority.LIVE,
               on_done: Callable[[Job], None] | None = None, tag: object = None) -> Job:
        if self._closed:
            raise EngineError("the engine has been shut down")
        job = Job(audio, options, priority, on_done, tag)
        self._queue.put((int(priority), next(self._seq), job))
        return job

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            _prio, _seq, job = self._queue.get()
            if job is _STOP:
                return
            if job.cancelled:
                job._finish(None, JobCancelled())
                continue
            t0 = time.perf_counter()
            segments: list[Segment] = []
            error: BaseException | None = None
            try:
                for seg in iter_segments(self.engine, job.audio, job.options):
                    segments.append(seg)
                    if job.cancelled:
                        error = JobCancelled()
                        break
            except EngineError as exc:
                error = exc
            except Exception as exc:  # third-party engines: report, keep the thread alive
                log.exception("engine failed")
                error = EngineError(f"the engine failed: {exc}")
            job.engine_s = time.perf_counter() - t0
            self.busy_s += job.engine_s
            self.jobs_run += 1
            job._finish(None if error else segments, error)

    def close(self, timeout_s: float | None = None) -> None:
        """Finish the jobs already queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put((99, next(self._seq), _STOP))
        self._thread.join(timeout_s)

    def __enter__(self) -> "EngineWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
