"""A scripted engine for logic tests: one segment per second of audio naming its loudest
frequency ("440 Hz"), nothing for a silent second. Deterministic, so tests can check exact text
and timing after real decoding; also the `module:attribute` engine in CLI tests."""

from __future__ import annotations

import numpy as np

from dictate.engines import check_audio
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

SILENCE_RMS = 0.01


class ToneEngine:
    name = "tone"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        audio = check_audio(audio)
        self.calls += 1
        out = []
        for start in range(0, audio.size, SAMPLE_RATE_HZ):
            block = audio[start:start + SAMPLE_RATE_HZ]
            if block.size < SAMPLE_RATE_HZ // 10 or np.sqrt(np.mean(block**2)) < SILENCE_RMS:
                continue
            spectrum = np.abs(np.fft.rfft(block))
            freq = int(round(np.argmax(spectrum) * SAMPLE_RATE_HZ / block.size / 10.0) * 10)
            t0, t1 = start / SAMPLE_RATE_HZ, (start + block.size) / SAMPLE_RATE_HZ
            mid = (t0 + t1) / 2
            words = (Word(t0, mid, f" {freq}"), Word(mid, t1, " Hz")) if options.word_timestamps else ()
            out.append(Segment(t0, t1, f" {freq} Hz", words, no_speech_prob=0.0, avg_logprob=-0.1,
                               compression_ratio=1.0))
        return out


def make() -> ToneEngine:
    """Zero-argument factory for `--engine tests.support.tone_engine:make`."""
    return ToneEngine()
