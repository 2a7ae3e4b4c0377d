"""Crash-safe recording journal: audio is appended to disk as it arrives, never held in memory.

A journal is a folder holding `journal.json` (what the recording is) and one or more WAV parts
(32-bit float, mono, 16 kHz) written with plain `os.write`, so everything appended survives a
killed process, and fsynced about every second, so a power cut loses at most that much. The WAV
header's sizes are rewritten at each sync; a journal left behind by a crash is repaired by cutting
a torn last sample and setting the sizes from the file length, which makes every part a valid WAV.
Float samples are kept exactly as captured (no re-quantisation) until the note is encoded."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import struct
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from dictate.errors import AudioDecodeError, OutputError
from dictate.types import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

SIDECAR = "journal.json"
PART_GLOB = "part-*.wav"
BYTES_PER_SAMPLE = 4  # float32
HEADER_BYTES = 44
SYNC_INTERVAL_S = 1.0
PART_MAX_SAMPLES = 3600 * SAMPLE_RATE_HZ  # one hour per part keeps every WAV far below its 4 GB limit

# Journals this process is still working on (recording, or turning into a note).
_ACTIVE: set[Path] = set()

# The errors that mean "the disk (or this file's quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class JournalState:
    RECORDING = "recording"  # being written (or the writer died: recovery finds it)
    STOPPED = "stopped"  # the writer closed it cleanly; not yet made into a note
    INTERRUPTED = "interrupted"  # recording ended by an error (disk full, microphone lost)


class JournalFullError(OutputError):
    """The disk filled up while recording; everything before is kept in the journal."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def new_id() -> str:
    """Sortable by time, unique across processes: 20250101-120000-ab12cd."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def wav_header(num_samples: int, sample_rate: int = SAMPLE_RATE_HZ) -> bytes:
    data_bytes = num_samples * BYTES_PER_SAMPLE
    return b"".join([
        b"RIFF", struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)), b"WAVE",
        # fmt: WAVE_FORMAT_IEEE_FLOAT (3), mono, rate, byte rate, block align, 32 bits
        b"fmt ", struct.pack("<IHHIIHH", 16, 3, 1, sample_rate, sample_rate * BYTES_PER_SAMPLE, BYTES_PER_SAMPLE, 32),
        b"data", struct.pack("<I", min(data_bytes, 0xFFFFFFFF)),
    ])


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable too (not possible on Windows; harmless to skip)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _disk_full_message(path: Path, seconds: float) -> str:
    return (f"the disk is full: recording stopped after {seconds:.1f} s; everything recorded is kept in {path} "
            f"(free some space, then run `dictate note recover`)")


class JournalWriter:
    """Appends float32 chunks to the journal; one thread (the recorder) calls it.

    `write` is the function that puts bytes on disk (os.write); tests replace it to inject
    failures such as ENOSPC at a chosen point."""

    def __init__(self, folder: Path, meta: dict[str, Any] | None = None, *, sync_interval_s: float = SYNC_INTERVAL_S,
                 part_max_samples: int = PART_MAX_SAMPLES, write: Callable[[int, bytes], int] = os.write,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = Path(folder)
        self.sync_interval_s = sync_interval_s
        self.part_max_samples = part_max_samples
        self._write = write
        self._clock = clock
        self.folder.mkdir(parents=True, exist_ok=False)
        self.id = self.folder.name
        self.sidecar: dict[str, Any] = {
            "version": 1, "id": self.id, "kind": "note", "state": JournalState.RECORDING,
            "created_at": _now_iso(), "sample_rate": SAMPLE_RATE_HZ, "format": "wav-float32-mono",
            "pid": os.getpid(), "notices": [], **(meta or {}),
        }
        _write_json_atomic(self.folder / SIDECAR, self.sidecar)
        self.samples_written = 0  # across all parts
        self.samples_synced = 0
        self.syncs = 0
        self._part_index = -1
        self._part_samples = 0
        self._fd: int | None = None
        self._last_sync = self._clock()
        self._failed: OutputError | None = None
        self._open_part()
        _fsync_dir(self.folder)
        _ACTIVE.add(self.folder.resolve())

    @classmethod
    def create(cls, journal_root: Path, meta: dict[str, Any] | None = None, **kwargs: Any) -> "JournalWriter":
        journal_root = Path(journal_root)
        try:
            journal_root.mkdir(parents=True, exist_ok=True)
            return cls(journal_root / new_id(), meta, **kwargs)
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise JournalFullError(f"the disk is full: cannot start recording in {journal_root}") from None
            raise OutputError(f"cannot start recording in {journal_root}: {exc.strerror or exc}") from None

    @property
    def duration_s(self) -> float:
        return self.samples_written / SAMPLE_RATE_HZ

    @property
    def part_path(self) -> Path:
        return self.folder / f"part-{self._part_index:04d}.wav"

    def _open_part(self) -> None:
        if self._fd is not None:
            self._sync_part()
            os.close(self._fd)
        self._part_index += 1
        self._part_samples = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        self._fd = os.open(self.part_path, flags, 0o600)
        self._write_all(wav_header(0))

    def _write_all(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = self._write(self._fd, view)
            view = view[n:]

    def append(self, samples: NDArray[np.float32]) -> None:
        """Write the chunk now; fsync when the last sync is a second old. Raises JournalFullError
        (the journal stays valid up to the last whole sample) or OutputError."""
        if self._failed is not None:
            raise self._failed
        samples = np.asarray(samples, dtype="<f4").reshape(-1)
        try:
            while samples.size:
                room = self.part_max_samples - self._part_samples
                if room <= 0:
                    self._open_part()
                    continue
                head, samples = samples[:room], samples[room:]
                try:
                    self._write_all(head.tobytes())
                finally:
                    self._account_written()
            if self._clock() - self._last_sync >= self.sync_interval_s:
                self.sync()
        except OSError as exc:
            self._fail(exc)

    def _account_written(self) -> None:
        # Count what really reached the file, even after a short write that ended in ENOSPC.
        size = os.fstat(self._fd).st_size
        part_samples = max(0, (size - HEADER_BYTES) // BYTES_PER_SAMPLE)
        self.samples_written += part_samples - self._part_samples
        self._part_samples = part_samples

    def _fail(self, exc: OSError) -> None:
        if exc.errno in DISK_FULL_ERRNOS:
            msg = _disk_full_message(self.folder, self.duration_s)
            self._failed = JournalFullError(msg)
            self.note("disk full: " + msg)
        else:
            self._failed = OutputError(f"cannot write the recording to {self.folder}: {exc.strerror or exc}")
            self.note(str(self._failed))
        try:
            self._sync_part()  # whatever is there is whole samples after repair; keep the header near it
        except OSError:
            pass
        self.set_state(JournalState.INTERRUPTED)
        raise self._failed from None

    def _sync_part(self) -> None:
        os.fsync(self._fd)
        # The header's sizes follow the data already on disk (repair recomputes them anyway).
        data_bytes = self._part_samples * BYTES_PER_SAMPLE
        self._pwrite(struct.pack("<I", min(36 + data_bytes, 0xFFFFFFFF)), 4)
        self._pwrite(struct.pack("<I", min(data_bytes, 0xFFFFFFFF)), 40)

    def _pwrite(self, data: bytes, offset: int) -> None:
        if hasattr(os, "pwrite"):
            os.pwrite(self._fd, data, offset)
        else:  # pragma: no cover - Windows has no pwrite
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
            os.lseek(self._fd, offset, os.SEEK_SET)
            os.write(self._fd, data)
            os.lseek(self._fd, end, os.SEEK_SET)

    def sync(self) -> None:
        """Flush + fsync: everything appended so far survives a crash or a power cut."""
        self._sync_part()
        self.samples_synced = self.samples_written
        self.syncs += 1
        self._last_sync = self._clock()

    def note(self, message: str) -> None:
        """Record something the user must hear about (microphone lost, disk full) in the sidecar."""
        self.sidecar["notices"].append(message)
        try:
            _write_json_atomic(self.folder / SIDECAR, self.sidecar)
        except OSError as exc:  # a full disk cannot take the sidecar either; the audio is what matters
            log.warning("journal %s: cannot update %s: %s", self.id, SIDECAR, exc)

    def set_state(self, state: str, **fields: Any) -> None:
        self.sidecar.update(state=state, samples=self.samples_written, **fields)
        try:
            _write_json_atomic(self.folder / SIDECAR, self.sidecar)
        except OSError as exc:
            log.warning("journal %s: cannot update %s: %s", self.id, SIDECAR, exc)

    def close(self, state: str = JournalState.STOPPED) -> None:
        """Sync, close and mark the journal (it stays on disk until the note is safely written)."""
        if self._fd is None:
            return
        try:
            if self._failed is None:
                self.sync()
        except OSError as exc:
            log.warning("journal %s: final sync failed: %s", self.id, exc)
        finally:
            os.close(self._fd)
            self._fd = None
        # An error already marked the journal interrupted; keep that (recovery says why).
        self.set_state(JournalState.INTERRUPTED if self._failed is not None else state, stopped_at=_now_iso())


@dataclass(frozen=True)
class PartInfo:
    path: Path
    samples: int


class Journal:
    """A journal on disk, finished or left behind by a crash: read, repair, mark, delete."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.id = self.folder.name
        try:
            self.sidecar: dict[str, Any] = json.loads((self.folder / SIDECAR).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            # The audio matters more than the label: a lost sidecar still leaves a recoverable journal.
            log.warning("journal %s: sidecar unreadable (%s); treating it as unfinished", self.id, exc)
            self.sidecar = {"id": self.id, "state": JournalState.RECORDING, "sample_rate": SAMPLE_RATE_HZ, "notices": []}

    @property
    def state(self) -> str:
        return str(self.sidecar.get("state", JournalState.RECORDING))

    @property
    def parts(self) -> list[PartInfo]:
        out = []
        for path in sorted(self.folder.glob(PART_GLOB)):
            size = path.stat().st_size
            out.append(PartInfo(path, max(0, (size - HEADER_BYTES) // BYTES_PER_SAMPLE)))
        return out

    @property
    def num_samples(self) -> int:
        return sum(p.samples for p in self.parts)

    @property
    def duration_s(self) -> float:
        return self.num_samples / SAMPLE_RATE_HZ

    def writer_alive(self) -> bool:
        """True while the process that wrote this journal still works on it (recording, or making
        the note): then it is not to be recovered."""
        pid = self.sidecar.get("pid")
        if pid == os.getpid():
            return self.folder.resolve() in _ACTIVE
        return isinstance(pid, int) and _pid_alive(pid)

    def repair(self) -> int:
        """Cut a torn last sample and set each part's header from its length, making every part a
        valid WAV; returns the number of samples. Idempotent; never drops a whole sample."""
        total = 0
        for part in self.parts:
            with open(part.path, "r+b") as f:
                size = os.fstat(f.fileno()).st_size
                if size < HEADER_BYTES:  # the crash came between create and header: an empty part
                    f.truncate(0)
                    f.write(wav_header(0))
                else:
                    whole = HEADER_BYTES + part.samples * BYTES_PER_SAMPLE
                    if size != whole:
                        f.truncate(whole)
                    f.seek(0)
                    f.write(wav_header(part.samples, int(self.sidecar.get("sample_rate", SAMPLE_RATE_HZ))))
                f.flush()
                os.fsync(f.fileno())
            total += part.samples
        return total

    def read(self, start: int = 0, stop: int | None = None) -> NDArray[np.float32]:
        """Samples [start, stop) across parts, read through memory maps (no whole-file copy)."""
        pieces = []
        offset = 0
        for part in self.parts:
            lo, hi = offset, offset + part.samples
            offset = hi
            a, b = max(start, lo), hi if stop is None else min(stop, hi)
            if b <= a:
                continue
            with open(part.path, "rb") as f:
                f.seek(HEADER_BYTES + (a - lo) * BYTES_PER_SAMPLE)
                pieces.append(np.frombuffer(f.read((b - a) * BYTES_PER_SAMPLE), dtype="<f4"))
        if not pieces:
            return np.zeros(0, dtype=np.float32)
        out = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return out.astype(np.float32, copy=False)

    def iter_chunks(self, chunk_samples: int = 10 * SAMPLE_RATE_HZ) -> Iterator[NDArray[np.float32]]:
        total = self.num_samples
        for start in range(0, total, chunk_samples):
            yield self.read(start, min(start + chunk_samples, total))

    def update(self, **fields: Any) -> None:
        self.sidecar.update(fields)
        _write_json_atomic(self.folder / SIDECAR, self.sidecar)

    def delete(self) -> None:
        shutil.rmtree(self.folder)


def release(folder: Path) -> None:
    """This process is done with the journal (made into a note, or given up): recovery may take it."""
    _ACTIVE.discard(Path(folder).resolve())


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if handle:
            ctypes.windll.kernel32.CloseHandle(handle)
            return True
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def list_journals(journal_root: Path) -> list[Journal]:
    root = Path(journal_root)
    if not root.is_dir():
        return []
    return [Journal(p) for p in sorted(root.iterdir()) if p.is_dir() and (any(p.glob(PART_GLOB)) or (p / SIDECAR).exists())]


def find_unfinished(journal_root: Path) -> list[Journal]:
    """Journals not yet made into notes whose writer is gone: the ones to offer for recovery."""
    return [j for j in list_journals(journal_root) if not j.writer_alive()]


def open_journal_audio(path: Path) -> Journal:
    """A journal folder as an audio source; AudioDecodeError when it is not one."""
    if not Path(path, SIDECAR).exists() and not any(Path(path).glob(PART_GLOB)):
        raise AudioDecodeError(f"{path}: not a recording journal")
    return Journal(path)
