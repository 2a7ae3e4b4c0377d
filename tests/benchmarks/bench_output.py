"""Output benchmark on a private Xvfb, typing into a Qt text box in another process.

    python tests/benchmarks/bench_output.py

Prints characters per second for xdotool typing (ASCII at delay 0; non-ASCII typed at several
delays, with the characters lost), for paste, the paste latency (key sent -> window fetched
the text) and the cost of saving and restoring a 1 MB image clipboard around a paste."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dictate.config import Config  # noqa: E402
from dictate.output import create_sink  # noqa: E402
from tests.support.type_target import TypeTarget  # noqa: E402
from tests.support.xserver import XServer  # noqa: E402
from tests.test_output_x11 import png_bytes, xclip_holding  # noqa: E402

ASCII = "The quick brown fox jumps over the lazy dog, 0123456789! "
UNICODE = "Grüße café ñandú über 漢字 🎤 "


def sink_for(env: dict, backend: str, **output):
    cfg = Config()
    cfg.output.backend = backend
    for key, value in output.items():
        setattr(cfg.output, key, value)
    return create_sink(cfg, env=env)


def timed_emit(target: TypeTarget, sink, text: str, exact: bool = True) -> tuple[float, float, str]:
    """(seconds until emit returned, seconds until the window stopped changing / held the text,
    what arrived)."""
    before = target.text
    t0 = time.perf_counter()
    sink.emit(0, text)
    sent = time.perf_counter() - t0
    got = target.wait_text(before + text, timeout_s=60) if exact else target.wait_stable(0.5, timeout_s=60)
    arrived = time.perf_counter() - t0 - (0 if exact or got == before + text else 0.5)
    return sent, arrived, got[len(before):]


def lost(expected: str, got: str) -> int:
    """Characters of `expected` missing or wrong in `got`."""
    import difflib

    matched = sum(b.size for b in difflib.SequenceMatcher(None, expected, got, autojunk=False).get_matching_blocks())
    return len(expected) - matched


def main() -> int:
    with XServer() as x, tempfile.TemporaryDirectory() as tmp:
        with TypeTarget(x.env, Path(tmp) / "bench.json") as target:
            target.focus()
            rows = []
            sink = sink_for(x.env, "xdotool")
            text = (ASCII * 18)[:1000]
            sent, s, got = timed_emit(target, sink, text)
            rows.append(("xdotool ASCII, delay 0", len(text) / sent, len(text) / s, lost(text, got)))
            for delay in (12, 25):
                slow = sink_for(x.env, "xdotool", paste_non_ascii=False, typing_delay_ms=delay)
                text = (UNICODE * 8)[:200]
                sent, s, got = timed_emit(target, slow, text, exact=False)
                rows.append((f"xdotool non-ASCII typed, delay {delay} ms", len(text) / sent, len(text) / s,
                             lost(text, got)))
                slow.close()
            text = (UNICODE * 170)[:5000]
            sent, s, got = timed_emit(target, sink, text)  # non-ASCII: pasted
            rows.append(("xdotool sink, non-ASCII pasted (5000 chars)", len(text) / sent, len(text) / s,
                         lost(text, got)))
            sink.close()

            paste = sink_for(x.env, "clipboard")
            latencies, totals = [], []
            for i in range(10):
                _, s, got = timed_emit(target, paste, f" paste {i} 漢字🎤")
                totals.append(s)
                latencies.append(paste.paster.last_latency_s)
            with xclip_holding(x.env, png_bytes(600, 600), "image/png"):
                t0 = time.perf_counter()
                timed_emit(target, paste, " with a 1 MB image on the clipboard")
                image_total = time.perf_counter() - t0
            paste.close()

        print("backend / case                               sent chars/s  arrived chars/s  wrong/lost")
        for name, sent_rate, rate, n_lost in rows:
            print(f"{name:<46} {sent_rate:12.0f} {rate:16.0f} {n_lost:11d}")
        print("(arrived: until the target window, which rewrites a file on every change, held the text)")
        print(f"paste latency (key -> window fetched, incl. a 50 ms quiet wait), median of 10: {statistics.median(latencies) * 1000:.0f} ms "
              f"(max {max(latencies) * 1000:.0f} ms)")
        print(f"paste emit to text in window incl. save/restore, median: {statistics.median(totals) * 1000:.0f} ms")
        print(f"paste with a 1 MB image clipboard saved and restored: {image_total * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
