"""Live transcription against offline transcription, on real Whisper weights (tiny.en).

For each recording (espeak-ng reading the fixture prose; tests/support/speech.py) a row with the
offline beam-5 WER of the same engine on the whole file, the live WER, their ratio, the live
deletions and insertions, commit latency (median, p90: a word's end to its commit), the wait after
the end of input, engine busy time / audio time, and audio discarded; and a row for a long note's
record-then-transcribe pass (spans at pauses, beam 5) against the same offline figure.

    python tests/benchmarks/bench_live_accuracy.py                 # faster-whisper, real time
    python tests/benchmarks/bench_live_accuracy.py --engine whisper.cpp
    python tests/benchmarks/bench_live_accuracy.py --set tune --virtual-only

The real-time rows run the threaded loop (FileSource at real pace -> EngineWorker -> session), as
`dictate listen --input` does; they take as long as the recordings. The virtual-time rows give the
policy alone at a fast and at a CPU-like engine cost (each window's real hypothesis, a modelled
duration), so they do not depend on the machine's load. Run each engine in its own process.
The CPU cost (live_eval.cpu_cost) counts the encoder's input, the window plus encoder_pad_s for
faster-whisper and 30 s for whisper.cpp; it runs slower than the real-time loop did here (137
windows in virtual time against 163 in real time on genesis-gb), so its latencies are an upper bound.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support import live_eval, speech, wer  # noqa: E402


HEADER = (f"{'recording':18s} {'mode':9s} {'offline':>7s} {'live':>6s} {'ratio':>5s} {'bound':>5s} {'del':>4s} "
          f"{'ins':>4s} {'lat.med':>7s} {'lat.p90':>7s} {'wait':>5s} {'busy':>5s} {'disc.':>5s} {'win':>4s} {'maxwin':>6s}")


def row(mode: str, f: live_eval.LiveFigures) -> str:
    return (f"{f.name:18s} {mode:9s} {100 * f.offline.wer:6.1f}% {100 * f.live.wer:5.1f}% {f.ratio:5.2f} "
            f"{'ok' if f.within_bound() else 'OVER':>5s} {f.live.deletions:4d} {f.live.insertions:4d} "
            f"{f.median_latency_s:6.2f}s {f.latency(0.9):6.2f}s {f.final_latency_s:4.2f}s {f.busy_ratio:5.2f} "
            f"{f.discarded_s:4.1f}s {f.windows:4d} {f.max_window_s:5.1f}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="faster-whisper", choices=["faster-whisper", "whisper.cpp"])
    ap.add_argument("--set", default="report", choices=["report", "tune", "all"])
    ap.add_argument("--virtual-only", action="store_true", help="skip the real-time rows")
    ap.add_argument("--only", nargs="*", help="recording names")
    ap.add_argument("--seconds", type=float, help="cut each recording to about this much speech")
    ap.add_argument("--no-fast", action="store_true", help="skip the fast-engine virtual rows")
    ap.add_argument("--no-note", action="store_true", help="skip the note-pass row")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    specs = {"report": speech.REPORT, "tune": speech.TUNE, "all": speech.RECORDINGS}[args.set]
    engine = live_eval.make_engine(args.engine)
    print(f"engine {args.engine}, tiny.en; recordings: {', '.join(specs)}")
    p = live_eval.StreamingParams()
    pad = p.encoder_pad_s if args.engine == "faster-whisper" else None
    print(f"live defaults: encoder input {'30 s' if pad is None else f'window + {pad:g} s'}, min chunk "
          f"{p.min_chunk_s:g} s, trim at {p.trim_at_s:g} s keeping {p.context_s:g} s of context, beam "
          f"{live_eval.OPTIONS.beam_size}")
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in specs.items():
            if args.only and name not in args.only:
                continue
            rec = speech.build(speech.short(spec, args.seconds) if args.seconds else spec)
            t0 = time.perf_counter()
            offline = live_eval.offline_text(engine, rec.audio)
            offline_s = time.perf_counter() - t0
            rows = []
            if not args.virtual_only:
                wav = live_eval.write_wav(rec.audio, Path(tmp) / f"{name}.wav")
                figures, stats = live_eval.realtime_run(engine, rec, offline, wav)
                rows.append(row("real-time", figures))
                if stats.samples_lost:
                    rows.append(f"  !! {stats.samples_lost} samples lost")
            costs = [("virt-cpu", live_eval.CPU_COST)] + ([] if args.no_fast else [("virt-fast", live_eval.FAST_COST)])
            for mode, cost in costs:
                rows.append(row(mode, live_eval.virtual_run(engine, rec, offline, cost=cost)))
            if not args.no_note:
                note = wer.score(rec.text, live_eval.note_pass_text(engine, rec.audio))
                off = wer.score(rec.text, offline)
                rows.append(f"{rec.spec.name:18s} {'note':9s} {100 * off.wer:6.1f}% {100 * note.wer:5.1f}% "
                            f"{note.wer / off.wer if off.wer else 1.0:5.2f} {'ok' if note.wer <= 1.02 * off.wer else 'OVER':>5s} "
                            f"{note.deletions:4d} {note.insertions:4d}   (record-then-transcribe pass; goal <= 1.02)")
            print("\n".join(rows), flush=True)
            print(f"  ({rec.duration_s:.0f} s, {len(rec.text.split())} words, longest run-on "
                  f"{rec.longest_run_s():.0f} s, offline pass {offline_s:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
