"""`dictate models list|download|path|add|remove|convert`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dictate.commands.common import err, load_config
from dictate.engines import models, user_models
from dictate.engines.models import ModelFormat
from dictate.errors import ModelError


def _format(engine: str) -> ModelFormat:
    return ModelFormat.GGML if engine == "whisper.cpp" else ModelFormat.CT2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download and locate Whisper models; add your own, convert for whisper.cpp")
    verbs = p.add_subparsers(dest="models_verb", metavar="ACTION", required=True)
    for name, help_text, func in (("list", "stock models and whether they are downloaded", run_list),
                                  ("download", "download a stock model into the shared cache", run_download),
                                  ("path", "print where a model is on disk", run_path)):
        v = verbs.add_parser(name, help=help_text)
        if name != "list":
            v.add_argument("name", help="a stock name such as base, or auto")
        v.add_argument("--engine", default=None, help="faster-whisper (default) or whisper.cpp: which format")
        v.set_defaults(func=func)

    a = verbs.add_parser("add", help="register your own model (a CTranslate2 folder or a ggml/gguf file) under "
                                     "a name, after checking that it loads; then --model NAME uses it")
    a.add_argument("name")
    a.add_argument("path", type=Path)
    a.add_argument("--replace", action="store_true", help="replace a model of yours with this name")
    a.set_defaults(func=run_add)
    r = verbs.add_parser("remove", help="forget a model of yours (its files stay where they are)")
    r.add_argument("name")
    r.set_defaults(func=run_remove)
    c = verbs.add_parser("convert", help="make a faster-whisper (CTranslate2) model usable in whisper.cpp")
    c.add_argument("ct2_dir", type=Path, metavar="CT2DIR")
    c.add_argument("--to", choices=["ggml"], required=True, help="the target format")
    c.add_argument("out", type=Path, metavar="OUT.bin")
    c.add_argument("--force", action="store_true", help="overwrite OUT.bin if it exists")
    c.add_argument("--add", metavar="NAME", help="also register the result under NAME")
    c.set_defaults(func=run_convert)


def _engine(args: argparse.Namespace) -> str:
    return args.engine or load_config(args).engine.name


def run_list(args: argparse.Namespace) -> int:
    fmt = _format(_engine(args))
    auto = models.auto_model_name()
    sys.stdout.write(f"{'model':<20} {'size':>8}  status\n")
    for name in models.stock_names(fmt):
        size = models.approx_size_mb(name)
        path = models.cached_path(name, fmt)
        status = f"downloaded  {path}" if path else "-"
        mark = "  (auto on this machine)" if name == auto else ""
        sys.stdout.write(f"{name:<20} {f'{size} MB' if size else '?':>8}  {status}{mark}\n")
    mine = user_models.list_user_models()
    if mine:
        sys.stdout.write("\nyour models\n")
    for m in mine:
        there = "" if m.path.exists() else "  (missing)"
        sys.stdout.write(f"{m.name:<20} {m.engine:>14}  {m.path}{there}\n")
    return 0


def run_download(args: argparse.Namespace) -> int:
    fmt = _format(_engine(args))
    name = models.auto_model_name() if args.name == "auto" else args.name
    path = models.cached_path(name, fmt) or models.download(name, fmt)
    sys.stdout.write(f"{path}\n")
    return 0


def run_path(args: argparse.Namespace) -> int:
    sys.stdout.write(f"{models.resolve(args.name, _format(_engine(args)), allow_download=False)}\n")
    return 0


def run_add(args: argparse.Namespace) -> int:
    model = user_models.register(args.name, args.path, replace=args.replace)
    err(f"model {model.name} added ({model.engine}): use --model {model.name}"
        + (" --engine whisper.cpp" if model.engine == "whisper.cpp" else ""))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    model = user_models.remove(args.name)
    err(f"model {model.name} removed (its files in {model.path} are kept)")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from dictate.engines.convert import convert_ct2_to_ggml

    if args.out.exists() and not args.force:
        raise ModelError(f"{args.out} exists; pass --force to overwrite it")
    out = convert_ct2_to_ggml(args.ct2_dir, args.out)
    sys.stdout.write(f"{out}\n")
    if args.add:
        model = user_models.register(args.add, out, replace=True)
        err(f"model {model.name} added (whisper.cpp): use --engine whisper.cpp --model {model.name}")
    return 0
