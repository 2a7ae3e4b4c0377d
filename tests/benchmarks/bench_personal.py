"""Getting better at your voice: the figures of the personal-data features, on real weights.

    python tests/benchmarks/bench_personal.py                  # everything
    python tests/benchmarks/bench_personal.py --only export eval --seconds 60

- export: `dictate dataset export` speed in hours of audio per minute of wall time, for pairs
  over 30 s (cut with real tiny.en's word times: the first export transcribes them) and again
  (word times kept with the pairs, nothing new to write). Recordings: espeak-ng prose from
  tests/support/speech.py (the REPORT set), added as pairs by hand.
- eval: `dictate eval` on the exported pieces, tiny.en against base (each model in its own process,
  beam 5, deterministic): WER, CER, S/D/I and throughput (seconds of audio per second, files per
  minute). The same generated set for both models.
- vocabulary: term error rate of tiny.en with and without the vocabulary learned from writing.
- punctuation: personal punctuation training time at 50K, 100K and 200K words.

Everything runs in a temporary data folder; nothing of the user's is touched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

_TMP = tempfile.TemporaryDirectory(prefix="bench-personal-")
for _name in ("CONFIG", "DATA", "CACHE", "LOG", "STATE"):  # before dictate reads its paths
    os.environ[f"DICTATE_{_name}_DIR"] = str(Path(_TMP.name) / _name.lower())
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from dictate import config as config_mod  # noqa: E402
from dictate import dataset, evaluation  # noqa: E402
from dictate.engines.faster import FasterWhisperEngine  # noqa: E402
from dictate.export import export  # noqa: E402
from dictate.storage import encode_audio  # noqa: E402
from dictate.types import TranscribeOptions  # noqa: E402
from tests.support import speech  # noqa: E402
from tests.support.real_models import base_ct2, tiny_en_ct2  # noqa: E402

WORK = Path(_TMP.name)


def _recordings(seconds: float | None) -> list[speech.Recording]:
    specs = [speech.short(s, seconds) if seconds else s for s in speech.REPORT.values()]
    return [speech.build(s) for s in specs]


def bench_export(args: argparse.Namespace, state: dict) -> None:
    cfg = config_mod.load()
    recs = _recordings(args.seconds)
    for rec in recs:
        audio = encode_audio([rec.audio], WORK / f"{rec.spec.name}.flac")
        text = WORK / f"{rec.spec.name}.txt"
        text.write_text(rec.text + "\n", encoding="utf-8")
        dataset.add_manual(cfg, audio, text)
    hours = sum(r.duration_s for r in recs) / 3600
    out = WORK / "export"
    engine: list = []

    def factory():
        engine.append(FasterWhisperEngine(tiny_en_ct2(), compute_type="int8"))
        return engine[-1]

    options = TranscribeOptions(language="en", beam_size=1, temperature=0.0, word_timestamps=True)
    print(f"export: {len(recs)} recordings, {hours * 60:.1f} min of audio")
    for label in ("first (transcribes for word times)", "again (nothing new)"):
        start = time.perf_counter()
        report = export(cfg, out, engine_factory=factory, options=options)
        took = time.perf_counter() - start
        pieces = sum(report.pieces.values())
        print(f"  {label:36s} {took:7.2f} s  {hours / (took / 60):8.2f} h of audio per minute  "
              f"{pieces} pieces, {report.written} files written, {len(report.skipped)} skipped")
    state["export_dir"] = out


def bench_eval(args: argparse.Namespace, state: dict) -> None:
    cfg = config_mod.load()
    folder = state.get("export_dir")
    if folder is None:
        bench_export(args, state)
        folder = state["export_dir"]
    items = [i for split in dataset.SPLITS if (folder / split).is_dir()
             for i in evaluation.load_items(folder, split)[1]]
    options = evaluation.eval_options(cfg, language="en", beam_size=args.beam_size)
    specs = [evaluation.ModelSpec("tiny.en", "faster-whisper", str(tiny_en_ct2())),
             evaluation.ModelSpec("base", "faster-whisper", str(base_ct2()))]
    audio_s = None
    print(f"eval: {len(items)} exported pieces, beam {args.beam_size}, each model in its own process")
    print(f"  {'model':8s} {'WER':>7s} {'CER':>7s} {'sub':>5s} {'del':>5s} {'ins':>5s} {'words':>6s} "
          f"{'RTF':>6s} {'audio s/s':>9s} {'files/min':>9s} {'wall s':>7s}")
    for spec in specs:
        start = time.perf_counter()
        (r,) = evaluation.run_eval(cfg, [spec], items, options)
        wall = time.perf_counter() - start
        audio_s = r.audio_s
        e = r.errors
        print(f"  {r.label:8s} {100 * e.wer:6.1f}% {100 * e.cer:6.1f}% {e.substitutions:5d} {e.deletions:5d} "
              f"{e.insertions:5d} {e.reference_words:6d} {r.rtf:6.3f} {r.audio_s / r.transcribe_s:9.1f} "
              f"{len(items) / (wall / 60):9.1f} {wall:7.1f}")
    print(f"  ({audio_s / 60:.1f} min of audio; wall includes the child process and the model load)")


def bench_vocabulary(args: argparse.Namespace, state: dict) -> None:
    """Term error rate (share of the target names not transcribed exactly) of tiny.en on espeak-ng
    sentences with unusual names, with and without the list `dictate vocabulary learn` finds in
    the writing of tests/support/vocabulary_set.py. The REPORT sentences were not used to choose
    anything; TUNE ones were looked at while building the feature."""
    from dictate.vocabulary import learn
    from tests.support import vocabulary_set as vs
    from tests.support.speech import _espeak

    vs.writing_files(WORK / "writing")
    hotwords = tuple(t.text for t in learn([str(WORK / "writing")]).terms)
    engine = FasterWhisperEngine(tiny_en_ct2(), compute_type="int8")
    pad = np.zeros(8_000, np.float32)
    print(f"vocabulary: {len(hotwords)} terms learned from the writing; tiny.en, beam 5, the product's hotwords path")
    for name, sentences in (("tune", vs.TUNE), ("report", vs.REPORT)):
        plain, hinted = [], []
        for sentence in sentences:
            audio = np.concatenate([pad, _espeak(sentence, "en-us", 160, WORK), pad])
            for out, words in ((plain, ()), (hinted, hotwords)):
                options = TranscribeOptions(language="en", beam_size=5, hotwords=words)
                out.append("".join(seg.text for seg in engine.transcribe(audio, options)).strip())
        without, with_list = vs.term_errors(sentences, plain), vs.term_errors(sentences, hinted, hotwords)
        print(f"  {name:7s} {len(sentences):2d} sentences, {without.targets:2d} terms: term error rate "
              f"{without.rate:.2f} without, {with_list.rate:.2f} with the learned list; listed names written "
              f"that were not said: {without.inserted} without, {with_list.inserted} with")


def bench_punctuation_training(args: argparse.Namespace, state: dict) -> None:
    """Personal punctuation training time at 50K, 100K and 200K words (the corpus of
    bench_punctuation.py: the three fixtures topped up with synthetic authors). Goal: < 10 s at 200K."""
    from tests.benchmarks.bench_punctuation import bench_training

    bench_training((50_000, 100_000, 200_000))


SECTIONS = {"export": bench_export, "eval": bench_eval, "vocabulary": bench_vocabulary,
            "punctuation": bench_punctuation_training}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=list(SECTIONS), help="sections to run (default: all)")
    ap.add_argument("--seconds", type=float, help="cut each recording to about this much speech")
    ap.add_argument("--beam-size", type=int, default=5, help="eval beam size (default 5, the product's)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state: dict = {}
    try:
        for name, section in SECTIONS.items():
            if not args.only or name in args.only:
                section(args, state)
    finally:
        _TMP.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
