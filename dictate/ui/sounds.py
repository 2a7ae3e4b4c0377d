"""Start/stop cues. PySide6-Essentials has no QtMultimedia (no QSoundEffect), so the WAV files in
resources/sounds are played through sounddevice (PortAudio, already used for the microphone) on a
named thread of their own: the GUI thread never waits on an audio device.

The cue files were made by `python -m dictate.ui.sounds DIR` (two short tone pairs, numpy only).
"""

from __future__ import annotations

import io
import logging
import queue
import sys
import threading
import wave
from pathlib import Path

import numpy as np

from dictate.ui import resources

log = logging.getLogger(__name__)

CUES = ("start", "stop", "cancel", "error")
RATE_HZ = 22_050


def synthesize(name: str) -> np.ndarray:
    """A soft two-note cue (~0.18 s, int16 mono): rising for start, falling for stop, lower and
    falling for cancel, two low notes for an error."""
    notes = {"start": (660.0, 990.0), "stop": (990.0, 660.0), "cancel": (660.0, 440.0),
             "error": (330.0, 330.0)}[name]
    note_s, gap_s = 0.07, 0.02
    t = np.arange(int(note_s * RATE_HZ)) / RATE_HZ
    # Raised-cosine attack and exponential decay: no click at either end.
    env = np.minimum(1.0, t / 0.005) * np.exp(-t / 0.03)
    parts = []
    for f in notes:
        tone = np.sin(2 * np.pi * f * t) + 0.25 * np.sin(2 * np.pi * 2 * f * t)
        parts += [tone * env, np.zeros(int(gap_s * RATE_HZ))]
    audio = np.concatenate(parts)
    return np.round(audio / np.max(np.abs(audio)) * 0.35 * 32767).astype("<i2")


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE_HZ)
        w.writeframes(pcm.tobytes())


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("cue files are 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
        return (pcm.astype(np.float32) / 32768.0), w.getframerate()


class CuePlayer:
    """Plays cues in order on the 'dictate-sounds' thread; a missing output device is logged once
    and the player goes quiet instead of failing the app.

    Playback is callback-driven and the thread waits on an Event, so `close()` never has to touch
    a PortAudio stream from another thread: it wakes the sound thread, which aborts its own
    stream (an idle sound server can hold the first buffer back for seconds)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._cache: dict[str, tuple[np.ndarray, int]] = {}
        self.played: list[str] = []  # names played to the end, for the log and tests

    def play(self, name: str) -> None:
        if not self.enabled or self._closing.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dictate-sounds", daemon=True)
            self._thread.start()
        self._queue.put(name)

    def close(self, timeout_s: float = 2.0) -> None:
        self._closing.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def _load(self, name: str) -> tuple[np.ndarray, int]:
        if name not in self._cache:
            self._cache[name] = read_wav(resources.sound(name).read_bytes())
        return self._cache[name]

    def _run(self) -> None:
        while (name := self._queue.get()) is not None:
            if self._closing.is_set():
                return
            try:
                self._play(name)
            except Exception as exc:  # no output device, no PortAudio: cues are optional
                log.warning("sounds: cannot play the %s cue (%s); cues are off for this run", name, exc)
                self.enabled = False
                return

    def _play(self, name: str) -> None:
        import sounddevice as sd

        audio, rate = self._load(name)
        pos = 0
        finished = threading.Event()

        def callback(outdata, frames, _time, _status) -> None:  # PortAudio's thread: copy only
            nonlocal pos
            n = min(frames, audio.shape[0] - pos)
            outdata[:n] = audio[pos:pos + n]
            outdata[n:] = 0
            pos += n
            if pos >= audio.shape[0]:
                raise sd.CallbackStop

        stream = sd.OutputStream(samplerate=rate, channels=audio.shape[1], dtype="float32", callback=callback,
                                 finished_callback=finished.set)
        with stream:
            deadline = audio.shape[0] / rate + 3.0
            waited = 0.0
            while not finished.is_set() and not self._closing.is_set() and waited < deadline:
                finished.wait(0.05)
                waited += 0.05
            if not finished.is_set():
                stream.abort()
                log.debug("sounds: the %s cue was cut short", name)
                return
        self.played.append(name)


def main(argv: list[str]) -> int:  # pragma: no cover - maintenance script
    out = Path(argv[1]) if len(argv) > 1 else Path("resources/sounds")
    out.mkdir(parents=True, exist_ok=True)
    for name in CUES:
        write_wav(out / f"{name}.wav", synthesize(name))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
