"""Training pairs of your own speech and the right text, for fine-tuning a Whisper model on your
voice (the fine-tuning guide aims for 5-10 hours).

A pair comes from a correction (you edit the text of a dictation, note or file in the history,
when `[dataset] collect_corrections` is on) or is added by hand (`dictate dataset add`). Pairs
live in the data folder, one folder each:

    dataset/pairs/<id>/audio.flac   16 kHz mono, copied from the source (which may go away later)
    dataset/pairs/<id>/text.txt     the corrected text
    dataset/pairs/<id>/pair.json    source, duration, split, audio hash, times

The id is the source (`dictation-<history id>`, `note-…`, `file-…`, or `manual-<audio hash>`), so
a second correction of the same entry, or the same file added twice, updates one pair instead of
making two. The train/validation split is decided by a hash of that id: stable across runs, and
every piece of one recording lands on the same side. `dictate dataset export` (dictate.export)
writes them in the layout training scripts read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dictate.config import Config
from dictate.errors import DictateError, OutputError
from dictate.fsutil import write_atomic
from dictate.types import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

TARGET_HOURS = (5.0, 10.0)  # the guide's amount of one person's speech for a fine-tune
VALIDATION_PERCENT = 10  # share of recordings held out; fixed, so a pair never changes side
SPLITS = ("train", "validation")
AUDIO_NAME = "audio.flac"
TEXT_NAME = "text.txt"
META_NAME = "pair.json"


class DatasetError(DictateError):
    """A pair could not be made, found or read."""


def split_for(pair_id: str) -> str:
    """train or validation, from a hash of the pair's source id (never from its content, which a
    later correction may change)."""
    bucket = int(hashlib.sha256(pair_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "validation" if bucket < VALIDATION_PERCENT else "train"


def one_line(text: str) -> str:
    """Training text is one line: paragraphs and line breaks become single spaces."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Pair:
    id: str
    folder: Path
    text: str
    duration_s: float
    split: str
    source: str  # "dictation", "note", "file" or "manual"
    origin: str  # the file the audio came from
    audio_sha256: str
    created_at: float
    updated_at: float

    @property
    def audio_path(self) -> Path:
        return self.folder / AUDIO_NAME


def dataset_dir(cfg: Config) -> Path:
    return cfg.paths.data_dir / "dataset"


def _pairs_dir(cfg: Config) -> Path:
    return dataset_dir(cfg) / "pairs"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_pair(folder: Path) -> Pair | None:
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        text = (folder / TEXT_NAME).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return None
    if not (folder / AUDIO_NAME).is_file():
        return None
    return Pair(id=folder.name, folder=folder, text=text, duration_s=float(meta.get("duration_s", 0.0)),
                split=split_for(folder.name), source=str(meta.get("source", "")), origin=str(meta.get("origin", "")),
                audio_sha256=str(meta.get("audio_sha256", "")), created_at=float(meta.get("created_at", 0.0)),
                updated_at=float(meta.get("updated_at", 0.0)))


