"""Long notes: record to a crash-safe journal, transcribe finished spans in the background, and
turn the journal into a note (text + compressed audio + metadata) in the notes folder and history.

Threads (each named, talking through queues):
  the caller's thread  `NoteRecorder.record()`: source -> journal -> segmenter -> span queue
  note-transcriber     creates the engine (so a slow or failing model never delays capture) and
                       transcribes spans in order, reading their audio back from the journal
  note-encoder         follows the journal with the FLAC/Opus encoder, so stop does not wait for it
Memory stays flat: audio lives on disk; only span boundaries and text are kept.

Whatever fails after recording (engine, model, punctuation), the audio becomes a note with status
"pending" that `dictate note retranscribe ID` retries; if even the audio cannot be written, the
journal stays where `dictate note recover` finds it."""

from __future__ import annotations

import dataclasses
import logging
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
from numpy.typing import NDArray

from dictate.audio.journal import Journal, JournalFullError, JournalState, JournalWriter, release
from dictate.audio.segmenter import Segmenter, SegmenterParams, Span
from dictate.config import Config
from dictate.engines import Engine
from dictate.errors import AudioDeviceError, DictateError, OutputError
from dictate.longform import (Punctuator, SpanResult, SpanTranscriber, build_paragraphs, load_punctuator,
                              pass_options, title_from)
from dictate.storage import (AudioEncoder, History, HistoryEntry, Note, NoteStatus, NoteStore, audio_file_name,
                             render_markdown)
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions

log = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]
POLL_S = 0.01  # the source is read this often when it has nothing new
ENCODE_CHUNK = 30 * SAMPLE_RATE_HZ


class AudioSource(Protocol):
    """What dictate.audio.capture's Microphone and FileSource offer the reader."""

    def start(self) -> None: ...
    def read(self) -> NDArray[np.float32]: ...
    def stop(self) -> NDArray[np.float32]: ...
    @property
    def exhausted(self) -> bool: ...


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass
class NoteJob:
    """What the note will be made with (also stored in the journal's sidecar, so recovery knows)."""

    engine: str
    model: str
    options: TranscribeOptions
    audio_format: str = "flac"
    paragraph_pause_s: float = 2.0
    source: str = "microphone"

    def sidecar(self) -> dict[str, Any]:
        opts = {k: v for k, v in dataclasses.asdict(self.options).items() if k != "extra"}
        return {"engine": self.engine, "model": self.model, "options": opts, "audio_format": self.audio_format,
                "paragraph_pause_s": self.paragraph_pause_s, "source": self.source}

    @classmethod
    def from_config(cls, cfg: Config, *, engine: str | None = None, model: str | None = None,
                    base: TranscribeOptions | None = None, source: str = "microphone") -> "NoteJob":
        base = base or TranscribeOptions(language=cfg.engine.language or None, hotwords=tuple(cfg.engine.hotwords))
        return cls(engine=engine or cfg.engine.name, model=str(model or cfg.engine.model),
                   options=pass_options(base, cfg.notes.beam_size), audio_format=cfg.notes.audio_format,
                   paragraph_pause_s=cfg.notes.paragraph_pause_s, source=source)


class WorkerEngine:
    """An Engine that runs on the app's EngineWorker as a batch job, so live dictation keeps going
    first and one thread still owns the model: pass `lambda: WorkerEngine(worker)` as the factory."""

    def __init__(self, worker: Any) -> None:
        self._worker = worker

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list:
        from dictate.worker import Priority

        return self._worker.submit(audio, options, priority=Priority.BATCH).result()


# --- background workers ---------------------------------------------------------------------------

