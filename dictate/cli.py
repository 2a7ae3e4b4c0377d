"""The `dictate` command: assembles the verbs in dictate.commands and maps failures to exit codes
(0 success, 1 a user-facing error with a one-line message, 2 usage)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from dictate import __version__
from dictate import log as log_setup
from dictate.commands import VERB_MODULES
from dictate.config import Paths
from dictate.errors import DictateError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dictate",
        description="Local-first dictation with Whisper. Without a command, starts the tray app.",
    )
    parser.add_argument("--version", action="version", version=f"dictate {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages on stderr (-vv: debug)")
    # For the tray app (no verb); each verb takes its own --engine/--model/--language after its name.
    app = parser.add_argument_group("the tray app (no command)")
    app.add_argument("--engine", help="faster-whisper, whisper.cpp, remote, or module:attribute (default: from config)")
    app.add_argument("--model", help="auto, a stock name (tiny … large-v3-turbo), a CTranslate2 directory or a ggml file")
    app.add_argument("--language", help="language code such as en (default: from config, else detect)")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(f"dictate.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"dictate.commands.{name}":
                continue  # a verb not in this build
            raise
        module.register(sub)
    return parser


def _run_app(args: argparse.Namespace) -> int:
    try:
        from dictate.ui.app import run
    except ImportError as exc:
        if getattr(exc, "name", "") not in ("dictate.ui", "dictate.ui.app"):
            raise DictateError(f"the desktop app cannot start ({exc}); run `dictate doctor`") from exc
        raise DictateError("the tray app is not in this version yet: use `dictate listen` for voice typing "
                           "in the terminal, `dictate transcribe FILE`, or `dictate --help`") from None
    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_setup.setup(Paths.default().log_dir, args.verbose)
    func = getattr(args, "func", None) or _run_app
    try:
        return int(func(args) or 0)
    except DictateError as exc:
        sys.stderr.write(f"dictate: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("dictate: interrupted\n")
        return 130
    except BrokenPipeError:  # `dictate transcribe x | head`
        return 0
