"""A real microphone for tests: a private PulseAudio server whose default source is a
module-pipe-source fed from a FIFO at real-time pace.

Silence is written continuously (a starved pipe-source delivers nothing, and PortAudio's stop()
then hangs, just as with a broken device); PCM queued with `mic.play(audio)` is written in place of
that silence as soon as the earlier queue has drained. PCM goes in as s16le, so what PortAudio
reads back is bit-exact to `quantize(audio)`.

    with VirtualMic() as mic:          # or the `virtual_mic` fixture
        # os.environ points PortAudio/ALSA at this server while the block runs
        handle = mic.play(audio)       # returns at once
        handle.wait()                  # until it has all been written
        mic.stop()                     # the server goes away (also: a device unplugged)

The ALSA `pulse`/`default` PCM (libasound2-plugins) reaches the server through PULSE_SERVER, which
`start()` sets in os.environ and `close()` restores; `env` has the same variables for subprocesses.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

RATE_HZ = 16_000
TICK_S = 0.01  # the feeder writes every 10 ms


def quantize(audio: np.ndarray) -> np.ndarray:
    """What a float32 signal becomes after the s16le round trip through the virtual mic."""
    return (to_s16(audio).astype(np.float32) / 32768.0).astype(np.float32)


def to_s16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")


class Playback:
    """A queued piece of PCM. `start_sample` is the feeder's sample count when its first sample
    was written (None before)."""

    def __init__(self, pcm: np.ndarray) -> None:
        self.pcm = pcm
        self.start_sample: int | None = None
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)


class VirtualMic:
    """Private PulseAudio with a pipe-source microphone `mic` fed at real-time pace."""

    def __init__(self, rate_hz: int = RATE_HZ, source_name: str = "mic") -> None:
        self.rate_hz = rate_hz
        self.source_name = source_name
        self._dir: Path | None = None
        self._server: subprocess.Popen | None = None
        self._feeder: threading.Thread | None = None
        self._halt = threading.Event()
        self._queue: collections.deque[Playback] = collections.deque()
        self._saved_env: dict[str, str | None] = {}
        self.samples_written = 0  # silence included
        self.feeding = True  # False: write nothing, so the source starves (as a broken device would)
        self.env: dict[str, str] = {}

    # -- lifecycle --

    def start(self) -> "VirtualMic":
        for tool in ("pulseaudio", "pactl"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is needed for the virtual microphone (apt install pulseaudio pulseaudio-utils)")
        self._dir = Path(tempfile.mkdtemp(prefix="dictate-pulse-"))
        runtime = self._dir / "pulse"
        runtime.mkdir()
        fifo = self._dir / "mic.fifo"  # module-pipe-source creates it
        self.env = {
            "PULSE_SERVER": f"unix:{runtime / 'native'}",
            "PULSE_RUNTIME_PATH": str(runtime),
        }
        server_env = dict(os.environ, XDG_RUNTIME_DIR=str(self._dir), PULSE_RUNTIME_PATH=str(runtime),
                          HOME=str(self._dir), PULSE_STATE_PATH=str(self._dir / "state"))
        server_env.pop("PULSE_SERVER", None)
        self._server = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "-L", "module-native-protocol-unix auth-anonymous=1",
             "-L", "module-null-sink sink_name=virt",
             "-L", f"module-pipe-source source_name={self.source_name} file={fifo} format=s16le "
                   f"rate={self.rate_hz} channels=1",
             "--log-target=stderr", "--log-level=error"],
            env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client_env = dict(os.environ, **self.env, HOME=str(self._dir))
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=client_env, capture_output=True).returncode != 0:
            if self._server.poll() is not None or time.monotonic() > deadline:
                err = self._server.stderr.read().decode(errors="replace") if self._server.poll() is not None else ""
                self.close()
                raise RuntimeError(f"pulseaudio did not start: {err.strip()[:300]}")
            time.sleep(0.05)
        # the native protocol answers before the later modules are loaded: retry until the source exists
        while True:
            res = subprocess.run(["pactl", "set-default-source", self.source_name], env=client_env,
                                 capture_output=True, text=True)
            if res.returncode == 0:
                break
            if self._server.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"virtual microphone not available: {res.stderr.strip()[:300]}")
            time.sleep(0.05)
        self._fifo = open(fifo, "wb", buffering=0)  # the pipe-source holds the read end open
        self._feeder = threading.Thread(target=self._feed, name="test-virtual-mic-feeder", daemon=True)
        self._feeder.start()
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        _rescan_portaudio()
        return self

    def stop(self) -> None:
        """Stop the server (like unplugging the device); the environment stays until close()."""
        self._halt.set()
        if self._feeder is not None:
            self._feeder.join(timeout=5)
            self._feeder = None
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        if getattr(self, "_fifo", None) is not None:
            try:
                self._fifo.close()
            except OSError:
                pass
            self._fifo = None

    def close(self) -> None:
        self.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self._server is not None and self._server.stderr is not None:
            self._server.stderr.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        _rescan_portaudio()

    def __enter__(self) -> "VirtualMic":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- audio --

    def play(self, audio: np.ndarray) -> Playback:
        """Queue float32 mono PCM (at rate_hz) to be spoken into the microphone after what is queued."""
        handle = Playback(to_s16(audio))
        self._queue.append(handle)
        return handle

    def _feed(self) -> None:
        """Write `rate_hz` samples per second: queued PCM first, silence when the queue is empty."""
        t0 = time.perf_counter()
        current: Playback | None = None
        pos = 0
        skipped = 0
        while not self._halt.is_set():
            due = int((time.perf_counter() - t0) * self.rate_hz) - self.samples_written - skipped
            if not self.feeding:
                skipped += max(0, due)
                self._halt.wait(TICK_S)
                continue
            parts = []
            while due > 0:
                if current is None and self._queue:
                    current, pos = self._queue.popleft(), 0
                    current.start_sample = self.samples_written + sum(p.size for p in parts)
                if current is None:
                    parts.append(np.zeros(due, dtype="<i2"))
                    due = 0
                    break
                take = current.pcm[pos:pos + due]
                parts.append(take)
                pos += take.size
                due -= take.size
                if pos >= current.pcm.size:
                    current._done.set()
                    current = None
            if parts:
                data = np.concatenate(parts)
                try:
                    self._fifo.write(data.tobytes())
                except (BrokenPipeError, OSError, ValueError):
                    return
                self.samples_written += data.size
            self._halt.wait(TICK_S)


def _rescan_portaudio() -> None:
    """PortAudio lists devices once at initialisation; make it look again after the server changed."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is not None:
        try:
            sd._terminate()
            sd._initialize()
        except Exception:
            pass


@pytest.fixture
def virtual_mic() -> Iterator[VirtualMic]:
    """A private PulseAudio server with a fed virtual microphone as the default source."""
    mic = VirtualMic()
    mic.start()
    try:
        yield mic
    finally:
        mic.close()
