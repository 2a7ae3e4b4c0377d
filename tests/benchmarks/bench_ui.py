"""The files window's cost to the GUI and to the work, with the real tiny.en weights on spoken
prose (espeak-ng reading the public-domain fixtures: the five recordings of tests/support/speech.py
joined, cut to length; prose rather than one sentence said again, which Whisper's repetition guard
would decode several times over).

1. Responsiveness: the p99 (and max) delay of a 10 ms QTimer in the GUI thread while the files
   window transcribes a long file (default 10 minutes). Goal: p99 <= 50 ms.
2. Overhead: the files window's wall time (files added -> every output written, model load
   included, as `dictate files` does) / `dictate transcribe` (in-process, model load included)
   on the same files, same options (beam 5, VAD, language en, TXT+SRT), run alternately.
   Goal: <= 1.05.

    python tests/benchmarks/bench_ui.py [--seconds 600] [--ratio-seconds 120] [--rounds 1]

Offscreen Qt; folders of its own (DICTATE_*_DIR in a temporary folder): the user's history is
not touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def prose(seconds: float) -> np.ndarray:
    from tests.support.speech import RECORDINGS, build

    parts, total = [], 0
    for spec in RECORDINGS.values():
        rec = build(spec)
        parts.append(rec.audio)
        total += rec.audio.size
        if total >= seconds * 16_000:
            break
    audio = np.concatenate(parts)
    if audio.size < seconds * 16_000:  # longer than all five: go round again
        audio = np.tile(audio, int(np.ceil(seconds * 16_000 / audio.size)))
    return audio[: int(seconds * 16_000)]


def p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def window_run(app, cfg, files: list[Path], model: Path, out: Path, timer_ms: int | None = None):
    """Files window on its own (its own model load, as `dictate files`): wall time, timer delays."""
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    from dictate.ui.files_window import FilesWindow

    delays: list[float] = []
    timer = None
    if timer_ms is not None:
        clock = QElapsedTimer()
        last = [0]

        def tick() -> None:
            now = clock.elapsed()
            delays.append(max(0.0, now - last[0] - timer_ms))
            last[0] = now

        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(timer_ms)
        timer.timeout.connect(tick)
    t0 = time.perf_counter()
    window = FilesWindow(cfg, model=str(model), language="en", formats=("txt", "srt"), out_dir=out)
    window.show()
    jobs = window.add_paths(files)
    if timer is not None:
        clock.start()
        timer.start()
    started_transcribing: list[int] = []

    def check() -> None:  # the real event loop runs; this only watches for the end
        if not started_transcribing and any(j.state == "transcribing" for j in jobs):
            started_transcribing.append(len(delays))  # from here on the engine is at work
        if all(j.finished for j in jobs):
            app.quit()

    watch = QTimer()
    watch.setInterval(20)
    watch.timeout.connect(check)
    watch.start()
    app.exec()
    watch.stop()
    wall = time.perf_counter() - t0
    if timer is not None:
        timer.stop()
    bad = [j for j in jobs if j.state != "done"]
    assert not bad, [j.error for j in bad]
    window.shutdown()
    window.deleteLater()
    app.processEvents()
    return wall, delays[(started_transcribing or [0])[0]:]


def cli_run(files: list[Path], model: Path, out: Path) -> float:
    from dictate import cli

    t0 = time.perf_counter()
    code = cli.main(["transcribe", *map(str, files), "--model", str(model), "--language", "en",
                     "--format", "txt,srt", "--output-dir", str(out)])
    assert code == 0
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the long file (responsiveness)")
    parser.add_argument("--ratio-seconds", type=float, default=120.0, help="audio for the wall-time ratio")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    for name in ("CONFIG", "DATA", "CACHE", "LOG", "STATE"):
        os.environ[f"DICTATE_{name}_DIR"] = str(home / name.lower())
    os.environ["HF_HUB_OFFLINE"] = "1"
    from PySide6.QtWidgets import QApplication

    from dictate import config
    from tests.support.media import write_audio
    from tests.support.real_models import tiny_en_ct2

    model = tiny_en_ct2()
    app = QApplication(["bench-ui"])
    cfg = config.load()
    print(f"model: tiny.en (real weights), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    # 1. responsiveness while a long file transcribes
    long = write_audio(home / "long.flac", prose(args.seconds), 16_000)
    wall, delays = window_run(app, cfg, [long], model, home / "out-long", timer_ms=10)
    print(f"long file: {args.seconds / 60:.1f} min of speech transcribed in the files window in {wall:.1f} s")
    print(f"10 ms timer while transcribing: {len(delays)} ticks, delay p50 {p(delays, 50):.1f} ms, "
          f"p99 {p(delays, 99):.1f} ms, max {max(delays):.1f} ms (goal: p99 <= 50 ms)")

    # 2. wall time, files window / dictate transcribe, alternately
    audio = prose(args.ratio_seconds + 30)[int(30 * 16_000):]  # other words than the long file's start
    half = audio.size // 2
    files = [write_audio(home / "a.flac", audio[:half], 16_000), write_audio(home / "b.mp3", audio[half:], 16_000)]
    ratios = []
    for r in range(args.rounds):
        t_cli = cli_run(files, model, home / f"out-cli-{r}")
        t_win, _ = window_run(app, cfg, files, model, home / f"out-win-{r}")
        ratios.append(t_win / t_cli)
        print(f"round {r + 1}: {args.ratio_seconds:.0f} s of speech in 2 files: dictate transcribe {t_cli:.1f} s, "
              f"files window {t_win:.1f} s, ratio {t_win / t_cli:.3f}")
    print(f"files window / dictate transcribe: {statistics.median(ratios):.3f} (median of {len(ratios)}; "
          f"goal <= 1.05); load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
