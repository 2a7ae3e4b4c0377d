"""The files queue behind the files window: jobs with per-file state, progress from the segments
as they decode, elapsed time and ETA, and a cancel that takes effect at once.

    q = FileQueue(cfg, worker=controller.worker, engine=controller.loader, on_update=callback)
    jobs = q.add([Path("talk.mp3"), Path("recordings/")], JobOptions(formats=("srt", "txt")))
    jobs[0].cancel()
    q.close()

Threads: `dictate-files` takes the jobs in order, decodes each and hands it to an engine worker
(the app's shared `dictate-engine` by default, behind live dictation; a job that asks for another
engine or model gets a worker of its own, kept for the next job that asks the same). `on_update(job)`
is called on `dictate-files` or on the engine's thread: keep it short (post it on).

Cancel: the job ends at once (it stops waiting for the engine; nothing is written, since outputs
are written only for a complete transcript); the engine drops the job at its next segment.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from dictate.batch import (BATCH_SIZE, FileCancelled, FileTranscript, OutputConflict, check_targets, decode_cancellable,
                           metadata, output_names, output_targets, remember, served_by, write_outputs)
from dictate.config import Config
from dictate.engines import iter_segments
from dictate.errors import DictateError, EngineError
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions
from dictate.worker import EngineWorker, Priority

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often a waiting job looks at its cancel flag
DEFAULT_FORMATS = ("txt", "srt")
MEDIA_SUFFIXES = frozenset(
    ".wav .mp3 .flac .ogg .oga .opus .m4a .aac .wma .aif .aiff .amr .mka .mp4 .m4v .mkv .webm .mov .avi .3gp"
    .split())
OVERWRITE_HINT = "tick “Replace existing files” to replace it"


class JobState:
    QUEUED = "queued"
    DECODING = "decoding"
    TRANSCRIBING = "transcribing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FINISHED = (DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class JobOptions:
    """Per-job choices; None means the config's (or, for out_dir, the folder of each file)."""

    engine: str | None = None
    model: str | None = None
    language: str | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    out_dir: Path | None = None
    overwrite: bool = False


@dataclass(eq=False)
class FileJob:
    id: int
    path: Path
    opts: JobOptions
    out_name: str  # outputs are out_dir / f"{out_name}.{format}"
    state: str = JobState.QUEUED
    done_s: float = 0.0  # audio transcribed so far
    total_s: float = 0.0
    started_at: float | None = None  # time.monotonic()
    transcribe_started_at: float | None = None
    finished_at: float | None = None
    result: FileTranscript | None = None
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    history_id: str | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def out_dir(self) -> Path:
        return self.opts.out_dir or self.path.parent

    @property
    def targets(self) -> list[Path]:
        return output_targets(self.out_name, self.opts.formats, self.out_dir)

    @property
    def finished(self) -> bool:
        return self.state in JobState.FINISHED

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def fraction(self) -> float:
        if self.state == JobState.DONE:
            return 1.0
        return min(1.0, self.done_s / self.total_s) if self.total_s > 0 else 0.0

    def elapsed_s(self, now: float | None = None) -> float:
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else (time.monotonic() if now is None else now)
        return max(0.0, end - self.started_at)

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left at the pace so far (None before the first segment)."""
        if self.state != JobState.TRANSCRIBING or self.transcribe_started_at is None or self.done_s <= 0:
            return None
        now = time.monotonic() if now is None else now
        pace = (now - self.transcribe_started_at) / self.done_s  # wall seconds per audio second
        return max(0.0, (self.total_s - self.done_s) * pace)

    def cancel(self) -> None:
        self._cancel.set()


class SegmentTap:
    """Stands in front of a worker's engine so that a file job sees its segments as they decode
    (the worker itself hands them over only when the job is done). Jobs are told apart by their
    audio array, which the worker passes to the engine as it was submitted."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._taps: dict[int, Callable[[Segment], None]] = {}

    def watch(self, audio: Any, callback: Callable[[Segment], None]) -> None:
        self._taps[id(audio)] = callback

    def unwatch(self, audio: Any) -> None:
        self._taps.pop(id(audio), None)

    def transcribe(self, audio, options: TranscribeOptions) -> list[Segment]:
        return list(self.transcribe_iter(audio, options))

    def transcribe_iter(self, audio, options: TranscribeOptions):
        tap = self._taps.get(id(audio))
        for seg in iter_segments(self._engine, audio, options):
            if tap is not None:
                try:
                    tap(seg)
                except Exception:  # a listener's bug must not stop the engine
                    log.exception("file job progress listener failed")
            yield seg

    def __getattr__(self, name: str) -> Any:
        # live_prompt, active_name, model_path: whatever the engine behind says
        return getattr(self.__dict__["_engine"], name)


