"""`dictate vocabulary learn|show`: names and terms from your own writing as the engine's hotwords."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dictate import config as config_mod
from dictate.commands.common import err


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vocabulary", help="your names and terms, so Whisper spells them your way",
                       description="Personal vocabulary: names and terms you write often that are rare in general "
                                   "English, kept in the config as engine.hotwords (an editable list).")
    verbs = p.add_subparsers(dest="vocabulary_verb", metavar="ACTION", required=True)

    learn = verbs.add_parser("learn", help="find your terms in your writing and propose them",
                             description="Read text, Markdown, HTML and e-mail files (folders are walked) and list "
                                         "the words you write often that Whisper does not know as words. With "
                                         "--apply (or a yes at the prompt) they are added to engine.hotwords.")
    learn.add_argument("paths", nargs="+", type=Path, metavar="FOLDER")
    learn.add_argument("--apply", action="store_true", help="add them to the config without asking")
    learn.add_argument("--max", type=int, default=None, metavar="N", help="propose at most N terms (default 30)")
    learn.add_argument("--min-count", type=int, default=None, metavar="N",
                       help="only words written at least N times (default 3)")
    learn.set_defaults(func=run_learn)

    show = verbs.add_parser("show", help="print the current vocabulary (engine.hotwords)")
    show.set_defaults(func=run_show)


def run_learn(args: argparse.Namespace) -> int:
    from dictate.vocabulary import add_hotwords, learn

    options = {k: v for k, v in (("limit", args.max), ("min_count", args.min_count)) if v is not None}
    learned = learn([str(p) for p in args.paths], **options)
    skipped = f", {len(learned.skipped)} skipped" if learned.skipped else ""
    err(f"read {learned.words:,} words from {learned.files} files{skipped}")
    if not learned.terms:
        err("no names or terms found that you write often and Whisper does not know")
        return 0
    sys.stdout.write(f"{'term':<28}{'times':>7}{'paragraphs':>12}\n")
    for t in learned.terms:
        sys.stdout.write(f"{t.text:<28}{t.count:>7}{t.paragraphs:>12}\n")
    sys.stdout.flush()
    apply = args.apply
    if not apply and sys.stdin.isatty():
        answer = input(f"Add these {len(learned.terms)} terms to your vocabulary (engine.hotwords)? [y/N] ")
        apply = answer.strip().lower() in ("y", "yes")
    if not apply:
        err("nothing changed; run again with --apply to add them (then edit engine.hotwords as you like)")
        return 0
    cfg = config_mod.load()
    added = add_hotwords(cfg, [t.text for t in learned.terms])
    err(f"added {len(added)} terms to engine.hotwords ({len(cfg.engine.hotwords)} in all); "
        f"edit the list in {cfg.paths.config_file} ([engine] hotwords) or in the settings")
    return 0


def run_show(args: argparse.Namespace) -> int:
    cfg = config_mod.load()
    for word in cfg.engine.hotwords:
        sys.stdout.write(f"{word}\n")
    if not cfg.engine.hotwords:
        err("no vocabulary yet; `dictate vocabulary learn FOLDER` finds it in your writing")
    return 0
