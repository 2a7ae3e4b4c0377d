"""Cut a long recording into engine-sized spans at natural pauses, as the audio arrives.

Whisper reads 30 s windows and its encoder costs the same for 3 s as for 30 s, so spans are grouped
up to `target_s` of audio and always end in a pause of at least `pause_s`; a pause of `split_pause_s`
ends a span early once it holds `min_group_s`, so text is ready soon after the speaker stops. Only
continuous speech without any such pause for `max_s` is cut elsewhere: at the longest non-speech
moment, else the quietest frame (and the span says so). Silence between spans is left out.

The same object serves the background pass while recording and the pass after stop, so both cut
in the same places. Memory is bounded by `max_s` of frame flags, however long the recording."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dictate.audio import vad
from dictate.types import SAMPLE_RATE_HZ

FRAME = vad.FRAME_SAMPLES


@dataclass(frozen=True)
class Span:
    """Samples [start, end) from the start of the recording; speech_* are the VAD's speech edges."""

    start: int
    end: int
    speech_start: int
    speech_end: int
    forced: bool = False  # cut in continuous speech: no pause within max_s

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE_HZ

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE_HZ


@dataclass(frozen=True)
class SegmenterParams:
    pause_s: float = 0.5  # the shortest silence that counts as a pause (cuts happen only in pauses)
    split_pause_s: float = 1.5  # a pause this long ends a span holding at least min_group_s
    min_group_s: float = 5.0
    target_s: float = 20.0  # at any pause, a span this long is ended
    max_s: float = 28.0  # never longer (Whisper's window is 30 s)
    pad_s: float = 0.2  # silence kept around speech
    min_speech_s: float = 0.09  # shorter bursts are clicks, not speech
    aggressiveness: int = vad.DEFAULT_AGGRESSIVENESS

    def __post_init__(self) -> None:
        if self.pause_s < 2 * self.pad_s:
            raise ValueError("pause_s must be at least twice pad_s so padded spans never overlap")
        if not (self.pause_s <= self.split_pause_s and self.min_group_s <= self.target_s < self.max_s):
            raise ValueError("need pause_s <= split_pause_s and min_group_s <= target_s < max_s")


class Segmenter:
    """Feed audio in any chunk size; get the spans whose end is decided. One thread uses it."""

    def __init__(self, params: SegmenterParams | None = None) -> None:
        self.p = params or SegmenterParams()
        f = vad.frames
        self._pause_f = f(self.p.pause_s)
        self._split_f = f(self.p.split_pause_s)
        self._min_group_f = f(self.p.min_group_s)
        self._target_f = f(self.p.target_s)
        self._max_f = f(self.p.max_s)
        self._pad_f = f(self.p.pad_s)
        self._vad = vad._vad(self.p.aggressiveness)
        self._rest = np.zeros(0, dtype=np.float32)
        self._flags = np.zeros(0, dtype=bool)  # frames from _base on
        self._rms = np.zeros(0, dtype=np.float32)
        self._base = 0  # absolute frame index of _flags[0]
        self.samples_seen = 0

    def feed(self, audio: NDArray[np.float32]) -> list[Span]:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self.samples_seen += audio.size
        if self._rest.size:
            audio = np.concatenate([self._rest, audio])
        n = audio.size // FRAME
        whole = audio[:n * FRAME]
        self._rest = audio[n * FRAME:].copy()
        if n:
            flags = vad.speech_flags(whole, _vad_obj=self._vad)
            rms = np.sqrt(np.mean(whole.reshape(n, FRAME) ** 2, axis=1)).astype(np.float32)
            self._flags = np.concatenate([self._flags, flags])
            self._rms = np.concatenate([self._rms, rms])
        return self._decide(final=False)

    def finish(self) -> list[Span]:
        """The spans left when the recording ends (the last one may end in speech)."""
        return self._decide(final=True)

    def _drop(self, frames: int) -> None:
        self._flags = self._flags[frames:]
        self._rms = self._rms[frames:]
        self._base += frames

    def _span(self, g0: int, end_f: int, speech_start: int, speech_end: int, forced: bool = False) -> Span:
        b = self._base
        end = min((b + end_f) * FRAME, self.samples_seen)
        return Span((b + g0) * FRAME, end, (b + speech_start) * FRAME, min((b + speech_end) * FRAME, end), forced)

    def _decide(self, final: bool) -> list[Span]:
        out: list[Span] = []
        while True:
            smooth = vad.smooth(self._flags, self.p.min_speech_s, self.p.pause_s)
            runs = vad.runs(smooth)
            speech = [(a, b) for a, b, v in runs if v]
            if not speech:
                # Keep enough to pad the next speech's start, and to let a click just before it
                # join that speech as it would with the whole recording in view.
                self._drop(max(0, self._flags.size - self._pad_f - self._pause_f))
                return out
            first = speech[0][0]
            g0 = max(0, first - self._pad_f)
            if g0:
                self._drop(g0)
                continue  # indices changed: look again
            n = self._flags.size
            pauses = [(a, b) for a, b, v in runs if not v and a > first and b - a >= self._pause_f]
            cut = self._pause_cut(pauses, n)
            if cut is not None:
                a, _ = cut
                last_speech = max(e for s, e in speech if e <= a)
                out.append(self._span(0, a + self._pad_f, first, last_speech))
                self._drop(a + self._pad_f)
                continue
            if n > self._max_f:
                at = self._forced_cut()
                out.append(self._span(0, at, first, at, forced=True))
                self._drop(at)
                continue
            if final:
                last_speech = speech[-1][1]
                end = n if last_speech >= n else last_speech + self._pad_f
                span = self._span(0, end, first, last_speech)
                if last_speech >= n:  # ends in speech: include the sub-frame remainder too
                    span = Span(span.start, self.samples_seen, span.speech_start, self.samples_seen, span.forced)
                out.append(span)
                self._drop(self._flags.size)
                self._rest = np.zeros(0, dtype=np.float32)
            return out

    def _pause_cut(self, pauses: list[tuple[int, int]], n: int) -> tuple[int, int] | None:
        fits = [(a, b) for a, b in pauses if a + self._pad_f <= self._max_f]
        for a, b in fits:
            if a >= self._target_f or (b - a >= self._split_f and a >= self._min_group_f):
                return a, b
        if n > self._max_f and fits:
            return fits[-1]  # the span must end: at the last pause that keeps it under max_s
        return None

    def _forced_cut(self) -> int:
        """No pause within max_s: cut at the longest non-speech moment of the second half, or the
        quietest frame there."""
        lo, hi = self._max_f // 2, self._max_f
        window = self._flags[lo:hi]
        quiet = [(b - a, a, b) for a, b, v in vad.runs(window) if not v]
        if quiet:
            _, a, b = max(quiet)
            return lo + (a + b) // 2
        return lo + int(np.argmin(self._rms[lo:hi]))


def segment(audio: NDArray[np.float32], params: SegmenterParams | None = None) -> list[Span]:
    """All spans of an in-memory recording."""
    s = Segmenter(params)
    return s.feed(audio) + s.finish()