class BuiltOnEngineThread:
    """An engine built by its first job, on the worker's own thread. Why not a loader thread:
    CTranslate2 (OpenMP) keeps its thread pool with the thread that first used it, and with Qt in
    the process a model built on a thread that then exited ran 7-17 times slower here (60 s of
    speech on tiny.en: 40-106 s instead of 6 s); on the thread that keeps it, it runs at full speed."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._engine: Any = None

    def _get(self) -> Any:
        if self._engine is None:
            try:
                self._engine = self._factory()
            except EngineError:
                raise
            except DictateError as exc:  # a missing model: the job fails with that one line
                raise EngineError(str(exc)) from exc
        return self._engine

    def transcribe(self, audio, options: TranscribeOptions) -> list[Segment]:
        return list(self.transcribe_iter(audio, options))

    def transcribe_iter(self, audio, options: TranscribeOptions):
        yield from iter_segments(self._get(), audio, options)

    def __getattr__(self, name: str) -> Any:
        engine = self.__dict__.get("_engine")
        if engine is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(engine, name)


_tap_lock = threading.Lock()


def tap_of(worker: EngineWorker) -> SegmentTap:
    """The worker's engine wrapped once in a SegmentTap (jobs already queued see it too)."""
    with _tap_lock:
        if not isinstance(worker.engine, SegmentTap):
            worker.engine = SegmentTap(worker.engine)
        return worker.engine


def transcribe_on_worker(worker: EngineWorker, path: Path, options: TranscribeOptions, *,
                         cancel: threading.Event | None = None,
                         on_progress: Callable[[float, float], None] | None = None,
                         on_decoded: Callable[[float], None] | None = None,
                         engine_name: str | None = None, model: str | None = None) -> FileTranscript:
    """One file as a batch job on `worker` (after any live work). Raises FileCancelled within
    POLL_S of `cancel` being set, AudioDecodeError, EngineError."""
    cancel = cancel or threading.Event()
    path = Path(path)
    t0 = time.perf_counter()
    audio = decode_cancellable(path, cancel.is_set)
    t1 = time.perf_counter()
    duration = audio.size / SAMPLE_RATE_HZ
    if on_decoded is not None:
        on_decoded(duration)
    tap = tap_of(worker)
    if on_progress is not None:
        tap.watch(audio, lambda seg: on_progress(min(seg.end_s, duration), duration))
    try:
        job = worker.submit(audio, options, priority=Priority.BATCH)
        while not job.wait(POLL_S):
            if cancel.is_set():
                job.cancel()  # the engine drops it at its next segment
                raise FileCancelled(f"{path.name}: cancelled")
        if cancel.is_set():
            raise FileCancelled(f"{path.name}: cancelled")
        segments = job.result()
    finally:
        tap.unwatch(audio)
    t2 = time.perf_counter()
    if on_progress is not None:
        on_progress(duration, duration)
    served, served_model = served_by(worker.engine, engine_name, model)
    log.info("%s: %.1f s of audio, decoded in %.2f s, transcribed in %.2f s", path, duration, t1 - t0, t2 - t1)
    return FileTranscript(path, tuple(segments), duration, t1 - t0, t2 - t1, served, served_model)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the media files inside folders (recursively, sorted by path)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES))
        else:
            out.append(p)
    return out


def file_options(cfg: Config, language: str | None = None) -> TranscribeOptions:
    """What `dictate transcribe` uses by default (beam 5, VAD on, batched), so both give the same text."""
    return TranscribeOptions(language=language or cfg.engine.language or None, hotwords=tuple(cfg.engine.hotwords),
                             beam_size=5, vad_filter=True, batch_size=BATCH_SIZE)


