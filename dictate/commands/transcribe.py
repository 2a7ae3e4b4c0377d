"""`dictate transcribe FILE...`: files to text, subtitles or JSON."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from dictate.batch import (BATCH_SIZE, FileTranscript, OutputConflict, check_targets, metadata, output_names,
                           output_targets, remember, transcribe_file, write_outputs)
from dictate.commands.common import add_engine_args, base_options, engine_name, err, load_config, make_engine
from dictate.errors import AudioDecodeError, EngineError, OutputError
from dictate.formats import FORMATS, render

log = logging.getLogger(__name__)

PROGRESS_MIN_S = 60.0  # files shorter than this finish too fast for a progress line to help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio or video files",
                       description="Transcribe audio or video files. Text goes to stdout unless --output-dir is given.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_engine_args(p, beam_default=5)
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N",
                   help=f"faster-whisper: decode N windows of a file over 30 s at once (default: {BATCH_SIZE}; "
                        "0 decodes one window at a time, each with the text before it as its prompt)")
    p.add_argument("--vad", action=argparse.BooleanOptionalAction, default=True,
                   help="skip stretches without speech (default: on)")
    p.add_argument("--word-timestamps", action="store_true", help="word-level times (in JSON)")
    p.add_argument("--format", default=["txt"], type=_formats, help=f"comma-separated: {','.join(FORMATS)} (default: txt)")
    p.add_argument("--output-dir", type=Path,
                   help="write STEM.FORMAT files here instead of printing (NAME.EXT.FORMAT when two inputs share a "
                        "stem, NAME.EXT (2).FORMAT when they share a name)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist "
                                                            "(default: such a file is reported and kept)")
    p.add_argument("--no-history", action="store_true", help="do not keep this transcription in the history")
    p.set_defaults(func=run)


def _formats(spec: str) -> list[str]:
    formats = [f.strip().lower() for f in spec.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"unknown format {','.join(bad) or '(none)'}; choose from {','.join(FORMATS)}")
    return formats


class _Progress:
    """One line on stderr, rewritten in place on a terminal, every 10% otherwise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tty = sys.stderr.isatty()
        self.last_decile = -1

    def __call__(self, done_s: float, total_s: float) -> None:
        if total_s < PROGRESS_MIN_S:
            return
        frac = done_s / total_s if total_s else 1.0
        line = f"{self.name}: {frac:4.0%} ({_mmss(done_s)} / {_mmss(total_s)})"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if frac >= 1.0 else ""))
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _mmss(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _print(result: FileTranscript, formats: list[str], meta: dict) -> None:
    for fmt in formats:
        sys.stdout.write(render(fmt, result.segments, meta))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    formats = args.format
    out_dir = args.output_dir
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    cfg = load_config(args)
    options = base_options(args, cfg, beam_size=args.beam_size, vad_filter=args.vad,
                           word_timestamps=args.word_timestamps, batch_size=args.batch_size)
    engine = make_engine(args, cfg)  # a fallback is announced once through logging
    name, model = engine_name(args, cfg), str(args.model or cfg.engine.model)
    names = output_names(args.files)  # decided for the whole batch: no two inputs share an output
    failed: list[tuple[Path, str]] = []
    started = time.perf_counter()
    for path, out_name in zip(args.files, names):
        try:
            if out_dir is not None:  # before the work: an existing file is not replaced by surprise
                check_targets(output_targets(out_name, formats, out_dir), path, overwrite=args.overwrite)
            result = transcribe_file(path, engine, options, on_progress=_Progress(path.name),
                                     engine_name=name, model=model)
            meta = metadata(result, options)  # after the work: the engine that served, in a chain
            outputs: list[Path] = []
            if out_dir is None:
                _print(result, formats, meta)
            else:
                outputs = write_outputs(result, formats, out_dir, out_name, meta, overwrite=args.overwrite)
            if not args.no_history:
                remember(cfg.paths.history_db, result, options, outputs=outputs)
        except (AudioDecodeError, EngineError, OutputConflict) as exc:
            err(str(exc))
            failed.append((path, str(exc)))
        except OutputError:
            raise  # a full disk fails every later file too
    if len(args.files) > 1 or failed:
        ok = len(args.files) - len(failed)
        err(f"{ok} of {len(args.files)} files transcribed in {time.perf_counter() - started:.1f} s"
            + (f"; failed: {', '.join(str(p) for p, _ in failed)}" if failed else ""))
    return 1 if failed else 0
