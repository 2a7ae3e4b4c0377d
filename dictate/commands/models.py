"""`dictate models list|download|path`."""

from __future__ import annotations

import argparse
import sys

from dictate.commands.common import load_config
from dictate.engines import models
from dictate.engines.models import ModelFormat


def _format(engine: str) -> ModelFormat:
    return ModelFormat.GGML if engine == "whisper.cpp" else ModelFormat.CT2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download and locate Whisper models")
    verbs = p.add_subparsers(dest="models_verb", metavar="ACTION", required=True)
    for name, help_text, func in (("list", "stock models and whether they are downloaded", run_list),
                                  ("download", "download a stock model into the shared cache", run_download),
                                  ("path", "print where a model is on disk", run_path)):
        v = verbs.add_parser(name, help=help_text)
        if name != "list":
            v.add_argument("name", help="a stock name such as base, or auto")
        v.add_argument("--engine", default=None, help="faster-whisper (default) or whisper.cpp: which format")
        v.set_defaults(func=func)


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