class SpanPass:
    """The note-transcriber thread: builds the engine, then transcribes queued spans in order."""

    def __init__(self, journal: Journal, engine_factory: EngineFactory, options: TranscribeOptions,
                 on_error: Callable[[DictateError], None] | None = None) -> None:
        self.journal = journal
        self._on_error = on_error
        self._factory = engine_factory
        self._options = options
        self._queue: queue.Queue[Span | None] = queue.Queue()
        self.results: list[SpanResult] = []
        self.failed_spans: list[Span] = []
        self.error: DictateError | None = None
        self.engine_load_s = 0.0
        self._thread = threading.Thread(target=self._run, name="note-transcriber", daemon=True)

    def start(self) -> "SpanPass":
        self._thread.start()
        return self

    def submit(self, span: Span) -> None:
        self._queue.put(span)

    def finish(self) -> None:
        """No more spans; wait until the queued ones are done (or the engine has failed)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        transcriber = None
        try:
            t0 = time.monotonic()
            engine = self._factory()
            self.engine_load_s = time.monotonic() - t0
            transcriber = SpanTranscriber(engine.transcribe, self._options)
        except DictateError as exc:
            self.error = exc
        except Exception as exc:  # a third-party engine's bug must not cost the recording
            self.error = DictateError(f"the engine failed to start: {exc}")
        if self.error is not None and self._on_error is not None:
            self._on_error(self.error)
        while True:
            span = self._queue.get()
            if span is None:
                return
            if transcriber is None or self.error is not None:
                self.failed_spans.append(span)
                continue
            try:
                self.results.append(transcriber(span, self.journal.read(span.start, span.end)))
            except DictateError as exc:
                log.error("note %s: transcription failed at %s: %s", self.journal.id, _mmss(span.start_s), exc)
                self.error = exc
                self.failed_spans.append(span)
            except Exception as exc:
                log.exception("note %s: engine crashed", self.journal.id)
                self.error = DictateError(f"the engine failed: {exc}")
                self.failed_spans.append(span)


class JournalEncoder:
    """The note-encoder thread: compresses the journal into the note's audio file while it grows."""

    def __init__(self, journal: Journal, fmt: str, available: Callable[[], int], folder: Path) -> None:
        self.journal = journal
        # Straight into the note's folder: a full journal disk does not stop the note being made.
        self.folder = folder
        self.path = folder / audio_file_name(fmt)
        self._fmt = fmt
        self._available = available  # samples safely in the journal (the writer's count)
        self._done = threading.Event()
        self.encoded = 0
        self.error: OutputError | None = None
        self._thread = threading.Thread(target=self._run, name="note-encoder", daemon=True)

    def start(self) -> "JournalEncoder":
        self._thread.start()
        return self

    def finish(self) -> Path | None:
        """Encode what is left and close the file; None (with `error` set) when it failed."""
        self._done.set()
        self._thread.join()
        if self.error:
            self.discard()
            return None
        return self.path

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        try:
            self.folder.rmdir()  # only if empty: never anything else in it
        except OSError:
            pass

    def _run(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            encoder = AudioEncoder(self.path, self._fmt)
        except OSError as exc:
            self.error = OutputError(f"cannot create the note folder {self.folder}: {exc.strerror or exc}")
            return
        except OutputError as exc:
            self.error = exc
            return
        try:
            while True:
                final = self._done.is_set()
                target = self._available()
                while self.encoded < target:
                    end = min(self.encoded + ENCODE_CHUNK, target)
                    encoder.write(self.journal.read(self.encoded, end))
                    self.encoded = end
                if final:
                    encoder.close()
                    return
                self._done.wait(1.0)
        except OutputError as exc:
            self.error = exc
            encoder.abort()
        except Exception as exc:
            self.error = OutputError(f"cannot encode the note's audio: {exc}")
            encoder.abort()


# --- recording ----------------------------------------------------------------------------------

@dataclass
class NoteOutcome:
    """What became of a recording."""

    note: Note | None  # None when even the audio could not be written (the journal is kept)
    journal: Path
    text: str
    status: str
    notices: list[str]
    error: str | None
    timings: dict[str, float] = field(default_factory=dict)


class NoteRecorder:
    """Records one long note. `record()` runs in the caller's thread until `stop()` (any thread),
    the duration, the end of a file source, or a failure; `finish()` then makes the note."""

    def __init__(self, source: AudioSource, cfg: Config, job: NoteJob, engine_factory: EngineFactory, *,
                 background: bool | None = None, segmenter: SegmenterParams | None = None,
                 journal_kwargs: dict[str, Any] | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.cfg = cfg
        self.job = job
        self.background = cfg.notes.transcribe_while_recording if background is None else background
        self._engine_factory = engine_factory
        self._segmenter = Segmenter(segmenter)
        self._stop = threading.Event()
        self._on_notice = on_notice or (lambda msg: None)
        self.notices: list[str] = []
        self._pending_spans: list[Span] = []
        self._journal_kwargs = journal_kwargs or {}
        self.writer: JournalWriter | None = None
        self.journal: Journal | None = None
        self.started_at = ""
        self.stopped_at_monotonic = 0.0
        self._pass: SpanPass | None = None
        self._encoder: JournalEncoder | None = None

    @property
    def note_id(self) -> str | None:
        return self.writer.id if self.writer else None

    @property
    def recorded_s(self) -> float:
        return self.writer.duration_s if self.writer else 0.0

    def stop(self) -> None:
        """Ask record() to end (thread-safe; a signal handler may call it)."""
        self._stop.set()

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        if self.writer is not None:
            self.writer.note(message)
        self._on_notice(message)

    def open(self) -> JournalWriter:
        """Create the journal (before capture starts, so a full disk is said at once)."""
        self.writer = JournalWriter.create(self.cfg.paths.journal_dir, self.job.sidecar(), **self._journal_kwargs)
        self.journal = Journal(self.writer.folder)
        self.started_at = datetime.now().astimezone().isoformat(timespec="seconds")
        self._pass = SpanPass(self.journal, self._engine_factory, self.job.options, on_error=lambda exc: self._on_notice(
            f"{exc}; recording goes on and the note will be kept for a retry")).start()
        self._encoder = JournalEncoder(self.journal, self.job.audio_format, lambda: self.writer.samples_written,
                                       NoteStore(self.cfg.notes_dir).folder_for(self.writer.id)).start()
        return self.writer

    def record(self, duration_s: float | None = None, should_stop: Callable[[], bool] | None = None) -> None:
        """Capture until stopped. Raises JournalFullError (journal intact, recording ended) when the
        disk fills; a lost microphone ends the recording with a notice instead."""
        if self.writer is None:
            self.open()
        assert self.writer is not None
        limit = int(duration_s * SAMPLE_RATE_HZ) if duration_s else None
        try:
            self.source.start()
        except DictateError:
            self._abandon()
            raise
        check_every = 0
        try:
            while not self._stop.is_set():
                try:
                    chunk = self.source.read()
                except AudioDeviceError as exc:
                    self._notice(f"{exc}: recording ended at {_mmss(self.recorded_s)}; everything captured "
                                 f"before is kept")
                    break
                if chunk.size:
                    if limit is not None:
                        chunk = chunk[:max(0, limit - self.writer.samples_written)]
                    self._append(chunk)
                    if limit is not None and self.writer.samples_written >= limit:
                        break
                elif self.source.exhausted:
                    break
                else:
                    time.sleep(POLL_S)
                check_every += 1
                if should_stop is not None and check_every % 20 == 0 and should_stop():
                    break
        except JournalFullError:
            self._stop_source(keep=False)
            self._abandon(JournalState.INTERRUPTED)
            raise
        self.stopped_at_monotonic = time.monotonic()
        self._stop_source(keep=True, limit=limit)
        self.writer.close()

    def _append(self, chunk: NDArray[np.float32]) -> None:
        assert self.writer is not None
        self.writer.append(chunk)
        for span in self._segmenter.feed(chunk):
            self._route(span)

    def _route(self, span: Span) -> None:
        assert self._pass is not None
        if self.background:
            self._pass.submit(span)
        else:
            self._pending_spans.append(span)

    def _stop_source(self, keep: bool, limit: int | None = None) -> None:
        """Stop capture; what it captured before the stop is kept (up to the duration asked for)."""
        try:
            rest = self.source.stop()
        except DictateError as exc:
            self._notice(f"{exc} while stopping the recording")
            return
        if limit is not None and self.writer is not None:
            rest = rest[:max(0, limit - self.writer.samples_written)]
        if keep and rest.size:
            self._append(rest)

    def _abandon(self, state: str = JournalState.INTERRUPTED) -> None:
        """Recording failed: stop the helpers; the journal stays for `dictate note recover`."""
        if self._pass is not None:
            self._pass.finish()
        if self._encoder is not None:
            self._encoder.finish()
            self._encoder.discard()
        if self.writer is not None:
            self.writer.close(state)
            release(self.writer.folder)

    def finish(self) -> NoteOutcome:
        """Transcribe what is left, write the note and its history entry, delete the journal."""
        assert self.writer is not None and self.journal is not None and self._pass is not None
        for span in self._segmenter.finish():
            self._route(span)
        for span in self._pending_spans:
            self._pass.submit(span)
        stopped = self.stopped_at_monotonic or time.monotonic()
        self._pass.finish()
        audio = self._encoder.finish() if self._encoder else None
        encode_error = self._encoder.error if self._encoder else None
        outcome = make_note(self.cfg, self.journal, self.job, self._pass, audio, encode_error,
                            started_at=self.started_at, notices=self.notices)
        ready = time.monotonic()
        remainder = [r for r in self._pass.results if r.finished_at > stopped]
        outcome.timings.update(
            stop_to_ready_s=round(ready - stopped, 3),
            remainder_audio_s=round(sum((r.span.end - r.span.start) for r in remainder) / SAMPLE_RATE_HZ, 3),
            remainder_engine_s=round(sum(r.finished_at - max(r.started_at, stopped) for r in remainder), 3),
            engine_load_s=round(self._pass.engine_load_s, 3),
        )
        _store_timings(outcome)
        return outcome


def _store_timings(outcome: NoteOutcome) -> None:
    if outcome.note is None:
        return
    meta = {**outcome.note.meta, "timings": {**outcome.note.meta.get("timings", {}), **outcome.timings}}
    store = NoteStore(outcome.note.folder.parent)
    outcome.note = store.write(outcome.note.id, meta)


# --- making the note --------------------------------------------------------------------------------

def make_note(cfg: Config, journal: Journal, job: NoteJob, span_pass: SpanPass, audio: Path | None,
              encode_error: OutputError | None, *, started_at: str, notices: list[str]) -> NoteOutcome:
    """Move the audio into the note folder, write text/metadata/history, then delete the journal.
    Without audio nothing is deleted: the journal is kept for `dictate note recover`."""
    notices = list(notices)
    duration_s = journal.num_samples / SAMPLE_RATE_HZ
    if audio is None:
        msg = (f"{encode_error or 'the audio could not be encoded'}; the recording is kept in {journal.folder} "
               f"(run `dictate note recover`)")
        journal.update(state=JournalState.STOPPED, error=msg)
        release(journal.folder)
        return NoteOutcome(None, journal.folder, "", NoteStatus.PENDING, notices, msg)
    store = NoteStore(cfg.notes_dir)
    try:
        audio_path = audio if audio.parent == store.folder_for(journal.id) else store.put_audio(journal.id, audio)
    except OutputError as exc:
        msg = f"{exc}; the recording is kept in {journal.folder} (run `dictate note recover`)"
        release(journal.folder)
        return NoteOutcome(None, journal.folder, "", NoteStatus.PENDING, notices, msg)
    note, text = write_transcript(cfg, store, journal.id, job, span_pass, audio_path, duration_s=duration_s,
                            started_at=started_at, notices=notices, extra_meta={
                                "recorded_notices": list(journal.sidecar.get("notices", []))})
    journal.delete()  # the audio is safe in the note folder (a pending note keeps it for the retry)
    release(journal.folder)
    return NoteOutcome(note, journal.folder, text, note.status, notices, note.meta.get("error"), dict(note.meta.get("timings", {})))


def write_transcript(cfg: Config, store: NoteStore, note_id: str, job: NoteJob, span_pass: SpanPass,
                     audio_path: Path, *, duration_s: float, started_at: str, notices: list[str],
                     extra_meta: dict[str, Any] | None = None,
                     history: History | None = None) -> tuple[Note, str]:
    """The note's text, transcript and metadata from a finished pass (status pending on failure),
    plus its history entry. Returns the note and its plain text."""
    results = sorted(span_pass.results, key=lambda r: r.span.start)
    error = str(span_pass.error) if span_pass.error else None
    punctuate: Punctuator | None = load_punctuator(cfg, notices) if error is None else None
    paragraphs = build_paragraphs(results, job.paragraph_pause_s, punctuate, notices) if error is None else []
    text = "\n\n".join(p.text for p in paragraphs)
    when = started_at[:16].replace("T", " ") if started_at else ""
    status = NoteStatus.PENDING if error else NoteStatus.READY
    title = title_from(text, f"Note {when}".strip())
    if error:
        notices = notices + [f"not transcribed yet: {error}; the audio is kept, retry with "
                             f"`dictate note retranscribe {note_id}`"]
    segments = [s for r in results for s in r.segments]
    engine_s = sum(r.engine_s for r in results)
    meta = {
        "kind": "note", "status": status, "title": title, "started_at": started_at,
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 3), "audio_file": audio_path.name, "audio_format": job.audio_format,
        "engine": job.engine, "model": job.model,
        "options": {k: v for k, v in dataclasses.asdict(job.options).items() if k not in ("extra", "initial_prompt")},
        "paragraph_pause_s": job.paragraph_pause_s, "punctuation": "personal" if punctuate else "whisper",
        "source": job.source, "spans": len(results) + len(span_pass.failed_spans),
        "timings": {"engine_s": round(engine_s, 3), "engine_load_s": round(span_pass.engine_load_s, 3)},
        "notices": notices, "error": error, **(extra_meta or {}),
    }
    md = render_markdown(title, [p.text for p in paragraphs], when=when, duration_s=duration_s, notices=notices)
    note = store.write(note_id, meta, md, segments)
    history = history or History(cfg.paths.history_db)
    entry = HistoryEntry(note_id, "note", time.time(), title, text, status, round(duration_s, 3), job.engine,
                         job.model, meta["options"], str(note.folder), str(audio_path), error)
    old = history.get(note_id)
    if old is not None and old.text and old.text != text and text:
        history.replace_text(note_id, text, **{k: v for k, v in dataclasses.asdict(entry).items()
                                               if k not in ("id", "text", "created_at")})
    else:
        history.add(dataclasses.replace(entry, created_at=old.created_at) if old else entry)
    return note, text


# --- recovery and re-transcription ------------------------------------------------------------------

def job_from_sidecar(cfg: Config, sidecar: dict[str, Any], *, engine: str | None = None, model: str | None = None,
                     overrides: dict[str, Any] | None = None) -> NoteJob:
    """The job a journal or note was recorded with, with the user's new choices on top."""
    opts = {k: (tuple(v) if isinstance(v, list) else v) for k, v in (sidecar.get("options") or {}).items()
            if k in TranscribeOptions.__dataclass_fields__ and k not in ("extra", "initial_prompt")}
    opts.update({k: v for k, v in (overrides or {}).items() if v is not None})
    base = TranscribeOptions(**opts)
    return NoteJob(engine=engine or sidecar.get("engine") or cfg.engine.name,
                   model=str(model or sidecar.get("model") or cfg.engine.model),
                   options=pass_options(base, int(opts.get("beam_size") or cfg.notes.beam_size)),
                   audio_format=str(sidecar.get("audio_format") or cfg.notes.audio_format),
                   paragraph_pause_s=float(sidecar.get("paragraph_pause_s") or cfg.notes.paragraph_pause_s),
                   source=str(sidecar.get("source") or "recovered"))


def transcribe_journal(journal: Journal, job: NoteJob, engine_factory: EngineFactory,
                       params: SegmenterParams | None = None) -> SpanPass:
    """The whole pass over a journal on disk (recovery, retry): segment while reading, transcribe."""
    span_pass = SpanPass(journal, engine_factory, job.options).start()
    seg = Segmenter(params)
    for chunk in journal.iter_chunks():
        for span in seg.feed(chunk):
            span_pass.submit(span)
    for span in seg.finish():
        span_pass.submit(span)
    span_pass.finish()
    return span_pass


def recover(cfg: Config, journal: Journal, engine_factory: EngineFactory, *, engine: str | None = None,
            model: str | None = None, overrides: dict[str, Any] | None = None) -> NoteOutcome:
    """Repair an unfinished journal and make it a note, like a recording that stopped normally."""
    samples = journal.repair()
    notices = [f"recovered from an interrupted recording ({_mmss(samples / SAMPLE_RATE_HZ)} of audio)"]
    job = job_from_sidecar(cfg, journal.sidecar, engine=engine, model=model, overrides=overrides)
    encoder = JournalEncoder(journal, job.audio_format, lambda: samples,
                             NoteStore(cfg.notes_dir).folder_for(journal.id)).start()
    span_pass = transcribe_journal(journal, job, engine_factory)
    audio = encoder.finish()
    return make_note(cfg, journal, job, span_pass, audio, encoder.error,
                     started_at=str(journal.sidecar.get("created_at", "")), notices=notices)


def retranscribe(cfg: Config, entry_id: str, engine_factory: EngineFactory, *, engine: str | None = None,
                 model: str | None = None, overrides: dict[str, Any] | None = None) -> HistoryEntry:
    """Run the pass again on a history entry's audio with other settings (also: retry a pending
    note). The audio is decoded into a temporary journal, so memory stays flat for long notes."""
    from dictate.audio.files import iter_decode

    history = History(cfg.paths.history_db)
    entry = history.get(entry_id)
    if entry is None:
        raise DictateError(f"no note or transcription with id {entry_id} (see `dictate note list`)")
    if not entry.audio_path or not Path(entry.audio_path).exists():
        raise DictateError(f"{entry_id}: its audio is gone ({entry.audio_path}); it cannot be transcribed again")
    store = NoteStore(cfg.notes_dir)
    note = store.get(entry_id) if entry.kind == "note" else None
    sidecar = dict(note.meta) if note else {"engine": entry.engine, "model": entry.model, "options": entry.options}
    job = job_from_sidecar(cfg, sidecar, engine=engine, model=model, overrides=overrides)
    with tempfile.TemporaryDirectory(prefix="dictate-retranscribe-", dir=_temp_root(cfg)) as tmp:
        writer = JournalWriter(Path(tmp) / entry_id, {"kind": entry.kind}, sync_interval_s=1e9)
        for chunk in iter_decode(entry.audio_path):
            writer.append(chunk)
        writer.close()
        span_pass = transcribe_journal(Journal(writer.folder), job, engine_factory)
    if span_pass.error is not None:
        raise span_pass.error  # the existing text and audio are untouched
    if note is not None:
        write_transcript(cfg, store, entry_id, job, span_pass, Path(entry.audio_path),
                         duration_s=float(note.meta.get("duration_s") or entry.duration_s or 0.0),
                         started_at=str(note.meta.get("started_at", "")),
                         notices=[n for n in note.meta.get("notices", []) if not n.startswith("not transcribed yet")],
                         history=history)
        return history.get(entry_id) or entry
    paragraphs = build_paragraphs(span_pass.results, job.paragraph_pause_s, load_punctuator(cfg))
    opts = {k: v for k, v in dataclasses.asdict(job.options).items() if k not in ("extra", "initial_prompt")}
    return history.replace_text(entry_id, "\n\n".join(p.text for p in paragraphs), engine=job.engine,
                                model=job.model, options=opts, status=NoteStatus.READY, error=None)


def _temp_root(cfg: Config) -> str:
    root = cfg.paths.state_dir
    root.mkdir(parents=True, exist_ok=True)
    return str(root)
