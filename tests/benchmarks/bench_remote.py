"""Remote engine figures, measured in one run on espeak-ng speech:
  upload size per second of audio (FLAC vs WAV) and how long a 24 MB upload limit lasts;
  encoding speed (x real time);
  cost of the HTTP round trip: RemoteEngine through a loopback server vs the same faster-whisper
  model called directly, interleaved (same random-weight model, same bounded decoding);
  time to find cut points at pauses for an hour of audio.

Run: python tests/benchmarks/bench_remote.py   (prints figures; asserts nothing)"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dictate.audio.files import decode  # noqa: E402
from dictate.engines.faster import FasterWhisperEngine  # noqa: E402
from dictate.engines.pauses import cut_points  # noqa: E402
from dictate.engines.remote import RemoteEngine, encode_audio  # noqa: E402
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions  # noqa: E402
from tests.support.http_server import ServerConfig, TranscriptionServer  # noqa: E402
from tests.support.whisper_models import TINY, cached_ct2_model  # noqa: E402

TEXT = ("Dictation on a laptop is fine for short notes, but a long meeting goes to the server at home. "
        "The server speaks the same interface as the cloud, so the app does not care where it runs. ")


def speech(seconds: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), TEXT], check=True)
        clip = np.concatenate([decode(wav), np.zeros(SAMPLE_RATE_HZ // 2, np.float32)])
    reps = int(np.ceil(seconds * SAMPLE_RATE_HZ / clip.size))
    return np.tile(clip, reps)[: int(seconds * SAMPLE_RATE_HZ)]


def main() -> None:
    audio = speech(300.0)
    print(f"audio: {audio.size / SAMPLE_RATE_HZ:.0f} s of espeak-ng speech with pauses")
    for fmt in ("flac", "wav"):
        t0 = time.perf_counter()
        size = len(encode_audio(audio, fmt))
        dt = time.perf_counter() - t0
        per_s = size / (audio.size / SAMPLE_RATE_HZ)
        print(f"  {fmt:4}: {per_s / 1000:6.1f} kB per second of audio; 24 MB holds {24e6 / per_s / 60:5.1f} min; "
              f"encoded at {audio.size / SAMPLE_RATE_HZ / dt:6.0f}x real time")

    hour = np.tile(audio, 12)
    t0 = time.perf_counter()
    cuts = cut_points(hour, 10 * 60 * SAMPLE_RATE_HZ)
    print(f"cut points for 1 h into <=10 min pieces: {len(cuts)} cuts in {time.perf_counter() - t0:.2f} s")

    model = cached_ct2_model(TINY)
    options = TranscribeOptions(language="en", temperature=0.0, beam_size=1, max_new_tokens=20)
    clip = audio[: 20 * SAMPLE_RATE_HZ]
    local = FasterWhisperEngine(model, device="cpu", compute_type="int8", threads=1)
    with TranscriptionServer(model, ServerConfig(max_new_tokens=20)) as srv:
        remote = RemoteEngine(srv.base_url, "tiny")
        remote.transcribe(clip, options)  # load the server's model and warm up both sides
        local.transcribe(clip, options)
        t_local, t_remote = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            local.transcribe(clip, options)
            t_local.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            remote.transcribe(clip, options)
            t_remote.append(time.perf_counter() - t0)
    ml, mr = statistics.median(t_local), statistics.median(t_remote)
    print(f"20 s clip, tiny dims, 20 tokens: direct {ml * 1000:.0f} ms, through HTTP {mr * 1000:.0f} ms "
          f"(overhead {(mr - ml) * 1000:+.0f} ms, ratio {mr / ml:.2f})")


if __name__ == "__main__":
    main()
