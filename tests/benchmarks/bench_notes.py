"""Long-note figures.

1. Memory: RSS while recording 2 hours of speech-like audio fed as fast as the recorder takes it
   (journal + segmenter + background transcription by a scripted engine + FLAC encoding), sampled
   every 5 minutes of audio. Goal: growth <= 20 MB.
2. Stop to ready: a 3-minute note through real faster-whisper (random-weight tiny model, beam 5,
   bounded tokens), fed at 4x, with and without transcription while recording; the wait after stop
   against the engine time for what was not transcribed yet.

Run: python tests/benchmarks/bench_notes.py [--hours H]   (prints figures; asserts nothing)"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

R = 16_000


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class SyntheticSpeech:
    """An endless talker (AudioSource API): 3-9 s 'sentences' of voiced, syllable-modulated tones
    with 0.4-3 s pauses, generated block by block so the source itself holds no audio."""

    def __init__(self, seconds: float, block_s: float = 0.5, seed: int = 0) -> None:
        self.total = int(seconds * R)
        self.block = int(block_s * R)
        self.pos = 0
        self.rng = np.random.default_rng(seed)
        self._plan: list[tuple[int, bool]] = []

    def start(self) -> None:
        pass

    def _segment(self) -> tuple[int, bool]:
        if not self._plan:
            talk = int(self.rng.uniform(3, 9) * R)
            pause = int(self.rng.uniform(0.4, 3.0) * R)
            self._plan = [(talk, True), (pause, False)]
        return self._plan[0]

    def read(self) -> np.ndarray:
        n = min(self.block, self.total - self.pos)
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n:
            length, voiced = self._segment()
            take = min(length, n - filled)
            if voiced:
                t = (self.pos + filled + np.arange(take)) / R
                f0 = 140 + 20 * np.sin(2 * np.pi * 0.3 * t)
                syll = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
                out[filled:filled + take] = (0.25 * syll * (np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(4 * np.pi * f0 * t)
                                                            + 0.25 * np.sin(6 * np.pi * f0 * t))).astype(np.float32)
            if take == length:
                self._plan.pop(0)
            else:
                self._plan[0] = (length - take, voiced)
            filled += take
        self.pos += n
        return out

    def stop(self) -> np.ndarray:
        return np.zeros(0, np.float32)

    @property
    def exhausted(self) -> bool:
        return self.pos >= self.total


def _env(root: Path) -> None:
    for name in ("CONFIG", "DATA", "CACHE", "LOG", "STATE"):
        os.environ[f"DICTATE_{name}_DIR"] = str(root / name.lower())


def bench_memory(hours: float) -> None:
    from dictate import config
    from dictate.notes import NoteJob, NoteRecorder
    from tests.support.tone_engine import ToneEngine

    with tempfile.TemporaryDirectory(prefix="bench-notes-") as tmp:
        _env(Path(tmp))
        cfg = config.load()
        job = NoteJob.from_config(cfg, engine="tone", model="tone", source="synthetic")
        source = SyntheticSpeech(hours * 3600)
        rec = NoteRecorder(source, cfg, job, ToneEngine, background=True)
        rec.open()
        samples: list[tuple[float, float]] = []
        next_mark = 0.0
        orig_read = source.read

        def read() -> np.ndarray:
            nonlocal next_mark
            if source.pos / R >= next_mark:
                samples.append((source.pos / R, rss_mb()))
                next_mark += 300.0
            return orig_read()

        source.read = read  # type: ignore[method-assign]
        t0 = time.perf_counter()
        rec.record()
        t1 = time.perf_counter()
        out = rec.finish()
        t2 = time.perf_counter()
        base = next((mb for s, mb in samples if s >= 300.0), samples[0][1])
        peak = max(mb for _, mb in samples)
        print(f"memory: recorded {hours:.1f} h of audio in {t1 - t0:.0f} s ({hours * 3600 / (t1 - t0):.0f}x real time)")
        print(f"memory: RSS at 5 min {base:.1f} MB, peak {peak:.1f} MB, at the end {samples[-1][1]:.1f} MB "
              f"-> growth {peak - base:.1f} MB (goal <= 20 MB)")
        print("memory: RSS by audio minute: " + ", ".join(f"{s / 60:.0f}:{mb:.0f}" for s, mb in samples[::4]))
        size = out.note.audio_path.stat().st_size / 1e6 if out.note and out.note.audio_path else float("nan")
        print(f"memory: note ready {t2 - t1:.1f} s after stop; {out.timings.get('remainder_audio_s', 0):.1f} s of audio "
              f"left at stop; FLAC {size:.0f} MB; {len(out.text.split())} words, status {out.status}")


def bench_stop_to_ready(minutes: float, speed: float) -> None:
    from dictate import config
    from dictate.audio.capture import FileSource
    from dictate.engines.faster import FasterWhisperEngine
    from dictate.notes import NoteJob, NoteRecorder
    from dictate.types import TranscribeOptions
    from tests.support.whisper_models import TINY, cached_ct2_model

    model = cached_ct2_model(TINY)
    audio = np.concatenate([SyntheticSpeech(minutes * 60, seed=1).read() for _ in range(int(minutes * 60 / 0.5))])
    for background in (True, False):
        with tempfile.TemporaryDirectory(prefix="bench-notes-") as tmp:
            _env(Path(tmp))
            cfg = config.load()
            base = TranscribeOptions(temperature=0.0, max_new_tokens=24, language="en")
            job = NoteJob.from_config(cfg, engine="faster-whisper", model=str(model), base=base, source="synthetic")
            rec = NoteRecorder(FileSource(audio, speed=speed), cfg, job,
                               lambda: FasterWhisperEngine(model, compute_type="int8"), background=background)
            rec.record()
            out = rec.finish()
            t = out.timings
            print(f"stop-to-ready ({'transcribing while recording' if background else 'all after stop'}): "
                  f"{minutes:.0f} min note at {speed:.0f}x: ready {t['stop_to_ready_s']:.2f} s after stop; "
                  f"engine time for the {t['remainder_audio_s']:.1f} s not yet transcribed: "
                  f"{t['remainder_engine_s']:.2f} s; whole-note engine time {out.note.meta['timings']['engine_s']:.2f} s "
                  f"over {out.note.meta['spans']} spans (beam {job.options.beam_size})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--speed", type=float, default=4.0)
    args = ap.parse_args()
    bench_memory(args.hours)
    bench_stop_to_ready(args.minutes, args.speed)


if __name__ == "__main__":
    main()
