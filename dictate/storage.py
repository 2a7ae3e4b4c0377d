"""Where finished work is kept: note folders in the notes directory and the history database.

A note is a folder named by its id holding `note.md` (the text), `audio.flac` or `audio.opus`
(compressed with PyAV), `note.json` (times, engine, model, options, durations, status) and
`transcript.json` (segments and words with times). Every file is written to a temporary name,
fsynced and renamed, so a crash never leaves half a file under a final name.

The history (stdlib sqlite3, full-text search with FTS5 where the SQLite build has it) lists
notes, dictations and file transcriptions; re-transcribing an entry keeps the previous text as a
revision."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from dictate.errors import OutputError
from dictate.types import SAMPLE_RATE_HZ, Segment, Word
from dictate.fsutil import write_atomic

log = logging.getLogger(__name__)

NOTE_TEXT = "note.md"
NOTE_META = "note.json"
NOTE_TRANSCRIPT = "transcript.json"

# format name -> (container, codec, sample format, file extension, bit rate)
AUDIO_FORMATS: dict[str, tuple[str, str, str, str, int | None]] = {
    "flac": ("flac", "flac", "s16", "flac", None),
    "opus": ("ogg", "libopus", "flt", "opus", 32_000),  # 32 kbit/s mono speech is transparent enough
}


class NoteStatus:
    READY = "ready"
    PENDING = "pending"  # audio kept, text not (yet): the engine or model failed; can be retried


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_json(path: Path, data: Any) -> None:
    _write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class AudioEncoder:
    """Incremental FLAC/Opus writer: feed float32 chunks as they come, `close()` to finish.
    Writes to `<path>.part` and renames on close, so an unfinished file is never mistaken for audio."""

    def __init__(self, path: Path, fmt: str = "flac") -> None:
        import av

        if fmt not in AUDIO_FORMATS:
            raise OutputError(f"unknown audio format {fmt!r}; choose from {', '.join(AUDIO_FORMATS)}")
        container_fmt, codec, self._sample_fmt, _ext, bit_rate = AUDIO_FORMATS[fmt]
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.samples = 0
        try:
            self._container = av.open(str(self.tmp), "w", format=container_fmt)
            self._stream = self._container.add_stream(codec, rate=SAMPLE_RATE_HZ)
            self._stream.layout = "mono"
            self._stream.format = self._sample_fmt
            if bit_rate:
                self._stream.bit_rate = bit_rate
        except (av.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from None

    def write(self, chunk: NDArray[np.float32]) -> None:
        import av

        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.size == 0:
            return
        data = (np.clip(chunk, -1.0, 1.0) * 32767.0).round().astype(np.int16) if self._sample_fmt == "s16" else chunk
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.reshape(1, -1)), format=self._sample_fmt,
                                           layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        frame.pts = self.samples
        frame.time_base = Fraction(1, SAMPLE_RATE_HZ)
        self.samples += chunk.size
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None

    def close(self) -> Path:
        import av

        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            _fsync_file(self.tmp)
            os.replace(self.tmp, self.path)
        except (av.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        return self.path

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # already broken: the point is to remove the partial file
            pass
        self.tmp.unlink(missing_ok=True)


def encode_audio(chunks: Iterable[NDArray[np.float32]], path: Path, fmt: str = "flac") -> Path:
    enc = AudioEncoder(path, fmt)
    for chunk in chunks:
        enc.write(chunk)
    return enc.close()


def audio_file_name(fmt: str) -> str:
    return "audio." + AUDIO_FORMATS[fmt][3]


# --- notes -----------------------------------------------------------------------------------

def segments_to_json(segments: Iterable[Segment]) -> list[dict[str, Any]]:
    return [asdict(s) for s in segments]


def segments_from_json(data: list[dict[str, Any]]) -> list[Segment]:
    out = []
    for d in data:
        words = tuple(Word(**w) for w in d.get("words", ()))
        out.append(Segment(**{**d, "words": words}))
    return out


@dataclass(frozen=True)
class Note:
    id: str
    folder: Path
    meta: dict[str, Any] = field(hash=False, compare=False)

    @property
    def status(self) -> str:
        return str(self.meta.get("status", NoteStatus.PENDING))

    @property
    def text_path(self) -> Path:
        return self.folder / NOTE_TEXT

    @property
    def audio_path(self) -> Path | None:
        name = self.meta.get("audio_file")
        return self.folder / name if name else None

    def text(self) -> str:
        try:
            return self.text_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def segments(self) -> list[Segment]:
        try:
            return segments_from_json(json.loads((self.folder / NOTE_TRANSCRIPT).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return []


class NoteStore:
    """The notes directory: one folder per note."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder_for(self, note_id: str) -> Path:
        return self.root / note_id

    def create(self, note_id: str) -> Path:
        folder = self.folder_for(note_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the note folder {folder}: {exc.strerror or exc}") from None
        return folder

    def put_audio(self, note_id: str, source: Path) -> Path:
        """Move an encoded audio file into the note (copy when it lives on another file system)."""
        target = self.create(note_id) / source.name
        try:
            os.replace(source, target)
        except OSError:
            tmp = target.with_name(target.name + ".part")
            try:
                shutil.copyfile(source, tmp)
                _fsync_file(tmp)
                os.replace(tmp, target)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
            source.unlink(missing_ok=True)
        return target

    def write(self, note_id: str, meta: dict[str, Any], markdown: str | None = None,
              segments: Iterable[Segment] | None = None) -> Note:
        """Text and transcript first, metadata last: a note.json means the rest is complete."""
        folder = self.create(note_id)
        if markdown is not None:
            _write_atomic(folder / NOTE_TEXT, markdown)
        if segments is not None:
            _write_json(folder / NOTE_TRANSCRIPT, segments_to_json(segments))
        _write_json(folder / NOTE_META, {**meta, "id": note_id})
        return Note(note_id, folder, {**meta, "id": note_id})

    def get(self, note_id: str) -> Note | None:
        folder = self.folder_for(note_id)
        try:
            meta = json.loads((folder / NOTE_META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return Note(note_id, folder, meta)

    def list(self) -> list[Note]:
        if not self.root.is_dir():
            return []
        notes = (self.get(p.name) for p in sorted(self.root.iterdir()) if p.is_dir())
        return [n for n in notes if n is not None]


def render_markdown(title: str, paragraphs: Iterable[str], *, when: str = "", duration_s: float | None = None,
                    notices: Iterable[str] = ()) -> str:
    lines = [f"# {title}", ""]
    info = " · ".join(filter(None, [when, _hms(duration_s) if duration_s is not None else ""]))
    if info:
        lines += [f"*{info}*", ""]
    for notice in notices:
        lines += [f"> {notice}", ""]
    for para in paragraphs:
        if para.strip():
            lines += [para.strip(), ""]
    return "\n".join(lines)


def _hms(seconds: float | None) -> str:
    s = int(round(seconds or 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# --- history ---------------------------------------------------------------------------------

KINDS = ("note", "dictation", "file")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'ready',
    duration_s REAL,
    engine TEXT,
    model TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    location TEXT,
    audio_path TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS entries_created ON entries(created_at);
CREATE TABLE IF NOT EXISTS revisions (
    entry_id TEXT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    text TEXT NOT NULL,
    engine TEXT,
    model TEXT,
    options TEXT NOT NULL DEFAULT '{}'
);
"""

_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS entries_fts USING fts5(title, text, content='entries', content_rowid='rowid');
CREATE TRIGGER IF NOT EXISTS entries_ai AFTER INSERT ON entries BEGIN
  INSERT INTO entries_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS entries_ad AFTER DELETE ON entries BEGIN
  INSERT INTO entries_fts(entries_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
END;
CREATE TRIGGER IF NOT EXISTS entries_au AFTER UPDATE ON entries BEGIN
  INSERT INTO entries_fts(entries_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
  INSERT INTO entries_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
"""


@dataclass(frozen=True)
class HistoryEntry:
    id: str
    kind: str  # note, dictation, file
    created_at: float = field(default_factory=time.time)
    title: str = ""
    text: str = ""
    status: str = NoteStatus.READY
    duration_s: float | None = None
    engine: str | None = None
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    location: str | None = None  # the note folder or the transcribed file
    audio_path: str | None = None  # what re-transcription decodes
    error: str | None = None


@dataclass(frozen=True)
class Revision:
    created_at: float
    text: str
    engine: str | None
    model: str | None
    options: dict[str, Any]


_COLUMNS = [f for f in HistoryEntry.__dataclass_fields__]


class History:
    """The history database. Each call opens its own connection, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(_SCHEMA)
                try:
                    db.executescript(_FTS)
                    self.fts = True
                except sqlite3.OperationalError:  # an SQLite without FTS5: search falls back to LIKE
                    self.fts = False
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(f"cannot open the history {self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0)
        db.execute("PRAGMA foreign_keys = ON")
        db.row_factory = sqlite3.Row
        return db

    def _run(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            db = self._connect()
            try:
                with db:
                    return db.execute(sql, tuple(params)).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise OutputError(f"history {self.path}: {exc}") from None

    @staticmethod
    def _entry(row: sqlite3.Row) -> HistoryEntry:
        data = {k: row[k] for k in _COLUMNS}
        data["options"] = json.loads(data["options"] or "{}")
        return HistoryEntry(**data)

    def add(self, entry: HistoryEntry) -> HistoryEntry:
        """Insert or replace (a note written again after a retry keeps its id)."""
        if entry.kind not in KINDS:
            raise ValueError(f"unknown history kind {entry.kind!r}")
        values = {**asdict(entry), "options": json.dumps(entry.options, ensure_ascii=False)}
        cols = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in _COLUMNS if c != "id")
        self._run(f"INSERT INTO entries ({cols}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}",
                  [values[c] for c in _COLUMNS])
        return entry

    def get(self, entry_id: str) -> HistoryEntry | None:
        rows = self._run("SELECT * FROM entries WHERE id = ?", [entry_id])
        return self._entry(rows[0]) if rows else None

    def list(self, kind: str | None = None, status: str | None = None, limit: int = 50) -> list[HistoryEntry]:
        where, params = self._filters(kind, status)
        rows = self._run(f"SELECT * FROM entries {where} ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit])
        return [self._entry(r) for r in rows]

    @staticmethod
    def _filters(kind: str | None, status: str | None, prefix: str = "") -> tuple[str, list[Any]]:
        clauses, params = [], []
        if kind:
            clauses.append(f"{prefix}kind = ?")
            params.append(kind)
        if status:
            clauses.append(f"{prefix}status = ?")
            params.append(status)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def search(self, query: str, kind: str | None = None, limit: int = 50) -> list[HistoryEntry]:
        """Entries whose title or text contain every word of `query`, best match first."""
        words = [w for w in query.split() if w]
        if not words:
            return self.list(kind, limit=limit)
        where, params = self._filters(kind, None, prefix="e.")
        extra = where.replace("WHERE", "AND")
        if self.fts:
            # Each word as a quoted prefix term: user text never becomes FTS syntax.
            match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
            rows = self._run(f"SELECT e.* FROM entries_fts f JOIN entries e ON e.rowid = f.rowid "
                             f"WHERE entries_fts MATCH ? {extra} ORDER BY bm25(entries_fts) LIMIT ?",
                             [match, *params, limit])
        else:
            like = " AND ".join("(e.title LIKE ? ESCAPE '\\' OR e.text LIKE ? ESCAPE '\\')" for _ in words)
            pats = []
            for w in words:
                p = "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                pats += [p, p]
            rows = self._run(f"SELECT e.* FROM entries e WHERE {like} {extra} ORDER BY e.created_at DESC LIMIT ?",
                             [*pats, *params, limit])
        return [self._entry(r) for r in rows]

    def update(self, entry_id: str, **fields: Any) -> HistoryEntry:
        entry = self.get(entry_id)
        if entry is None:
            raise OutputError(f"no history entry {entry_id}")
        data = {**asdict(entry), **fields}
        return self.add(HistoryEntry(**data))

    def replace_text(self, entry_id: str, text: str, **fields: Any) -> HistoryEntry:
        """New text for an entry (a re-transcription); the previous text becomes a revision."""
        old = self.get(entry_id)
        if old is None:
            raise OutputError(f"no history entry {entry_id}")
        if old.text:
            self._run("INSERT INTO revisions (entry_id, created_at, text, engine, model, options) VALUES (?,?,?,?,?,?)",
                      [old.id, time.time(), old.text, old.engine, old.model, json.dumps(old.options)])
        return self.update(entry_id, text=text, **fields)

    def revisions(self, entry_id: str) -> list[Revision]:
        rows = self._run("SELECT * FROM revisions WHERE entry_id = ? ORDER BY created_at", [entry_id])
        return [Revision(r["created_at"], r["text"], r["engine"], r["model"], json.loads(r["options"])) for r in rows]

    def delete(self, entry_id: str) -> None:
        self._run("DELETE FROM entries WHERE id = ?", [entry_id])

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(self.list(limit=-1))
