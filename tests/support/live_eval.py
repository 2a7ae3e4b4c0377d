"""Measuring the live path against offline transcription on real Whisper weights, for the tests
and the accuracy benchmark.

- `offline_text`: the engine on the whole recording, beam 5 (bare faster-whisper for that engine).
- `virtual_run`: the StreamingSession with the real engine, in virtual time: audio arrives at real
  pace and each window "takes" `cost(window_s)` seconds, so the figures do not depend on what else
  the machine is doing, while every hypothesis is real Whisper's.
- `realtime_run`: the threaded live loop (FileSource at real-time pace -> EngineWorker), as
  `dictate listen --input` runs it.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dictate.config import EngineConfig
from dictate.streaming import StreamingParams, StreamingSession
from dictate.types import TranscribeOptions
from tests.support import wer
from tests.support.scripted_engine import simulate
from tests.support.speech import Recording


def cpu_cost(window_s: float, encoder_s: float = 30.0) -> float:
    """Engine seconds for one live window of tiny.en on this 2-core CPU: decoding in proportion
    to the window, and the encoder's self-attention in the square of its input (30 s unless the
    window is encoded with less padding). Fitted to windows of 2-20 s here, rms 0.06 s."""
    return 0.10 + 0.046 * window_s + 0.00066 * encoder_s ** 2


def fast_cost(window_s: float, encoder_s: float = 30.0) -> float:
    """A machine about five times faster (a GPU, or a bigger CPU)."""
    return 0.03 + 0.01 * window_s + 0.00008 * encoder_s ** 2


CPU_COST, FAST_COST = cpu_cost, fast_cost

# The product's live options: English, the configured live beam.
OPTIONS = TranscribeOptions(language="en", beam_size=EngineConfig().live_beam_size)


@dataclass
class LiveFigures:
    name: str
    offline: wer.Score
    live: wer.Score
    text: str
    latencies_s: list[float] = field(default_factory=list)
    final_latency_s: float = 0.0
    busy_ratio: float = 0.0
    discarded_s: float = 0.0
    windows: int = 0
    max_window_s: float = 0.0

    @property
    def ratio(self) -> float:
        return self.live.wer / self.offline.wer if self.offline.wer else float("inf") if self.live.wer else 1.0

    def within_bound(self) -> bool:
        """Live loses nothing that offline keeps: its errors are at most 1.05 x offline's + 1 word."""
        return self.live.errors <= 1.05 * self.offline.errors + 1

    def latency(self, q: float) -> float:
        if not self.latencies_s:
            return 0.0
        xs = sorted(self.latencies_s)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    @property
    def median_latency_s(self) -> float:
        return statistics.median(self.latencies_s) if self.latencies_s else 0.0


def offline_text(engine, audio: np.ndarray, language: str = "en") -> str:
    segments = engine.transcribe(audio, TranscribeOptions(language=language, beam_size=5))
    return "".join(s.text for s in segments)


def note_pass_text(engine, audio: np.ndarray, language: str = "en") -> str:
    """A long note's record-then-transcribe pass as the product runs it: spans cut at pauses,
    beam 5, the text so far as each span's prompt, paragraphs joined."""
    from dictate.audio.segmenter import segment
    from dictate.longform import SpanTranscriber, build_paragraphs, pass_options

    transcriber = SpanTranscriber(engine.transcribe, pass_options(TranscribeOptions(language=language), 5))
    results = [transcriber(span, audio[span.start:span.end]) for span in segment(audio)]
    return " ".join(p.text for p in build_paragraphs(results, 2.0))


