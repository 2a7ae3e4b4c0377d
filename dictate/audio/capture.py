"""Audio sources that fill a RingBuffer: the microphone (PortAudio through sounddevice) and a file
played as if it were a microphone (for tests, demos and benchmarks).

Both share one reader-side API, used from a single consumer thread:

    src.start()               # capture runs; audio accumulates in the ring
    chunk = src.read()        # new 16 kHz mono float32 samples (possibly empty); never blocks
    ...
    rest = src.stop()         # stop capturing; the samples not yet read
    src.stats()               # CaptureStats: captured, lost, overflows

Pre-roll: `start(recording=False)` keeps the stream warm while only the last `preroll_s` seconds
are kept; `begin_recording()` then makes the next `read()` start with that pre-roll, so the first
word after the hotkey is not clipped. `end_recording()` goes back to idle.

Failures (no PortAudio, no input device, device gone mid-stream) raise AudioDeviceError with a
one-line message. A device that fails mid-stream still hands out every sample it delivered:
`read()` returns them first and raises only once the ring is empty.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dictate.audio.ring import RingBuffer
from dictate.errors import AudioDeviceError
from dictate.types import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

STALL_TIMEOUT_S = 3.0  # a running stream that delivers nothing this long has lost its device
STARVED_S = 0.25  # no callback for this long: stop() could hang, abort() instead


@dataclass(frozen=True)
class CaptureStats:
    samples_captured: int  # delivered by the device or file (16 kHz equivalent), lost ones included
    samples_lost: int  # dropped because the reader was a whole ring behind (16 kHz equivalent)
    overflows: int  # device-reported input overflows plus ring overflow events
    capture_rate_hz: int  # the rate the device was opened at (16 kHz unless it refused)


class StreamResampler:
    """Resamples a mono stream chunk by chunk (PyAV's swresample keeps the filter state)."""

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE_HZ) -> None:
        import av

        self._av = av
        self.rate_in = rate_in
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=rate_out)

    def _collect(self, frames) -> NDArray[np.float32]:
        parts = [f.to_ndarray().reshape(-1) for f in frames]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)

    def push(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        if samples.size == 0:
            return np.zeros(0, np.float32)
        frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32).reshape(1, -1),
                                                 format="flt", layout="mono")
        frame.sample_rate = self.rate_in
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> NDArray[np.float32]:
        return self._collect(self._resampler.resample(None))


class RingSource:
    """Reader-side logic shared by the sources: pre-roll, resampling, failure hand-off, stats.
    Subclasses fill `self.ring` from their own thread or callback and set `self._failure`."""

    def __init__(self, rate_hz: int, ring_capacity_s: float, preroll_s: float) -> None:
        self.rate_hz = int(rate_hz)
        self.ring = RingBuffer(max(1, int(ring_capacity_s * self.rate_hz)))
        self.preroll_s = preroll_s
        self._resampler = StreamResampler(self.rate_hz) if self.rate_hz != SAMPLE_RATE_HZ else None
        self._preroll = np.zeros(0, dtype=np.float32)
        self._recording = True
        self._failure: str | None = None  # set by the capture side; raised once the ring is drained
        self._device_overflows = 0
        self._read_times: list[tuple[int, float]] = []  # (16 kHz samples handed out, time) per read
        self.samples_out = 0  # 16 kHz samples handed to the reader so far
        self._started_at: float | None = None

    # -- reader API --

    def begin_recording(self) -> None:
        """From now on `read()` hands out audio, starting with the pre-roll kept while idle."""
        self._recording = True

    def end_recording(self) -> None:
        """Back to idle: audio is kept only as pre-roll."""
        self._recording = False
        self._preroll = np.zeros(0, dtype=np.float32)

    @property
    def recording(self) -> bool:
        return self._recording

    @property
    def exhausted(self) -> bool:
        """No more audio will come (a file source that has been played and read to its end)."""
        return False

    def read(self) -> NDArray[np.float32]:
        """New 16 kHz samples since the last read (never blocks). Raises AudioDeviceError after the
        last captured sample has been handed out when the device failed."""
        raw = self.ring.read()
        if raw.size == 0:
            self._check_failure()
        audio = self._resampler.push(raw) if self._resampler is not None else raw
        if not self._recording:
            keep = int(self.preroll_s * SAMPLE_RATE_HZ)
            self._preroll = np.concatenate([self._preroll, audio])[-keep:] if keep else self._preroll[:0]
            return np.zeros(0, dtype=np.float32)
        if self._preroll.size:
            audio = np.concatenate([self._preroll, audio])
            self._preroll = np.zeros(0, dtype=np.float32)
        if audio.size:
            self.samples_out += audio.size
            self._read_times.append((self.samples_out, time.perf_counter()))
        return audio

    def _check_failure(self) -> None:
        if self._failure is not None:
            message, self._failure = self._failure, None
            raise AudioDeviceError(message)

    def capture_time(self, sample_index: int) -> float:
        """Roughly when (time.perf_counter()) the 16 kHz sample at `sample_index` was captured:
        the time of the read that first handed it out."""
        import bisect

        i = bisect.bisect_right(self._read_times, (sample_index, float("inf")))
        if i < len(self._read_times):
            return self._read_times[i][1]
        return self._read_times[-1][1] if self._read_times else time.perf_counter()

    def _drain_tail(self) -> NDArray[np.float32]:
        """Everything left in the ring plus the resampler's tail, for stop()."""
        parts = []
        try:
            parts.append(self.read())
        except AudioDeviceError:
            pass
        if self._resampler is not None and self._recording:
            tail = self._resampler.flush()
            self.samples_out += tail.size
            parts.append(tail)
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def stats(self) -> CaptureStats:
        scale = SAMPLE_RATE_HZ / self.rate_hz
        ring = self.ring
        return CaptureStats(
            samples_captured=int(round((ring.written_total + ring.lost_samples) * scale)),
            samples_lost=int(round(ring.lost_samples * scale)),
            overflows=self._device_overflows + ring.overflows,
            capture_rate_hz=self.rate_hz,
        )


