"""Voice activity detection with webrtcvad: per-frame speech flags, then pure functions over them.

Frames are FRAME_S long (30 ms at 16 kHz). Everything after `speech_flags` works on a boolean array
of frames and a frame index offset, so it is cheap to call again as audio arrives and easy to test.
`FrameVad` keeps the sub-frame remainder for callers that feed audio in arbitrary chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dictate.types import SAMPLE_RATE_HZ

FRAME_MS = 30
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000
FRAME_S = FRAME_MS / 1000.0
DEFAULT_AGGRESSIVENESS = 2  # 0 (keeps most) .. 3 (strictest); 2 is the usual choice for dictation
# webrtcvad keeps saying "speech" for up to a second after speech stops (its hangover); a frame
# quieter than this (-55 dBFS, below any voice at a microphone) is silence whatever it says.
MIN_SPEECH_RMS = 10 ** (-55 / 20)


def _vad(aggressiveness: int):
    import webrtcvad

    return webrtcvad.Vad(aggressiveness)


def to_int16(audio: NDArray[np.float32]) -> NDArray[np.int16]:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def speech_flags(audio: NDArray[np.float32], aggressiveness: int = DEFAULT_AGGRESSIVENESS,
                 _vad_obj=None) -> NDArray[np.bool_]:
    """One flag per whole 30 ms frame of 16 kHz audio (a trailing partial frame is ignored)."""
    vad = _vad_obj or _vad(aggressiveness)
    pcm = to_int16(audio)
    n = pcm.size // FRAME_SAMPLES
    flags = np.zeros(n, dtype=bool)
    if n == 0:
        return flags
    frames_f = np.asarray(audio[:n * FRAME_SAMPLES], dtype=np.float32).reshape(n, FRAME_SAMPLES)
    loud = np.sqrt(np.mean(np.square(frames_f, dtype=np.float64), axis=1)) >= MIN_SPEECH_RMS
    for i in range(n):
        # webrtcvad still sees every frame: its state (and hangover) follows the real signal
        flags[i] = vad.is_speech(pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES].tobytes(), SAMPLE_RATE_HZ) and loud[i]
    return flags


class FrameVad:
    """Incremental `speech_flags`: feed audio in any chunk size, get flags for each completed frame."""

    def __init__(self, aggressiveness: int = DEFAULT_AGGRESSIVENESS) -> None:
        self._vad = _vad(aggressiveness)
        self._rest = np.zeros(0, dtype=np.float32)

    def feed(self, audio: NDArray[np.float32]) -> NDArray[np.bool_]:
        audio = np.concatenate([self._rest, audio]) if self._rest.size else audio
        n = audio.size // FRAME_SAMPLES
        self._rest = audio[n * FRAME_SAMPLES:].copy()
        return speech_flags(audio[:n * FRAME_SAMPLES], _vad_obj=self._vad)


def frames(seconds: float) -> int:
    """Whole frames in `seconds` (rounded to nearest)."""
    return int(round(seconds / FRAME_S))


@dataclass(frozen=True)
class SpeechSpan:
    start_s: float
    end_s: float


def smooth(flags: NDArray[np.bool_], min_speech_s: float = 0.09, min_silence_s: float = 0.3) -> NDArray[np.bool_]:
    """Fill silences shorter than `min_silence_s` between speech and drop speech bursts shorter
    than `min_speech_s` (clicks), so a breath inside a sentence is not a pause."""
    out = flags.copy()
    for value, limit in ((False, frames(min_silence_s)), (True, frames(min_speech_s))):
        for start, end, v in runs(out):
            inner = 0 < start and end < out.size  # leading/trailing silence is real silence
            if v == value and end - start < limit and (inner or value):
                out[start:end] = not value
    return out


def runs(flags: NDArray[np.bool_]) -> list[tuple[int, int, bool]]:
    """(start, end, value) of each run of equal flags."""
    if flags.size == 0:
        return []
    edges = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [flags.size]])
    return [(int(a), int(b), bool(flags[a])) for a, b in zip(bounds[:-1], bounds[1:])]


def speech_spans(flags: NDArray[np.bool_], offset_s: float = 0.0, min_speech_s: float = 0.09,
                 min_silence_s: float = 0.3, pad_s: float = 0.0) -> list[SpeechSpan]:
    """Speech start/end times (seconds, plus `offset_s`) after `smooth`; each span widened by `pad_s`
    and clipped to the audio."""
    total_s = flags.size * FRAME_S
    spans = []
    for start, end, value in runs(smooth(flags, min_speech_s, min_silence_s)):
        if value:
            spans.append(SpeechSpan(offset_s + max(0.0, start * FRAME_S - pad_s),
                                    offset_s + min(total_s, end * FRAME_S + pad_s)))
    return spans


def silence_cut_points(flags: NDArray[np.bool_], offset_s: float = 0.0, min_silence_s: float = 0.3) -> list[float]:
    """Good places to cut audio: the middle of every silence of at least `min_silence_s` that lies
    between speech (in seconds, plus `offset_s`)."""
    cuts = []
    limit = frames(min_silence_s)
    for start, end, value in runs(flags):
        if not value and end - start >= limit and start > 0 and end < flags.size:
            cuts.append(offset_s + (start + end) / 2 * FRAME_S)
    return cuts


def trailing_silence_s(flags: NDArray[np.bool_]) -> float:
    """How long the audio has been silent at its end."""
    if flags.size == 0:
        return 0.0
    speech = np.flatnonzero(flags)
    last = speech[-1] + 1 if speech.size else 0
    return (flags.size - last) * FRAME_S


def has_speech(flags: NDArray[np.bool_], min_speech_s: float = 0.09) -> bool:
    """Whether there is at least `min_speech_s` of speech in a row."""
    limit = max(1, frames(min_speech_s))
    return any(v and end - start >= limit for start, end, v in runs(flags))


def utterance_ended(flags: NDArray[np.bool_], min_silence_s: float = 0.6, min_speech_s: float = 0.09) -> bool:
    """Speech happened and has been followed by at least `min_silence_s` of silence."""
    return has_speech(flags, min_speech_s) and trailing_silence_s(flags) >= min_silence_s
