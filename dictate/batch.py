"""Record-then-transcribe and file jobs: decode, transcribe with progress, hand back segments."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dictate.audio.files import decode
from dictate.engines import Engine, iter_segments
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, float], None]
"""Called with (seconds of audio transcribed so far, total seconds)."""


@dataclass(frozen=True)
class FileTranscript:
    path: Path
    segments: tuple[Segment, ...]
    duration_s: float
    decode_s: float  # wall time spent decoding
    transcribe_s: float  # wall time spent in the engine

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def transcribe_file(path: str | Path, engine: Engine, options: TranscribeOptions,
                    on_progress: ProgressCallback | None = None) -> FileTranscript:
    """Decode `path` (any format PyAV reads) and transcribe it. Raises AudioDecodeError for a bad
    file and EngineError when the engine fails."""
    path = Path(path)
    t0 = time.perf_counter()
    audio = decode(path)
    t1 = time.perf_counter()
    duration = audio.size / SAMPLE_RATE_HZ
    segments: list[Segment] = []
    for seg in iter_segments(engine, audio, options):
        segments.append(seg)
        if on_progress is not None:
            on_progress(min(seg.end_s, duration), duration)
    if on_progress is not None:
        on_progress(duration, duration)
    t2 = time.perf_counter()
    log.info("%s: %.1f s of audio, decoded in %.2f s, transcribed in %.2f s", path, duration, t1 - t0, t2 - t1)
    return FileTranscript(path, tuple(segments), duration, t1 - t0, t2 - t1)
