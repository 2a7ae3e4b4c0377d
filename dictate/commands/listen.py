"""`dictate listen`: the microphone (or a file played as one) through the live pipeline; each
commit goes to stdout as soon as it is committed."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from dictate.commands.common import add_engine_args, base_options, err, load_config, make_engine
from dictate.errors import ConfigError, OutputError
from dictate.streaming import Commit
from dictate.types import Word

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="live transcription from the microphone (or a file played as one)",
                       description="Transcribe live: committed text goes to stdout as soon as it is settled. "
                                   "Ctrl-C stops; what was said last is still transcribed.")
    p.add_argument("--input", type=Path, metavar="FILE", help="play FILE as the microphone instead")
    p.add_argument("--speed", type=float, default=1.0, metavar="N",
                   help="with --input: play N times faster than real time (default: 1)")
    p.add_argument("--device", help="input device name or index (default: from config)")
    p.add_argument("--partial", action="store_true", help="also show tentative text on stderr")
    p.add_argument("--stats", type=Path, metavar="FILE", help="write JSON figures (samples lost, latency, ...) here")
    add_engine_args(p)
    p.set_defaults(func=run)


class _Printer:
    """Committed text on stdout, tentative text on stderr (rewritten in place on a terminal)."""

    def __init__(self, partial: bool) -> None:
        self.partial = partial
        self.started = False
        self.tty = sys.stderr.isatty()

    def commit(self, commit: Commit) -> None:
        text = commit.text
        if not self.started:
            text = text.lstrip()
            self.started = bool(text)
        sys.stdout.write(text)
        sys.stdout.flush()

    def tentative(self, words: list[Word]) -> None:
        if not self.partial:
            return
        text = "".join(w.text for w in words).strip()
        if self.tty:
            sys.stderr.write("\r\033[K… " + text)
        else:
            sys.stderr.write("… " + text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.partial and self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
        if self.started:
            sys.stdout.write("\n")
            sys.stdout.flush()


def _source(args: argparse.Namespace, cfg):
    if args.input is not None:
        from dictate.audio.capture import FileSource

        if not args.speed > 0:
            raise ConfigError("--speed must be a positive number")
        return FileSource(args.input, speed=args.speed, ring_capacity_s=cfg.audio.ring_capacity_s)
    from dictate.audio.capture import Microphone

    device = args.device if args.device is not None else cfg.audio.input_device
    return Microphone(device, preroll_s=cfg.audio.preroll_s, ring_capacity_s=cfg.audio.ring_capacity_s)


def run(args: argparse.Namespace) -> int:
    from dictate.controller import live_transcriber
    from dictate.worker import EngineWorker

    cfg = load_config(args)
    beam = args.beam_size or cfg.engine.live_beam_size
    options = base_options(args, cfg, beam_size=beam)
    source = _source(args, cfg)  # a bad file or device fails before the model is loaded
    engine = make_engine(args, cfg)
    printer = _Printer(args.partial)
    stop = threading.Event()

    def on_sigint(signum, frame) -> None:
        if stop.is_set():  # a second Ctrl-C: give up on the tail
            raise KeyboardInterrupt
        stop.set()
        err("stopping; transcribing what is left (Ctrl-C again to quit at once)")

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    worker = EngineWorker(engine)
    # The controller's factory puts source -> session -> worker together, as for the app.
    pipeline = live_transcriber(cfg, source, worker, options=options, on_commit=printer.commit,
                                on_partial=printer.tentative)
    try:
        stats = pipeline.run(stop)
    finally:
        printer.close()
        worker.close(timeout_s=0 if not pipeline.session.done else None)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if args.stats is not None:
        _write_stats(args.stats, stats)
    log.info("listen: %d windows, %.1f s engine time, %d samples lost", stats.windows, stats.engine_busy_s,
             stats.samples_lost)
    if stats.device_error:
        err(stats.device_error)
        return 1
    return 0


def _write_stats(path: Path, stats) -> None:
    try:
        path.write_text(json.dumps(stats.to_json(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