def list_pairs(cfg: Config) -> list[Pair]:
    root = _pairs_dir(cfg)
    if not root.is_dir():
        return []
    pairs = (_read_pair(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith("."))
    return [p for p in pairs if p is not None]


def get_pair(cfg: Config, pair_id: str) -> Pair | None:
    folder = _pairs_dir(cfg) / pair_id
    return _read_pair(folder) if folder.is_dir() else None


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    write_atomic(folder / META_NAME, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def save_pair(cfg: Config, pair_id: str, audio: Path, text: str, *, source: str) -> Pair:
    """Make pair `pair_id` from an audio file (any format FFmpeg reads) and its text, or give an
    existing pair its new text (the audio is copied once; it does not change)."""
    from dictate.audio.files import iter_decode
    from dictate.storage import AudioEncoder

    text = one_line(text)
    if not text:
        raise DatasetError("the text is empty: a training pair needs the words that were said")
    folder = _pairs_dir(cfg) / pair_id
    now = time.time()
    existing = get_pair(cfg, pair_id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if existing is None:
            audio = Path(audio)
            if not audio.is_file():
                raise DatasetError(f"{audio}: no such audio file")
            tmp_audio = folder / (".new-" + AUDIO_NAME)
            encoder = AudioEncoder(tmp_audio)
            try:
                for chunk in iter_decode(audio):  # AudioDecodeError names the file
                    encoder.write(chunk)
            except BaseException:
                encoder.abort()
                shutil.rmtree(folder, ignore_errors=True)  # a new pair: nothing else is in it
                raise
            encoder.close()
            duration = encoder.samples / SAMPLE_RATE_HZ
            meta = {"source": source, "origin": str(Path(audio).resolve()), "created_at": now,
                    "duration_s": round(duration, 3), "audio_sha256": _file_sha256(tmp_audio),
                    "sample_rate_hz": SAMPLE_RATE_HZ}
            tmp_audio.replace(folder / AUDIO_NAME)
        else:
            meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
        meta.update(updated_at=now, split=split_for(pair_id))
        write_atomic(folder / TEXT_NAME, text + "\n")  # text before metadata: pair.json means complete
        _write_meta(folder, meta)
    except OSError as exc:
        raise OutputError(f"cannot write the training pair {folder}: {exc.strerror or exc}") from None
    pair = get_pair(cfg, pair_id)
    if pair is None:  # pragma: no cover - just written
        raise DatasetError(f"the training pair {folder} could not be read back")
    log.info("training pair %s (%s, %.1f s): %s", pair.id, pair.split, pair.duration_s, text[:60])
    return pair


def add_manual(cfg: Config, audio: Path, text_file: Path) -> Pair:
    """`dictate dataset add AUDIO TEXTFILE`: the same audio added twice is one pair."""
    audio, text_file = Path(audio), Path(text_file)
    try:
        text = text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {text_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not audio.is_file():
        raise DatasetError(f"{audio}: no such audio file")
    pair_id = "manual-" + _file_sha256(audio)[:16]
    return save_pair(cfg, pair_id, audio, text, source="manual")


def remove_pair(cfg: Config, pair_id: str) -> Pair:
    pair = get_pair(cfg, pair_id)
    if pair is None:
        raise DatasetError(f"no training pair {pair_id} (see `dictate dataset status --list`)")
    shutil.rmtree(pair.folder, ignore_errors=True)
    return pair


# --- corrections ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class EditResult:
    entry: Any  # the updated HistoryEntry
    changed: bool  # the text differs from what was there
    pair: Pair | None  # the training pair made or updated (collect_corrections on)
    notice: str | None  # why no pair was made although collecting is on


def edit_entry(cfg: Config, entry_id: str, text: str) -> EditResult:
    """The user's corrected text for a history entry (dictation, note or file), saved as
    dictate.note_text does it (the previous text becomes a revision; a note's note.md is
    rewritten). With `[dataset] collect_corrections` on, the entry's audio and the new text are
    also kept as a training pair. The windows that edit text call this."""
    from dictate.note_text import save_text
    from dictate.storage import History

    if not text.strip():
        raise DatasetError("the corrected text is empty; to remove an entry, delete it instead")
    before = History(cfg.paths.history_db).get(entry_id)
    if before is None:
        raise DatasetError(f"no history entry {entry_id} (see `dictate note list --kind all`)")
    entry = save_text(cfg, entry_id, text)
    changed = entry.text != before.text
    if not cfg.dataset.collect_corrections:
        return EditResult(entry, changed, None, None)
    audio = Path(entry.audio_path) if entry.audio_path else None
    if audio is None or not audio.is_file():
        why = ("its audio was not kept (dictations made before collecting corrections was turned on keep none)"
               if audio is None else f"its audio is gone ({audio})")
        log.warning("history %s: no training pair: %s", entry_id, why)
        return EditResult(entry, changed, None, f"no training pair: {why}")
    pair = save_pair(cfg, f"{entry.kind}-{entry.id}", audio, entry.text, source=entry.kind)
    return EditResult(entry, changed, pair, None)


# --- status ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitStatus:
    split: str
    pairs: int
    hours: float


@dataclass(frozen=True)
class DatasetStatus:
    splits: tuple[SplitStatus, ...]
    collecting: bool
    folder: Path

    @property
    def hours(self) -> float:
        return sum(s.hours for s in self.splits)

    @property
    def pairs(self) -> int:
        return sum(s.pairs for s in self.splits)

    @property
    def target_share(self) -> float:
        """Collected against the lower end of the guide's target (1.0: 5 hours)."""
        return self.hours / TARGET_HOURS[0]


def status(cfg: Config) -> DatasetStatus:
    pairs = list_pairs(cfg)
    splits = tuple(SplitStatus(name, sum(1 for p in pairs if p.split == name),
                               sum(p.duration_s for p in pairs if p.split == name) / 3600.0) for name in SPLITS)
    return DatasetStatus(splits, bool(cfg.dataset.collect_corrections), dataset_dir(cfg))
