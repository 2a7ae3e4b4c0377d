"""`dictate dataset add|status|remove|export`: pairs of your audio and the right text, for
fine-tuning a Whisper model on your voice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dictate import dataset
from dictate.commands.common import add_engine_args, err, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="training pairs of your speech and its text, for fine-tuning",
                       description="Pairs come from corrections ([dataset] collect_corrections) and `add`; "
                                   "`export` writes them in the layout fine-tuning scripts read.")
    verbs = p.add_subparsers(dest="dataset_verb", metavar="ACTION", required=True)

    a = verbs.add_parser("add", help="add a pair by hand: an audio file and a text file with its words")
    a.add_argument("audio", type=Path)
    a.add_argument("text_file", type=Path, metavar="TEXTFILE")
    a.set_defaults(func=run_add)

    s = verbs.add_parser("status", help="hours collected, by train/validation, against the 5-10 h target")
    s.add_argument("--list", action="store_true", help="also list every pair")
    s.set_defaults(func=run_status)

    r = verbs.add_parser("remove", help="delete a pair")
    r.add_argument("id")
    r.set_defaults(func=run_remove)

    e = verbs.add_parser("export", help="write DIR/train and DIR/validation (16 kHz WAV + text, <= 30 s pieces, "
                                        "metadata.csv for Hugging Face audiofolder)")
    e.add_argument("dir", type=Path)
    e.add_argument("--max-seconds", type=float, default=30.0, metavar="S", help="longest piece (default 30)")
    add_engine_args(e, beam_default=1)  # the model that finds word times in pairs longer than a piece
    e.set_defaults(func=run_export)


def run_add(args: argparse.Namespace) -> int:
    pair = dataset.add_manual(load_config(args), args.audio, args.text_file)
    sys.stdout.write(f"{pair.id}\t{pair.split}\t{pair.duration_s:.1f} s\n")
    return 0


def _hours(h: float) -> str:
    return f"{h:.2f} h" if h >= 0.1 else f"{h * 60:.1f} min"


def run_status(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    st = dataset.status(cfg)
    low, high = dataset.TARGET_HOURS
    out = sys.stdout
    for s in st.splits:
        out.write(f"{s.split:<11} {_hours(s.hours):>10}  {s.pairs} pair{'s' if s.pairs != 1 else ''}\n")
    out.write(f"{'total':<11} {_hours(st.hours):>10}  of the {low:g}-{high:g} h a fine-tune wants "
              f"({100 * st.target_share:.0f} % of {low:g} h)\n")
    out.write(f"collecting corrections: {'on' if st.collecting else 'off ([dataset] collect_corrections = true)'}\n")
    out.write(f"pairs in {st.folder}\n")
    if args.list:
        for p in dataset.list_pairs(cfg):
            out.write(f"{p.id}\t{p.split}\t{p.duration_s:.1f} s\t{p.text[:70]}\n")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    pair = dataset.remove_pair(load_config(args), args.id)
    err(f"removed {pair.id}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from dictate.commands.common import base_options, make_engine
    from dictate.export import export

    cfg = load_config(args)
    options = base_options(args, cfg, beam_size=args.beam_size or 1, word_timestamps=True, temperature=0.0)
    report = export(cfg, args.dir, engine_factory=lambda: make_engine(args, cfg), options=options,
                    max_piece_s=args.max_seconds, on_notice=err)
    for split in dataset.SPLITS:
        n, secs = report.pieces.get(split, 0), report.seconds.get(split, 0.0)
        sys.stdout.write(f"{split:<11} {n:>5} pieces  {secs / 60:8.1f} min  {args.dir / split}\n")
    sys.stdout.write(f"written {report.written}, unchanged {report.unchanged}, removed {report.removed}, "
                     f"skipped {len(report.skipped)}\n")
    return 1 if report.skipped and not report.written and not report.unchanged else 0