# -- the microphone --------------------------------------------------------------------------------

def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # raised at import when libportaudio is missing
        raise AudioDeviceError("PortAudio is not installed (on Debian/Ubuntu: apt install libportaudio2)") from exc
    except ImportError as exc:
        raise AudioDeviceError("microphone support is missing: pip install sounddevice") from exc
    return sounddevice


def input_devices() -> list[tuple[int, str]]:
    """(index, name) of every device with input channels."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from exc
    return [(i, d["name"]) for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def resolve_device(spec: str | int | None) -> int | None:
    """An input device index from config: empty for the default, an index, or part of a name."""
    inputs = input_devices()
    if not inputs:
        raise AudioDeviceError("no microphone found (no audio input device)")
    if spec is None or spec == "":
        return None
    if isinstance(spec, int) or str(spec).strip().isdigit():
        index = int(spec)
        if index not in {i for i, _ in inputs}:
            raise AudioDeviceError(f"input device {index} does not exist; inputs: {_describe(inputs)}")
        return index
    wanted = str(spec).lower()
    matches = [i for i, name in inputs if name.lower() == wanted] or [i for i, name in inputs if wanted in name.lower()]
    if not matches:
        raise AudioDeviceError(f"no input device matches {spec!r}; inputs: {_describe(inputs)}")
    return matches[0]


def _describe(inputs: list[tuple[int, str]]) -> str:
    return ", ".join(f"{i}: {name}" for i, name in inputs)


class Microphone(RingSource):
    """A PortAudio input stream whose callback only copies into the ring and counts overflows.

    `device`: config's `audio.input_device` (empty: default, an index, or part of a name).
    Opens at 16 kHz mono; when the device refuses, at its native rate (resampled on read) and
    with as many channels as it insists on (the first is used)."""

    def __init__(self, device: str | int | None = "", *, preroll_s: float = 0.5, ring_capacity_s: float = 120.0,
                 capture_rate_hz: int | None = None, time_callbacks: bool = False) -> None:
        self._sd = _sounddevice()
        self.device = resolve_device(device)
        rate, channels = self._choose_format(capture_rate_hz)
        super().__init__(rate, ring_capacity_s, preroll_s)
        self.channels = channels
        self._stream = None
        self._callbacks = 0
        self._last_callback = 0.0
        self._stopping = False
        # Optional callback timing for benchmarks: a preallocated array, no allocation per call.
        self._timings = np.zeros(200_000, dtype=np.float64) if time_callbacks else None

    def _choose_format(self, forced_rate: int | None) -> tuple[int, int]:
        sd = self._sd
        try:
            info = sd.query_devices(self.device, "input")
        except Exception as exc:
            raise AudioDeviceError(f"no usable microphone: {exc}") from exc
        native = int(info["default_samplerate"]) or SAMPLE_RATE_HZ
        max_channels = max(1, int(info["max_input_channels"]))
        rates = [forced_rate] if forced_rate else [SAMPLE_RATE_HZ, native]
        for rate in rates:
            for channels in (1, max_channels):
                try:
                    sd.check_input_settings(self.device, channels=channels, dtype="float32", samplerate=rate)
                    return rate, channels
                except Exception:
                    continue
        raise AudioDeviceError(f"microphone {info['name']!r} accepts neither 16000 Hz nor {native} Hz mono input")

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        t0 = time.perf_counter()
        if status.input_overflow:
            self._device_overflows += 1
        self.ring.write(indata[:, 0])
        self._callbacks += 1
        self._last_callback = t0
        timings = self._timings
        if timings is not None and self._callbacks <= timings.size:
            timings[self._callbacks - 1] = time.perf_counter() - t0

    def _finished(self) -> None:  # PortAudio's thread, when the stream ends for any reason
        if not self._stopping:
            self._failure = "the microphone stopped (device unplugged or the sound server went away)"

    def start(self, recording: bool = True) -> None:
        """Open and start the stream; `recording=False` keeps only the pre-roll until begin_recording()."""
        self._recording = recording
        try:
            self._stream = self._sd.InputStream(device=self.device, channels=self.channels, samplerate=self.rate_hz,
                                                dtype="float32", callback=self._callback,
                                                finished_callback=self._finished)
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise AudioDeviceError(f"cannot open the microphone: {_one_line(exc)}") from exc
        self._started_at = self._last_callback = time.perf_counter()
        log.info("microphone: device %s at %d Hz, %d channel(s)", self.device if self.device is not None else "default",
                 self.rate_hz, self.channels)

    def read(self) -> NDArray[np.float32]:
        if (self._stream is not None and not self._stopping and self._failure is None
                and time.perf_counter() - self._last_callback > STALL_TIMEOUT_S):
            self._failure = f"the microphone delivered no audio for {STALL_TIMEOUT_S:.0f} s (device unplugged?)"
        return super().read()

    @property
    def starved(self) -> bool:
        return time.perf_counter() - self._last_callback > STARVED_S

    def stop(self) -> NDArray[np.float32]:
        """Stop capturing and return the samples not yet read. A starved stream is aborted:
        PortAudio's stop() waits for a buffer that never comes."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._stopping = True
            try:
                if self.starved:
                    stream.abort(ignore_errors=True)
                else:
                    stream.stop(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception as exc:  # the device may already be gone; the audio is what matters
                log.warning("microphone: error while stopping: %s", exc)
        return self._drain_tail()

    def callback_durations_s(self) -> NDArray[np.float64]:
        """Measured callback durations (only with time_callbacks=True)."""
        if self._timings is None:
            return np.zeros(0)
        return self._timings[:min(self._callbacks, self._timings.size)].copy()

    def __enter__(self) -> "Microphone":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- a file played as a microphone -------------------------------------------------------------------

class FileSource(RingSource):
    """A file (or an array) written into the ring at `speed` times real time, block by block, from
    its own thread, exactly like a microphone would: if the reader falls a ring behind, samples are
    dropped and counted. `exhausted` turns true once the whole file has been read."""

    def __init__(self, audio: str | Path | NDArray[np.float32], *, speed: float = 1.0, ring_capacity_s: float = 120.0,
                 preroll_s: float = 0.0, block_s: float = 0.02) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        if isinstance(audio, (str, Path)):
            from dictate.audio.files import decode

            audio = decode(audio)  # AudioDecodeError for a bad file, before anything starts
        super().__init__(SAMPLE_RATE_HZ, ring_capacity_s, preroll_s)
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.speed = float(speed)
        self.block = max(1, int(block_s * SAMPLE_RATE_HZ))
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._written = 0  # samples offered to the ring (owned by the player thread)
        self._t0 = 0.0

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE_HZ

    def start(self, recording: bool = True) -> None:
        self._recording = recording
        self._t0 = self._started_at = time.perf_counter()
        self._thread = threading.Thread(target=self._play, name="dictate-file-source", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        rate = SAMPLE_RATE_HZ * self.speed
        total = self.audio.size
        tick = min(0.01, self.block / rate)
        while self._written < total and not self._halt.is_set():
            due = min(total, int((time.perf_counter() - self._t0) * rate))
            while self._written + self.block <= due or (due == total and self._written < total):
                end = min(self._written + self.block, total)
                self.ring.write(self.audio[self._written:end])
                self._written = end
            self._halt.wait(tick)

    def capture_time(self, sample_index: int) -> float:
        """When the sample entered the ring (exact for a paced file)."""
        return self._t0 + sample_index / (SAMPLE_RATE_HZ * self.speed)

    @property
    def exhausted(self) -> bool:
        """Everything has been played and read."""
        return self._written >= self.audio.size and self.ring.available == 0

    def stop(self) -> NDArray[np.float32]:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
        return self._drain_tail()

    def __enter__(self) -> "FileSource":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
