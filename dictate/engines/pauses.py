"""Where to cut long audio into pieces of bounded length without cutting a word: in the middle of
the longest pause (webrtcvad) near the length limit, else at the quietest frame there."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dictate.audio.vad import FRAME_SAMPLES as FRAME
from dictate.audio.vad import speech_flags


def _best_cut(flags: NDArray[np.bool_], energy: NDArray[np.float64], lo: int, hi: int) -> int:
    """A frame index in [lo, hi): the middle of the longest pause there (latest on ties), else the quietest frame."""
    best_len, best_mid = 0, -1
    run_start = None
    for i in range(lo, hi + 1):
        silent = i < hi and not flags[i]
        if silent and run_start is None:
            run_start = i
        elif not silent and run_start is not None:
            length = i - run_start
            if length >= best_len:
                best_len, best_mid = length, (run_start + i) // 2
            run_start = None
    if best_mid >= 0:
        return best_mid
    window = energy[lo:hi]
    return lo + window.size - 1 - int(np.argmin(window[::-1]))  # the quietest frame, latest on ties


def cut_points(audio: NDArray[np.float32], max_samples: int, *, min_fraction: float = 0.5) -> list[int]:
    """Sample offsets (excluding 0 and the end) that split `audio` into pieces of at most
    `max_samples`, each cut in a pause within the last (1 - min_fraction) of the allowed length."""
    if max_samples < FRAME * 2:
        raise ValueError("pieces must be at least two VAD frames long")
    if audio.size <= max_samples:
        return []
    flags = speech_flags(audio)
    n = flags.size
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    energy = np.mean(frames * frames, axis=1)
    max_frames = max_samples // FRAME
    cuts: list[int] = []
    start = 0  # in frames
    while audio.size - start * FRAME > max_samples:
        lo = start + max(1, int(max_frames * min_fraction))
        hi = min(start + max_frames, n)
        cut = _best_cut(flags, energy, lo, hi)
        cuts.append(cut * FRAME)
        start = cut
    return cuts


def split(audio: NDArray[np.float32], max_samples: int) -> list[tuple[int, NDArray[np.float32]]]:
    """(offset in samples, piece) for every piece; the pieces cover `audio` exactly, in order."""
    bounds = [0, *cut_points(audio, max_samples), audio.size]
    return [(a, audio[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]
