"""`dictate transcribe FILE...`: files to text, subtitles or JSON."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from pathlib import Path

from dictate.batch import FileTranscript, transcribe_file
from dictate.commands.common import add_engine_args, base_options, engine_name, err, load_config, make_engine
from dictate.errors import AudioDecodeError, EngineError, OutputError
from dictate.formats import FORMATS, render
from dictate.fsutil import write_atomic

log = logging.getLogger(__name__)

PROGRESS_MIN_S = 60.0  # files shorter than this finish too fast for a progress line to help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio or video files",
                       description="Transcribe audio or video files. Text goes to stdout unless --output-dir is given.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_engine_args(p, beam_default=5)
    p.add_argument("--batch-size", type=int, default=0, metavar="N",
                   help="faster-whisper: decode N windows at once (faster on long files with a GPU or many cores)")
    p.add_argument("--vad", action=argparse.BooleanOptionalAction, default=True,
                   help="skip stretches without speech (default: on)")
    p.add_argument("--word-timestamps", action="store_true", help="word-level times (in JSON)")
    p.add_argument("--format", default=["txt"], type=_formats, help=f"comma-separated: {','.join(FORMATS)} (default: txt)")
    p.add_argument("--output-dir", type=Path, help="write FILE-STEM.FORMAT files here instead of printing")
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


def _write(result: FileTranscript, formats: list[str], out_dir: Path | None, meta: dict) -> None:
    if out_dir is None:
        for fmt in formats:
            sys.stdout.write(render(fmt, result.segments, meta))
        sys.stdout.flush()
        return
    for fmt in formats:
        target = out_dir / f"{result.path.stem}.{fmt}"
        try:
            write_atomic(target, render(fmt, result.segments, meta), durable=False)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        log.info("wrote %s", target)


def _remember(history_db: Path, result: FileTranscript, meta: dict) -> None:
    """Keep the transcription in the history (searchable, re-transcribable); a history problem
    never costs the user the transcript itself."""
    from dictate.storage import History, HistoryEntry

    path = result.path.resolve()
    try:
        History(history_db).add(HistoryEntry(
            id=uuid.uuid4().hex[:12], kind="file", title=path.name, text=result.text, duration_s=result.duration_s,
            engine=meta["engine"], model=meta["model"], options={"language": meta["language"],
                                                                 "beam_size": meta["beam_size"]},
            location=str(path), audio_path=str(path)))
    except Exception as exc:  # sqlite errors, full disk: warn and go on
        log.warning("could not add %s to the history: %s", path.name, exc)


def run(args: argparse.Namespace) -> int:
    formats = args.format
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {args.output_dir}: {exc.strerror or exc}") from None
    cfg = load_config(args)
    options = base_options(args, cfg, beam_size=args.beam_size, vad_filter=args.vad,
                           word_timestamps=args.word_timestamps, batch_size=args.batch_size)
    engine = make_engine(args, cfg)  # a fallback is announced once through logging
    meta_base = {"engine": getattr(engine, "active_name", None) or engine_name(args, cfg), "model": str(getattr(engine, "model_path", args.model or cfg.engine.model)),
                 "language": options.language, "beam_size": options.beam_size}
    failed: list[tuple[Path, str]] = []
    started = time.perf_counter()
    for path in args.files:
        try:
            result = transcribe_file(path, engine, options, on_progress=_Progress(path.name))
            _write(result, formats, args.output_dir,
                   {"file": str(path), "duration_s": round(result.duration_s, 3), **meta_base})
            if not args.no_history:
                _remember(cfg.paths.history_db, result, meta_base)
        except (AudioDecodeError, EngineError) as exc:
            err(str(exc))
            failed.append((path, str(exc)))
        except OutputError:
            raise  # a full disk fails every later file too
    if len(args.files) > 1 or failed:
        ok = len(args.files) - len(failed)
        err(f"{ok} of {len(args.files)} files transcribed in {time.perf_counter() - started:.1f} s"
            + (f"; failed: {', '.join(str(p) for p, _ in failed)}" if failed else ""))
    return 1 if failed else 0