class FileQueue:
    """See the module docstring. Without `worker`, the queue loads the config's engine on a
    worker of its own (`dictate files` without the app)."""

    def __init__(self, cfg: Config, *, worker: EngineWorker | None = None, engine_name: str | None = None,
                 model: str | None = None, on_update: Callable[[FileJob], None] | None = None,
                 base_options: TranscribeOptions | None = None, keep_history: bool = True) -> None:
        self.cfg = cfg
        self.engine_name = engine_name or cfg.engine.name
        self.model = str(model or cfg.engine.model)
        self.base_options = base_options
        self.keep_history = keep_history
        self._on_update = on_update
        self._default_worker = worker
        self._own_workers: dict[tuple[str, str], EngineWorker] = {}
        self._ids = itertools.count(1)
        self.jobs: list[FileJob] = []
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="dictate-files", daemon=True)
        self._thread.start()

    # -- any thread -----------------------------------------------------------------------------
    def add(self, paths: Iterable[Path], opts: JobOptions | None = None) -> list[FileJob]:
        opts = opts or JobOptions()
        files = expand(paths)
        # Names already promised to other files in the queue; the same file added again keeps
        # its name (and a failed or cancelled job promised nothing).
        taken = {(j.out_dir.resolve(), j.out_name.casefold()): j.path.resolve() for j in self.jobs
                 if j.state not in (JobState.FAILED, JobState.CANCELLED)}
        new = []
        for path, name in zip(files, output_names(files)):
            job = FileJob(next(self._ids), path, opts, name)
            others = {k for k, p in taken.items() if p != path.resolve()}
            job.out_name = _unique(path, name, job.out_dir.resolve(), others)
            taken[(job.out_dir.resolve(), job.out_name.casefold())] = path.resolve()
            new.append(job)
        self.jobs.extend(new)
        for job in new:
            self._queue.put(job)
            self._update(job)
        return new

    def cancel(self, job: FileJob) -> None:
        if job.finished:
            return
        job.cancel()
        if job.state == JobState.QUEUED:  # never started: it ends here and now
            self._finish(job, JobState.CANCELLED)

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once every job added so far has finished."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not all(j.finished for j in self.jobs):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        for job in self.jobs:
            self.cancel(job)
        self._queue.put(None)
        self._thread.join(timeout_s)
        for worker in self._own_workers.values():
            worker.close(timeout_s=0.5)

    # -- dictate-files thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.finished:
                continue
            try:
                self._do(job)
            except FileCancelled:
                self._finish(job, JobState.CANCELLED)
            except DictateError as exc:
                self._finish(job, JobState.FAILED, str(exc))
            except Exception as exc:  # a bug: the queue goes on with the next file
                log.exception("file job %s failed", job.path)
                self._finish(job, JobState.FAILED, f"{job.path.name}: {exc}")

    def _do(self, job: FileJob) -> None:
        job.started_at = time.monotonic()
        job.state = JobState.DECODING
        self._update(job)
        check_targets(job.targets, job.path, overwrite=job.opts.overwrite, hint=OVERWRITE_HINT)
        worker, name, model = self._worker_for(job.opts)
        options = self.base_options or file_options(self.cfg)
        if job.opts.language:
            options = dataclasses.replace(options, language=job.opts.language)

        def decoded(total_s: float) -> None:
            job.total_s, job.state, job.transcribe_started_at = total_s, JobState.TRANSCRIBING, time.monotonic()
            self._update(job)

        def progress(done_s: float, total_s: float) -> None:
            job.done_s = max(job.done_s, done_s)
            self._update(job)

        result = transcribe_on_worker(worker, job.path, options, cancel=job._cancel, on_progress=progress,
                                      on_decoded=decoded, engine_name=name, model=model)
        if job.cancelled:
            raise FileCancelled(f"{job.path.name}: cancelled")
        job.result = result
        job.outputs = write_outputs(result, job.opts.formats, job.out_dir, job.out_name,
                                    metadata(result, options), overwrite=job.opts.overwrite, hint=OVERWRITE_HINT)
        if self.keep_history:
            job.history_id = remember(self.cfg.paths.history_db, result, options, outputs=job.outputs)
        self._finish(job, JobState.DONE)

    def _worker_for(self, opts: JobOptions) -> tuple[EngineWorker, str, str]:
        name = opts.engine or self.engine_name
        model = str(opts.model or self.model)
        if (name, model) == (self.engine_name, self.model):
            if self._default_worker is None:  # the config's chain unless this queue was given another
                self._default_worker = self._new_worker(
                    None if name == self.cfg.engine.name else name, None if model == str(self.cfg.engine.model) else model)
            return self._default_worker, name, model
        key = (name, model)
        if key not in self._own_workers:
            self._own_workers[key] = self._new_worker(name, model)
        return self._own_workers[key], name, model

    def _new_worker(self, engine: str | None, model: str | None) -> EngineWorker:
        from dictate.controller import make_engine_factory

        return EngineWorker(BuiltOnEngineThread(make_engine_factory(self.cfg, engine, model)),
                            name=f"dictate-engine-files-{len(self._own_workers) + 1}")

    def _finish(self, job: FileJob, state: str, error: str | None = None) -> None:
        if job.finished:
            return
        job.state, job.error, job.finished_at = state, error, time.monotonic()
        if job.started_at is None:
            job.started_at = job.finished_at
        self._update(job)

    def _update(self, job: FileJob) -> None:
        if self._on_update is not None:
            try:
                self._on_update(job)
            except Exception:
                log.exception("file queue listener failed")


def _unique(path: Path, name: str, out_dir: Path, taken: set[tuple[Path, str]]) -> str:
    """`name`, unless an earlier job in the queue writes it into the same folder: then the whole
    file name, then " (2)", " (3)"… (as `output_names` does within one batch)."""
    candidates = [name, path.name] + [f"{path.name} ({n})" for n in range(2, 10_000)]
    for candidate in candidates:
        if (out_dir, candidate.casefold()) not in taken:
            return candidate
    raise DictateError(f"{path.name}: too many outputs of that name")  # pragma: no cover
