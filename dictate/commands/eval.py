"""`dictate eval DIR --model A --model B ...`: compare models on your own held-out recordings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dictate import evaluation
from dictate.commands.common import load_config
from dictate.errors import OutputError
from dictate.fsutil import write_atomic


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="word error rates of models on your recordings (NAME.wav + NAME.txt)",
                       description="Transcribes every NAME.<audio> that has a NAME.txt in DIR (DIR/validation "
                                   "when there is one) with each model, and prints WER, CER, substitutions, "
                                   "deletions, insertions and the real-time factor. Text is normalised first: "
                                   + evaluation.NORMALISATION + ".")
    p.add_argument("dir", type=Path)
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="a stock name, a model of yours, a CTranslate2 folder, a ggml/gguf file, or ENGINE=MODEL "
                        "(repeat to compare)")
    p.add_argument("--engine", help="engine for stock names (default: from config)")
    p.add_argument("--split", help="the sub-folder to use (default: validation if there is one, else DIR)")
    p.add_argument("--language", help="language code such as en (default: from config, else detect)")
    p.add_argument("--beam-size", type=int, default=5, metavar="N", help="beam size (default 5; 1: greedy)")
    p.add_argument("--worst", type=int, default=3, metavar="N", help="show the N worst files per model")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the full report as JSON")
    p.add_argument("--threads", type=int, help="CPU threads for inference (0: all cores)")
    p.add_argument("--max-new-tokens", type=int, help=argparse.SUPPRESS)
    p.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # tests: no child processes
    p.set_defaults(func=run)


def _pct(x: float) -> str:
    return f"{100 * x:5.1f} %"


def _short(label: str) -> str:
    """A model path as its last two parts: the table stays readable."""
    parts = Path(label).parts
    return label if len(label) <= 32 or len(parts) < 3 else str(Path(*parts[-2:]))


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    folder, items = evaluation.load_items(args.dir, args.split)
    specs = [evaluation.model_spec(m, args.engine or cfg.engine.name) for m in args.model]
    options = evaluation.eval_options(cfg, language=args.language, beam_size=args.beam_size,
                                      max_new_tokens=args.max_new_tokens)
    sys.stderr.write(f"dictate: {len(items)} files in {folder}, {len(specs)} model(s)\n")
    sys.stderr.flush()
    results = evaluation.run_eval(cfg, specs, items, options, isolate=not args.in_process)
    out = sys.stdout
    width = max(12, *(len(_short(r.label)) for r in results))
    out.write(f"{'model':<{width}}  {'engine':<14} {'WER':>7} {'CER':>7} {'sub':>5} {'del':>5} {'ins':>5} "
              f"{'words':>6} {'RTF':>6}\n")
    for r in results:
        e = r.errors
        out.write(f"{_short(r.label):<{width}}  {r.engine:<14} {_pct(e.wer)} {_pct(e.cer)} {e.substitutions:>5} "
                  f"{e.deletions:>5} {e.insertions:>5} {e.reference_words:>6} {r.rtf:>6.3f}\n")
    if args.worst > 0:
        for r in results:
            out.write(f"\nworst files, {_short(r.label)}:\n")
            for f in r.worst(args.worst):
                out.write(f"  {f.name}  WER {_pct(f.errors.wer).strip()} ({f.errors.errors} errors)\n"
                          f"    ref: {f.reference}\n    hyp: {f.hypothesis}\n")
    out.write(f"\ntext normalised: {evaluation.NORMALISATION}\n")
    if args.json:
        data = json.dumps(evaluation.report_json(folder, options, results), indent=2, ensure_ascii=False)
        try:
            write_atomic(args.json, data + "\n", durable=False)
        except OSError as exc:
            raise OutputError(f"cannot write {args.json}: {exc.strerror or exc}") from None
    return 0
