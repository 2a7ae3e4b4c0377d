"""`dictate transcribe` against bare faster-whisper with identical options, in one run.

A random-weight model of real tiny dimensions and a 5-minute MP3. Two comparisons, interleaved
so that machine noise hits both sides alike:
  in-process: dictate.transcribe_file() vs WhisperModel.transcribe() (model loaded once each);
  end to end: the `dictate transcribe` command vs a bare script doing load + transcribe + print.
Goal: ratio <= 1.03.

    python tests/benchmarks/bench_transcribe.py [--minutes 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from dictate import transcribe_file  # noqa: E402
from dictate.engines.faster import FasterWhisperEngine  # noqa: E402
from dictate.types import TranscribeOptions  # noqa: E402
from tests.support.media import write_audio  # noqa: E402
from tests.support.whisper_models import TINY, cached_ct2_model  # noqa: E402

MAX_NEW_TOKENS = 40
BARE_SCRIPT = """
import sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=0, local_files_only=True)
segments, info = model.transcribe(sys.argv[2], language="en", beam_size=5, temperature=0.0,
                                  max_new_tokens=int(sys.argv[3]), vad_filter=False)
sys.stdout.write(" ".join(s.text.strip() for s in segments) + "\\n")
"""


def speechlike(minutes: float) -> np.ndarray:
    """Noise bursts shaped like syllables with pauses: content for the decoder to chew on."""
    rng = np.random.default_rng(7)
    n = int(minutes * 60 * 16_000)
    envelope = (np.sin(np.arange(n) * 2 * np.pi * 3 / 16_000) > 0.2).astype(np.float32)
    return (0.2 * envelope * rng.standard_normal(n)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    model = cached_ct2_model(TINY)
    tmp = Path(tempfile.mkdtemp(prefix="bench-transcribe-"))
    audio_file = write_audio(tmp / "five-minutes.mp3", speechlike(args.minutes), 16_000)
    print(f"model: random weights, tiny dimensions ({model.name}); audio: {args.minutes:g} min MP3")

    # In process, model loaded once on each side.
    from faster_whisper import WhisperModel

    bare_model = WhisperModel(str(model), device="cpu", compute_type="int8", local_files_only=True)
    engine = FasterWhisperEngine(str(model), device="cpu", compute_type="int8")
    options = TranscribeOptions(language="en", beam_size=5, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS)

    def bare() -> str:
        segments, _ = bare_model.transcribe(str(audio_file), language="en", beam_size=5, temperature=0.0,
                                            max_new_tokens=MAX_NEW_TOKENS, vad_filter=False)
        return " ".join(s.text.strip() for s in segments)

    def ours() -> str:
        return transcribe_file(audio_file, engine, options).text

    bare_t, ours_t = [], []
    for _ in range(args.rounds):
        for fn, sink in ((bare, bare_t), (ours, ours_t)):
            t = time.perf_counter()
            text = fn()
            sink.append(time.perf_counter() - t)
        assert text, "the decoder produced text"
    # Same samples in, same options: the same text out (files differ slightly: faster-whisper's own
    # decoder rounds to 16-bit, ours keeps float32).
    from dictate.audio.files import decode

    samples = decode(audio_file)[: 60 * 16_000]
    bare_text = " ".join(s.text.strip() for s in bare_model.transcribe(
        samples, language="en", beam_size=5, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS, vad_filter=False)[0])
    assert bare_text == " ".join(s.text.strip() for s in engine.transcribe(samples, options)), "identical options"
    b, o = statistics.median(bare_t), statistics.median(ours_t)
    print(f"in-process  bare faster-whisper {b:6.2f} s   dictate {o:6.2f} s   ratio {o / b:.3f}  (median of {args.rounds})")

    # End to end, as a user runs it: process start, model load, decode, transcribe, output.
    script = tmp / "bare.py"
    script.write_text(BARE_SCRIPT)
    cli = [sys.executable, "-m", "dictate", "transcribe", str(audio_file), "--model", str(model), "--language", "en",
           "--beam-size", "5", "--no-vad", "--max-new-tokens", str(MAX_NEW_TOKENS)]
    bare_cmd = [sys.executable, str(script), str(model), str(audio_file), str(MAX_NEW_TOKENS)]
    bare_e, ours_e = [], []
    for _ in range(args.rounds):
        for cmd, sink in ((bare_cmd, bare_e), (cli, ours_e)):
            t = time.perf_counter()
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            sink.append(time.perf_counter() - t)
    b, o = statistics.median(bare_e), statistics.median(ours_e)
    print(f"end-to-end  bare script         {b:6.2f} s   dictate {o:6.2f} s   ratio {o / b:.3f}  (median of {args.rounds})")
    print("goal: ratio <= 1.03")


if __name__ == "__main__":
    main()
