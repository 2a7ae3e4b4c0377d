"""`dictate files [FILE...]`: the files window on its own, with these files (or folders) queued."""

from __future__ import annotations

import argparse
from pathlib import Path

from dictate.commands.transcribe import _formats
from dictate.errors import DictateError
from dictate.formats import FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("files", help="open the files window (drop files to transcribe them)",
                       description="Open the files window: drop audio or video files or folders on it, or name "
                                   "them here, and get TXT/SRT/VTT/JSON for each.")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE", help="files or folders to queue at once")
    p.add_argument("--engine", help="faster-whisper, whisper.cpp, remote, or module:attribute (default: from config)")
    p.add_argument("--model", help="auto, a stock name, a CTranslate2 directory or a ggml file (default: from config)")
    p.add_argument("--language", help="language code such as en (default: from config, else detect)")
    p.add_argument("--format", type=_formats, help=f"formats ticked at first, comma-separated: {','.join(FORMATS)} "
                                                   "(default: txt,srt)")
    p.add_argument("--output-dir", type=Path, help="write the transcripts here (default: next to each file)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dictate import config as config_mod
    from dictate.ui.app import desktop_missing

    missing = desktop_missing()
    if missing is not None:
        raise DictateError(missing.replace("for the tray app", "for the files window")
                           .replace("use `dictate listen` for voice typing in this terminal, ", ""))
    from dictate.ui.files_window import run as run_window

    return run_window(config_mod.load(), args.files, engine=args.engine, model=args.model, language=args.language,
                      formats=args.format, out_dir=args.output_dir)