def virtual_run(engine, rec: Recording, offline: str, *, params: StreamingParams | None = None,
                cost: Callable[[float, float], float] = CPU_COST) -> LiveFigures:
    params = params or StreamingParams()
    session = StreamingSession(params, OPTIONS)
    session.prompting = getattr(engine, "live_prompt", True)  # as the live loop sets it
    shortens = type(engine).__name__ == "FasterWhisperEngine"  # whisper.cpp encodes 30 s always

    def window_cost(window) -> float:
        pad = window.options.encoder_pad_s if shortens else None
        return cost(window.duration_s, 30.0 if pad is None else min(30.0, window.duration_s + pad))

    result = simulate(session, rec.audio, engine, window_cost=window_cost)
    text = "".join(w.text for w in result.committed)
    return LiveFigures(rec.spec.name, wer.score(rec.text, offline), wer.score(rec.text, text), text,
                       result.commit_latencies_s, result.final_latency_s, result.busy_s / rec.duration_s,
                       session.discarded_s, result.windows, result.max_window_s)


def realtime_run(engine, rec: Recording, offline: str, wav: Path, *, params: StreamingParams | None = None,
                 speed: float = 1.0) -> tuple[LiveFigures, object]:
    """The threaded loop on `wav` (the recording written as a file) at `speed` x real time."""
    from dictate.audio.capture import FileSource
    from dictate.live import LiveTranscriber
    from dictate.worker import EngineWorker

    session = StreamingSession(params or StreamingParams(), OPTIONS)
    committed = []
    with EngineWorker(engine) as worker:
        stats = LiveTranscriber(FileSource(wav, speed=speed), worker, session,
                                on_commit=lambda c: committed.extend(c.words)).run(threading.Event())
    text = "".join(w.text for w in committed)
    figures = LiveFigures(rec.spec.name, wer.score(rec.text, offline), wer.score(rec.text, text), text,
                          stats.commit_latencies_s, stats.final_latency_s or 0.0,
                          stats.engine_busy_s / max(1e-9, stats.duration_s / speed), stats.audio_discarded_s,
                          stats.windows, stats.max_window_s)
    return figures, stats


def write_wav(audio: np.ndarray, path: Path) -> Path:
    """16-bit PCM, as a microphone would deliver it."""
    import wave

    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(pcm.tobytes())
    return path


def make_engine(name: str):
    """tiny.en on the named engine (the whisper.cpp file converted from the same weights)."""
    from tests.support.real_models import tiny_en_ct2, tiny_en_ggml

    if name == "faster-whisper":
        from dictate.engines.faster import FasterWhisperEngine

        return FasterWhisperEngine(str(tiny_en_ct2()), device="cpu", compute_type="int8")
    from dictate.engines.whispercpp import WhisperCppEngine

    return WhisperCppEngine(str(tiny_en_ggml()))


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.support.live_eval ENGINE NAME[:SECONDS] ...`: one JSON line per recording.
    Each engine runs in a process of its own (faster-whisper's and whisper.cpp's OpenMP runtimes
    slow each other down when they share one)."""
    import json
    import sys

    from tests.support import speech

    args = sys.argv[1:] if argv is None else argv
    engine = make_engine(args[0])
    for item in args[1:]:
        name, _, seconds = item.partition(":")
        spec = speech.RECORDINGS[name]
        rec = speech.build(speech.short(spec, float(seconds)) if seconds else spec)
        offline = offline_text(engine, rec.audio)
        f = virtual_run(engine, rec, offline)
        print(json.dumps({
            "name": rec.spec.name, "duration_s": rec.duration_s, "longest_run_s": rec.longest_run_s(),
            "reference": rec.text, "offline": offline, "live": f.text,
            "offline_errors": f.offline.errors, "live_errors": f.live.errors, "offline_wer": f.offline.wer,
            "offline_deletions": f.offline.deletions, "offline_insertions": f.offline.insertions,
            "live_wer": f.live.wer, "deletions": f.live.deletions, "insertions": f.live.insertions,
            "discarded_s": f.discarded_s, "max_window_s": f.max_window_s, "windows": f.windows,
            "within_bound": f.within_bound(), "median_latency_s": f.median_latency_s, "p90_latency_s": f.latency(0.9),
        }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
