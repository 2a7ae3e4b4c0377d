"""`dictate history show|edit ID`: read and correct the text of a dictation, note or file
transcription. With `[dataset] collect_corrections` on, an edit keeps the audio and the corrected
text as a training pair (see `dictate dataset`)."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from dictate.commands.common import err, load_config
from dictate.dataset import edit_entry
from dictate.errors import DictateError
from dictate.storage import History


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="show or correct a dictation, note or file transcription",
                       description="Entries of the history (ids from `dictate note list --kind all`).")
    verbs = p.add_subparsers(dest="history_verb", metavar="ACTION", required=True)
    s = verbs.add_parser("show", help="print an entry's text")
    s.add_argument("id")
    s.set_defaults(func=run_show)
    e = verbs.add_parser("edit", help="correct an entry's text (the old text is kept as a revision)",
                         description="The new text comes from --text, --file, standard input, or $EDITOR when "
                                     "run in a terminal.")
    e.add_argument("id")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--text", help="the corrected text")
    src.add_argument("--file", type=Path, metavar="PATH", help="read the corrected text from PATH")
    e.set_defaults(func=run_edit)


def _entry(entry_id: str):
    entry = History(load_config(argparse.Namespace()).paths.history_db).get(entry_id)
    if entry is None:
        raise DictateError(f"no history entry {entry_id} (see `dictate note list --kind all`)")
    return entry


def run_show(args: argparse.Namespace) -> int:
    sys.stdout.write(_entry(args.id).text.rstrip("\n") + "\n")
    return 0


def _from_editor(text: str) -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="dictate-edit-") as tmp:
        path = Path(tmp) / "text.txt"
        path.write_text(text + "\n", encoding="utf-8")
        try:
            subprocess.run([*shlex.split(editor), str(path)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise DictateError(f"the editor {editor!r} failed ({exc}); pass --text or --file instead") from None
        return path.read_text(encoding="utf-8")


def run_edit(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if args.text is not None:
        text = args.text
    elif args.file is not None:
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DictateError(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") from None
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        text = _from_editor(_entry(args.id).text)
    result = edit_entry(cfg, args.id, text)
    err(f"{args.id}: " + ("text corrected" if result.changed else "text unchanged"))
    if result.pair is not None:
        err(f"training pair {result.pair.id} ({result.pair.split}, {result.pair.duration_s:.1f} s of audio)")
    elif result.notice:
        err(result.notice)
    return 0
