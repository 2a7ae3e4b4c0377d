"""Short spoken sentences (espeak-ng) as real media files, for the files and history windows'
real-weights tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from dictate.audio import files
from dictate.types import SAMPLE_RATE_HZ
from tests.support.media import write_audio

SENTENCES = (
    "She opened the window and looked at the garden in the morning light.",
    "The children walked to school along the river every day.",
)


def speak(text: str, workdir: Path, voice: str = "en-us", wpm: int = 160) -> np.ndarray:
    """espeak-ng's reading at 16 kHz, cut to its audible part, with half a second of quiet around it."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is needed (apt install espeak-ng)")
    workdir.mkdir(parents=True, exist_ok=True)
    wav = workdir / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True, capture_output=True)
    audio = files.decode(wav)
    wav.unlink()
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    quiet = np.zeros(SAMPLE_RATE_HZ // 2, np.float32)
    return np.concatenate([quiet, audio[loud[0]:loud[-1] + 1], quiet])


def spoken_file(path: Path, text: str, repeat: int = 1) -> Path:
    """`text` read aloud (`repeat` times in a row, with a pause between) as the format `path` names."""
    one = speak(text, path.parent / ".espeak")
    return write_audio(path, np.tile(one, repeat), SAMPLE_RATE_HZ)
