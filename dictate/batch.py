"""File jobs: decode, transcribe with progress, hand back segments; and where their outputs go.

Output names are decided for a whole batch before anything is transcribed, from the inputs alone
(`output_names`), so they are predictable and two inputs never share an output. Existing files are
never replaced unless the caller says so (`overwrite`), and nothing is written for a job that was
cancelled or failed: outputs are written only once the transcript is complete, each atomically."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from dictate.audio.files import iter_decode
from dictate.engines import Engine, iter_segments
from dictate.errors import DictateError, OutputError
from dictate.formats import render
from dictate.fsutil import write_atomic
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions

log = logging.getLogger(__name__)

# faster-whisper's batched pipeline on files over 30 s (VAD windows decoded 4 at a time), for
# `dictate transcribe` and the files window alike. Measured on 2 CPU cores with tiny.en over 17.6
# min of espeak-ng prose: 29.5 s against 64.6 s one window at a time (8 at a time: 28.7 s; 2: 35.8 s),
# WER 16.7 % against 19.2 %. Progress and a cancel come once per batch, so no bigger than it pays.
BATCH_SIZE = 4

ProgressCallback = Callable[[float, float], None]
"""Called with (seconds of audio transcribed so far, total seconds)."""


class FileCancelled(DictateError):
    """The file job was cancelled; nothing was written for it."""


class OutputConflict(OutputError):
    """This file's output cannot go where it would: the name is taken (replacing was not asked
    for) or it is the input itself. Only this file fails; the others go on."""


@dataclass(frozen=True)
class FileTranscript:
    path: Path
    segments: tuple[Segment, ...]
    duration_s: float
    decode_s: float  # wall time spent decoding
    transcribe_s: float  # wall time spent in the engine
    # What did the work, asked after it was done: in a fallback chain, the engine that served.
    engine: str | None = None
    model: str | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def served_by(engine: object, name: str | None = None, model: str | None = None) -> tuple[str | None, str | None]:
    """(engine name, model) of whatever did the last job: a fallback chain (or the loader in front
    of one) reports its serving engine as `active_name`, and that engine's model as `model_path`."""
    active = getattr(engine, "active_name", None)
    model_path = getattr(engine, "model_path", None)
    return (str(active) if active else name), (str(model_path) if model_path else model)


def decode_cancellable(path: Path, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """The whole file at 16 kHz; `should_stop` is asked between decoded chunks."""
    chunks = []
    for chunk in iter_decode(path):
        if should_stop is not None and should_stop():
            raise FileCancelled(f"{path.name}: cancelled")
        chunks.append(chunk)
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def transcribe_file(path: str | Path, engine: Engine, options: TranscribeOptions,
                    on_progress: ProgressCallback | None = None, *, engine_name: str | None = None,
                    model: str | None = None, should_stop: Callable[[], bool] | None = None) -> FileTranscript:
    """Decode `path` (any format PyAV reads) and transcribe it. Raises AudioDecodeError for a bad
    file, EngineError when the engine fails, FileCancelled when `should_stop()` turned true
    (asked between decoded chunks and between segments). `engine_name`/`model` are recorded when
    the engine does not say what served."""
    path = Path(path)
    t0 = time.perf_counter()
    audio = decode_cancellable(path, should_stop)
    t1 = time.perf_counter()
    duration = audio.size / SAMPLE_RATE_HZ
    segments: list[Segment] = []
    for seg in iter_segments(engine, audio, options):
        if should_stop is not None and should_stop():
            raise FileCancelled(f"{path.name}: cancelled")
        segments.append(seg)
        if on_progress is not None:
            on_progress(min(seg.end_s, duration), duration)
    if on_progress is not None:
        on_progress(duration, duration)
    t2 = time.perf_counter()
    log.info("%s: %.1f s of audio, decoded in %.2f s, transcribed in %.2f s", path, duration, t1 - t0, t2 - t1)
    served, served_model = served_by(engine, engine_name, model)
    return FileTranscript(path, tuple(segments), duration, t1 - t0, t2 - t1, served, served_model)


# --- outputs ----------------------------------------------------------------------------------------

def output_names(paths: Sequence[Path]) -> list[str]:
    """The base name of each input's outputs, decided from the whole batch: the stem when no other
    input has it (talk.mp3 -> talk.srt); the whole file name when stems repeat (talk.mp3 and
    talk.flac -> talk.mp3.srt and talk.flac.srt); and when even file names repeat (a/talk.mp3 and
    b/talk.mp3), " (2)", " (3)"… after the name, in the order given. Case is ignored in the
    comparison, since many file systems ignore it too."""
    stems = Counter(Path(p).stem.casefold() for p in paths)
    names = [Path(p).stem if stems[Path(p).stem.casefold()] == 1 else Path(p).name for p in paths]
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name.casefold()] += 1
        n = seen[name.casefold()]
        out.append(name if n == 1 else f"{name} ({n})")
    return out


def output_targets(name: str, formats: Sequence[str], out_dir: Path) -> list[Path]:
    return [Path(out_dir) / f"{name}.{fmt}" for fmt in formats]


def check_targets(targets: Sequence[Path], source: Path, *, overwrite: bool,
                  hint: str = "use --overwrite to replace it") -> None:
    """Raise OutputConflict for a target that is already there (unless `overwrite`) or that is
    the input itself (never replaced, whatever `overwrite` says)."""
    src = Path(source).resolve()
    for target in targets:
        if target.resolve() == src:
            raise OutputConflict(f"{target}: is the input file itself; choose another output folder")
        if target.exists() and not overwrite:
            raise OutputConflict(f"{target} exists; not replaced ({hint})")


def write_outputs(result: FileTranscript, formats: Sequence[str], out_dir: Path, name: str, meta: dict, *,
                  overwrite: bool = False, hint: str = "use --overwrite to replace it") -> list[Path]:
    """Write `name.FORMAT` files for `result` into `out_dir` (each atomically: a crash or a full
    disk leaves no half file under the final name)."""
    targets = output_targets(name, formats, out_dir)
    check_targets(targets, result.path, overwrite=overwrite, hint=hint)
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    for fmt, target in zip(formats, targets):
        try:
            write_atomic(target, render(fmt, result.segments, meta), durable=False)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
        log.info("wrote %s", target)
    return targets


def metadata(result: FileTranscript, options: TranscribeOptions) -> dict:
    """The JSON output's header: the file and what transcribed it."""
    return {"file": str(result.path), "duration_s": round(result.duration_s, 3), "engine": result.engine,
            "model": result.model, "language": options.language, "beam_size": options.beam_size}


def remember(history_db: Path, result: FileTranscript, options: TranscribeOptions, *,
             outputs: Sequence[Path] = ()) -> str | None:
    """Keep the transcription in the history (searchable, re-transcribable) and return its id; a
    history problem never costs the user the transcript itself (a warning, and None)."""
    import uuid

    from dictate.storage import History, HistoryEntry

    path = result.path.resolve()
    entry_id = uuid.uuid4().hex[:12]
    opts = {"language": options.language, "beam_size": options.beam_size}
    if outputs:
        opts["outputs"] = [str(p) for p in outputs]
    try:
        History(history_db).add(HistoryEntry(
            id=entry_id, kind="file", title=path.name, text=result.text, duration_s=result.duration_s,
            engine=result.engine, model=result.model, options=opts, location=str(path), audio_path=str(path)))
    except Exception as exc:  # sqlite errors, full disk: warn and go on
        log.warning("could not add %s to the history: %s", path.name, exc)
        return None
    return entry_id
