"""`dictate punctuation train|apply|eval`: the personal punctuation model from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dictate import config as config_mod
from dictate.commands.common import err
from dictate.config import Paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("punctuation", help="train and use a punctuation model of your own writing",
                       description="A punctuation model trained on your own writing re-punctuates transcripts "
                                   "in your style (Oxford comma or not, dashes, sentence length).")
    verbs = p.add_subparsers(dest="punctuation_verb", metavar="ACTION", required=True)

    t = verbs.add_parser("train", help="train on your writing and make the model active",
                         description="Train on text, Markdown, HTML and e-mail (.eml, mbox) files or folders of "
                                     "them (50,000 to 1,000,000 words of your own writing work best). The model "
                                     "becomes the active one in the config.")
    t.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    t.add_argument("--out", type=Path, metavar="MODEL", help="where to save the model (default: in the data folder)")
    t.add_argument("--no-activate", dest="activate", action="store_false",
                   help="save the model without making it the active one")
    t.set_defaults(func=run_train)

    a = verbs.add_parser("apply", help="re-punctuate text (one paragraph per line)",
                         description="Read text, one paragraph per line, and write it re-punctuated: the same "
                                     "words in the same order, with your marks and capitals.")
    a.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="input text (default: standard input)")
    a.add_argument("--model", type=Path, metavar="MODEL", help="model file (default: the active model)")
    a.add_argument("--keep-weight", type=float, default=0.0, metavar="W",
                   help="how much the input's own marks count (0: ignore them, the default)")
    a.set_defaults(func=run_apply)

    e = verbs.add_parser("eval", help="score a model on punctuated text",
                         description="Strip the marks from TEXT, let MODEL put them back, and print per-mark "
                                     "precision, recall and F1 and the style figures of both.")
    e.add_argument("model", type=Path, metavar="MODEL")
    e.add_argument("texts", nargs="+", type=Path, metavar="TEXT")
    e.set_defaults(func=run_eval)


def default_model_path(paths: Paths | None = None) -> Path:
    return (paths or Paths.default()).data_dir / "punctuation" / "personal.npz"


def run_train(args: argparse.Namespace) -> int:
    from dictate.punctuation import RECOMMENDED_WORDS, read_corpus, train_model

    corpus = read_corpus(args.paths)
    words = corpus.words
    skipped = f", {len(corpus.skipped)} skipped" if corpus.skipped else ""
    err(f"read {words:,} words in {len(corpus.paragraphs):,} paragraphs from {corpus.files} files{skipped}")
    if words < RECOMMENDED_WORDS:
        err(f"note: {RECOMMENDED_WORDS:,} words or more give a model that knows your habits better")
    t0 = time.perf_counter()
    model = train_model(corpus.paragraphs)
    cfg = config_mod.load() if args.activate or args.out is None else None
    out = args.out or default_model_path(cfg.paths if cfg else None)
    path = model.save(out)
    err(f"trained in {time.perf_counter() - t0:.1f} s; saved {path}")
    if args.activate and cfg is not None:
        cfg.punctuation.model_path = str(path.resolve())
        cfg.punctuation.enabled = True
        config_mod.save(cfg)
        err("it is now the active punctuation model")
    return 0


def _active_model_path(args: argparse.Namespace) -> Path:
    if args.model is not None:
        return args.model
    cfg = config_mod.load()
    if not cfg.punctuation.model_path:
        from dictate.punctuation import PunctuationError

        raise PunctuationError("no punctuation model is active; train one with `dictate punctuation train PATH` or give --model")
    return Path(cfg.punctuation.model_path)


def _read_input(name: str) -> str:
    from dictate.punctuation import PunctuationError

    if name == "-":
        data = sys.stdin.buffer.read()
        where = "standard input"
    else:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise PunctuationError(f"{name}: cannot read ({exc.strerror or exc})") from exc
        where = name
    if b"\x00" in data[:8192]:
        raise PunctuationError(f"{where}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PunctuationError(f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc


def run_apply(args: argparse.Namespace) -> int:
    from dictate.punctuation import load_model

    model = load_model(_active_model_path(args))
    text = _read_input(args.file)
    trailing_newline = text.endswith("\n")
    body = text[:-1] if trailing_newline else text
    out = model.punctuate_text(body.replace("\r\n", "\n"), source_weight=args.keep_weight)
    sys.stdout.write(out + ("\n" if trailing_newline or out else ""))
    sys.stdout.flush()
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from dictate.punctuation import evaluate, format_report, load_model, read_corpus

    model = load_model(args.model)
    corpus = read_corpus(args.texts)
    report = evaluate(model, corpus.paragraphs)
    sys.stdout.write(format_report(report))
    sys.stdout.flush()
    return 0
