"""The live loop: a source (Microphone or FileSource) through a StreamingSession and an
EngineWorker, committed text out by callback. Runs on the calling thread (the controller's or the
CLI's); the engine works on its own thread and answers through a queue, so capture never waits.

    stats = LiveTranscriber(source, worker, session, on_commit=print).run(stop_event)
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from dictate.errors import AudioDeviceError, EngineError
from dictate.streaming import Commit, StreamingSession, Window
from dictate.types import SAMPLE_RATE_HZ, Word
from dictate.worker import EngineWorker, Job, JobCancelled

log = logging.getLogger(__name__)

POLL_S = 0.01  # how often the ring is looked at while waiting for the engine


@dataclass
class LiveStats:
    samples_captured: int = 0
    samples_lost: int = 0
    overflows: int = 0
    windows: int = 0
    max_window_s: float = 0.0
    engine_busy_s: float = 0.0
    commit_latencies_s: list[float] = field(default_factory=list)  # word end (captured) -> committed
    final_latency_s: float | None = None  # end of input -> final text
    final_engine_s: float | None = None  # engine time of the last window
    duration_s: float = 0.0  # audio seen by the session
    audio_discarded_s: float = 0.0  # speech the session let go unheard (it must stay 0)
    device_error: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["commit_latencies_s"] = [round(x, 4) for x in self.commit_latencies_s]
        return d


class LiveTranscriber:
    """Drives one live session from start to the final text."""

    def __init__(self, source, worker: EngineWorker, session: StreamingSession,
                 on_commit: Callable[[Commit], None], on_partial: Callable[[list[Word]], None] | None = None) -> None:
        self.source = source
        self.worker = worker
        self.session = session
        self.on_commit = on_commit
        self.on_partial = on_partial
        self.stats = LiveStats()
        self._results: queue.Queue[Job] = queue.Queue()

    def run(self, stop: threading.Event | None = None) -> LiveStats:
        """Until `stop` is set or the source runs out; then the uncommitted tail is transcribed.
        An engine failure raises EngineError after capture has stopped; a device failure ends the
        input (what was captured is still transcribed) and is noted in the stats."""
        stop = stop or threading.Event()
        session, source = self.session, self.source
        busy_before = self.worker.busy_s
        end_of_input: float | None = None
        job: Job | None = None
        source.start()
        try:
            while not session.done:
                try:
                    finished = self._results.get(timeout=POLL_S)
                except queue.Empty:
                    finished = None
                if not session.finishing:
                    try:
                        session.feed(source.read())
                    except AudioDeviceError as exc:
                        log.error("%s", exc)
                        self.stats.device_error = str(exc)
                        stop.set()
                    if stop.is_set() or source.exhausted:
                        session.feed(source.stop())
                        end_of_input = self._end_of_input(stop.is_set())
                        session.finish()
                        log.debug("live: input ended at %.2f s; engine %s", session.duration_s,
                                  "busy" if job is not None else "idle")
                if finished is not None:
                    job = None
                    self._handle(finished)
                if job is None and not session.done:
                    session.prompting = getattr(self.worker.engine, "live_prompt", True)
                    window = session.next_window()
                    if window is not None:
                        job = self.worker.submit(window.audio, window.options, on_done=self._results.put, tag=window)
        finally:
            if not session.finishing:
                source.stop()
            if job is not None and not job.done:
                job.cancel()
        s = self.stats
        if end_of_input is not None:
            s.final_latency_s = max(0.0, time.perf_counter() - end_of_input)
        cs = source.stats()
        s.samples_captured, s.samples_lost, s.overflows = cs.samples_captured, cs.samples_lost, cs.overflows
        s.windows, s.max_window_s = session.windows, session.max_window_s
        s.engine_busy_s = self.worker.busy_s - busy_before
        s.duration_s = session.duration_s
        s.audio_discarded_s = session.discarded_s
        return s

    def _end_of_input(self, stopped: bool) -> float:
        """When the input ended: now for a stop, or when the file's last sample was 'captured'."""
        if stopped:
            return time.perf_counter()
        return self.source.capture_time(self.source.samples_out)

    def _handle(self, job: Job) -> None:
        window: Window = job.tag
        try:
            segments = job.result()
        except JobCancelled:
            self.session.on_error(window)
            return
        except EngineError:
            self.session.on_error(window)
            raise
        commits = self.session.on_result(window, segments, job.engine_s)
        now = time.perf_counter()
        if self.session.finishing:
            log.debug("live: window %.2f-%.2f s took %.2f s (%s)", window.start_s, window.end_s, job.engine_s,
                      "final" if self.session.done else "after the end of input")
        if self.session.done:
            self.stats.final_engine_s = job.engine_s
        for commit in commits:
            for w in commit.words:
                captured = self.source.capture_time(int(w.end_s * SAMPLE_RATE_HZ))
                self.stats.commit_latencies_s.append(max(0.0, now - captured))
            self.on_commit(commit)
        if self.on_partial is not None:
            self.on_partial(self.session.tentative)
