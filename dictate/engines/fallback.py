"""An ordered chain of engines: when one is unreachable the next takes the job, and the user is
told once. Engines are built lazily, so a chain such as ["remote", "faster-whisper"] loads the local
model only when the server is actually down."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from dictate.errors import DictateError, EngineError
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions

log = logging.getLogger(__name__)


class EngineUnavailableError(EngineError):
    """The engine cannot serve right now (server unreachable, timed out, rate-limited, key
    rejected, bad answer): another engine may take the job."""


EngineFactory = Callable[[], object]
NoticeCallback = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    name: str
    factory: EngineFactory


class FallbackEngine:
    """Tries the candidates in order. A failure to build an engine (missing model, no backend) or
    an EngineUnavailableError while transcribing moves on to the next; other errors (bad audio,
    a bug) propagate. After a switch, the first candidate is tried again once `retry_after_s`
    has passed, so a server that comes back is used again."""

    name = "fallback"

    def __init__(self, candidates: Sequence[Candidate | tuple[str, EngineFactory]], *,
                 notice: NoticeCallback | None = None, retry_after_s: float = 300.0) -> None:
        self.candidates = [c if isinstance(c, Candidate) else Candidate(*c) for c in candidates]
        if not self.candidates:
            raise EngineError("no engine to try: the engine list is empty")
        self._engines: dict[int, object] = {}
        self._active = 0
        self._switched_at = 0.0
        self._told: set[str] = set()
        self.notice = notice
        self.retry_after_s = retry_after_s

    @property
    def live_prompt(self) -> bool:
        """Whether the engine doing the work takes a prompt in live windows (see the streaming session)."""
        return getattr(self._engines.get(self._active), "live_prompt", True)

    @property
    def active_name(self) -> str:
        return self.candidates[self._active].name

    @property
    def model_path(self) -> str:
        """What the serving engine reports as its model (for transcript metadata)."""
        built = self._engines.get(self._active)
        return str(getattr(built, "model_path", self.active_name))

    def engine(self, index: int) -> object:
        if index not in self._engines:
            self._engines[index] = self.candidates[index].factory()
        return self._engines[index]

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list[Segment]:
        return list(self.transcribe_iter(audio, options))

    def transcribe_iter(self, audio: NDArray[np.float32], options: TranscribeOptions) -> Iterator[Segment]:
        """Segments as the serving engine produces them. If an engine fails half-way through, the
        next one resumes after the last segment already delivered: nothing is said twice and no
        audio is lost."""
        done_s = 0.0
        last_error: DictateError | None = None
        for index in self._order():
            candidate = self.candidates[index]
            base_s = done_s  # this engine's audio starts here in the caller's clock
            rest = audio[int(round(base_s * SAMPLE_RATE_HZ)):] if base_s > 0 else audio
            try:
                engine = self.engine(index)
                it = getattr(engine, "transcribe_iter", None)
                segments = it(rest, options) if callable(it) else iter(engine.transcribe(rest, options))
                for seg in segments:
                    seg = seg.shifted(base_s) if base_s > 0 else seg
                    yield seg
                    # The next engine starts after the last delivered segment.
                    resume_s = max(seg.end_s, 0.0)
                    if resume_s > done_s:
                        done_s = resume_s
            except EngineUnavailableError as exc:
                last_error = exc
                self._switch_from(index, exc)
                continue
            except DictateError as exc:
                if index in self._engines:
                    raise  # the engine exists and failed on this audio: not a reachability problem
                last_error = exc
                self._switch_from(index, exc)
                continue
            if index != self._active:
                if index == 0:
                    log.info("%s is available again", candidate.name)
                self._active = index
            return
        assert last_error is not None
        names = ", ".join(c.name for c in self.candidates)
        raise EngineError(f"no engine could take the job (tried {names}); last: {last_error}") from last_error

    def _order(self) -> list[int]:
        """The active engine first, unless it is time to give the preferred one another chance."""
        n = len(self.candidates)
        start = self._active
        if start != 0 and time.monotonic() - self._switched_at >= self.retry_after_s:
            start = 0
        return list(range(start, n))

    def _switch_from(self, index: int, exc: DictateError) -> None:
        self._switched_at = time.monotonic()
        if index + 1 >= len(self.candidates):
            return
        name, nxt = self.candidates[index].name, self.candidates[index + 1].name
        if name in self._told:
            log.info("%s still unavailable (%s); using %s", name, exc, nxt)
            return
        self._told.add(name)
        message = f"{name} is unavailable ({exc}); using {nxt} instead"
        log.warning("%s", message)
        if self.notice is not None:
            try:
                self.notice(message)
            except Exception:  # a broken listener must not stop the job
                log.exception("fallback notice callback failed")
