"""Live windows decoded in one pass against faster-whisper's transcribe(), on real tiny.en weights.

transcribe() with word timestamps seeks back to the last word's end and decodes what follows it
once more (encoder included) whenever the window's last segment closes before its end; live
windows take the one pass (TranscribeOptions.single_pass). For live-like windows (beam 5,
prompt, token limit) of several lengths, in one run: the time of each, their ratio, and whether
the words agree.

    python tests/benchmarks/bench_single_pass.py
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dictate.types import TranscribeOptions  # noqa: E402
from tests.support import live_eval, speech  # noqa: E402


def timed(engine, audio, options, repeats: int) -> tuple[float, list[str]]:
    engine.transcribe(audio, options)  # warm
    t0 = time.perf_counter()
    for _ in range(repeats):
        segments = engine.transcribe(audio, options)
    return (time.perf_counter() - t0) / repeats, [w.text for s in segments for w in s.words]


def main() -> int:
    engine = live_eval.make_engine("faster-whisper")
    print(f"{'recording':16s} {'window':>6s} {'two-pass':>8s} {'one-pass':>8s} {'ratio':>5s}  words")
    for name in ("genesis-gb", "jargon-rp"):
        rec = speech.build(speech.short(speech.RECORDINGS[name], 25.0))
        for seconds in (0.8, 2.0, 3.6, 6.0, 10.0, 20.0):
            audio = rec.audio[:int(seconds * 16000)]
            base = TranscribeOptions(language="en", beam_size=5, word_timestamps=True, temperature=0.0,
                                     initial_prompt="Earlier text of the dictation.",
                                     max_new_tokens=int(24 + 8 * seconds))
            two_s, two = timed(engine, audio, base, 5)
            one_s, one = timed(engine, audio, dataclasses.replace(base, single_pass=True), 5)
            same = "same" if one == two else f"one-pass {len(one)} vs {len(two)}"
            print(f"{name:16s} {seconds:5.1f}s {two_s:7.3f}s {one_s:7.3f}s {one_s / two_s:5.2f}  {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
