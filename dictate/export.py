"""`dictate dataset export DIR`: the training pairs in the layout fine-tuning scripts read.

    DIR/train/NAME.wav + NAME.txt      16 kHz mono 16-bit WAV, at most 30 s, and its words
    DIR/train/metadata.csv             file_name,transcription: Hugging Face `datasets` loads the
    DIR/validation/...                 folder with load_dataset("audiofolder", data_dir=DIR)
    DIR/.dictate-export.json           what this export wrote, with hashes (see below)

Whisper trains on 30 s windows, so a longer pair is cut into pieces. Where to cut comes from the
real engine: the pair's audio is transcribed with word timestamps (faster-whisper by default) and
those words are matched to the corrected text by their normalised spelling. Only a boundary
between two corrected words that were both heard, one after the other, is a cut point. Word
times can be a second off where the model misheard, so a cut point is rated by the real silence
the VAD finds within 0.3 s of it, and the cut is placed at the quietest 10 ms of that silence;
the longest silence in the second half of the 30 s window is preferred (the gap between the
word times only breaks ties, and places a cut where no silence is found). So the text of a
piece is exactly the corrected words spoken in it, even where the model misheard others. A forced aligner would place words
more precisely, but needs another model; the engine already here is close enough at pauses, and
a pair whose text the engine hardly recognises (under half of its words) is skipped and reported
instead of being cut at a guess. The word times are kept beside the pair, so exporting again
does not transcribe again. Pairs of 30 s or less are exported whole, without any model.

The split (train/validation) is the pair's (a hash of its source), so the pieces of one
recording are all on one side. Names are `<pair id>-<hash of audio and text>-<piece>`: running
the export again writes nothing new for unchanged pairs, and a corrected pair replaces its old
pieces. The manifest records the hash of every file written; a file in DIR that the export did
not write, or that was changed since, is never overwritten or deleted.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import logging
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from dictate.audio.vad import FRAME_S, runs, speech_flags
from dictate.config import Config
from dictate.dataset import SPLITS, Pair, list_pairs
from dictate.errors import DictateError, OutputError
from dictate.fsutil import write_atomic
from dictate.textnorm import normalize
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions

log = logging.getLogger(__name__)

MANIFEST = ".dictate-export.json"
METADATA = "metadata.csv"
ALIGNMENT = "words.json"  # beside the pair: the engine's word times for its current text
MIN_HEARD_SHARE = 0.5
_FRAME = 160  # 10 ms at 16 kHz
_NEAR_S = 0.3  # how far from a heard boundary its silence may be


@dataclass(frozen=True)
class Piece:
    start: int  # samples
    end: int
    text: str


@dataclass
class ExportReport:
    pieces: dict[str, int] = field(default_factory=dict)  # by split
    seconds: dict[str, float] = field(default_factory=dict)
    written: int = 0  # files written this run
    unchanged: int = 0  # files already there, as this export would write them
    removed: int = 0  # stale pieces of this export (their pair was corrected or removed)
    skipped: list[str] = field(default_factory=list)  # one line each: what and why


# --- where to cut ---------------------------------------------------------------------------------

def _heard_times(words: list[str], heard: list[tuple[str, float, float]]) -> list[tuple[float, float] | None]:
    """For each corrected word, the (start, end) of the heard word it matches, or None."""
    ref = [normalize(w) for w in words]
    hyp = [normalize(w) for w, _s, _e in heard]
    times: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(None, ref, hyp, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            if ref[block.a + k]:
                _w, s, e = heard[block.b + k]
                times[block.a + k] = (s, e)
    return times


def _longest_silence(speech: NDArray[np.bool_], lo_s: float, hi_s: float) -> tuple[float, float, float]:
    """The longest run of VAD silence inside [lo_s, hi_s]: (its length, start, end) in seconds,
    (0, lo_s, hi_s) when every frame there is speech."""
    lo, hi = max(0, int(lo_s / FRAME_S)), min(speech.size, int(np.ceil(hi_s / FRAME_S)))
    quiet = [(end - start, start) for start, end, is_speech in runs(speech[lo:hi]) if not is_speech]
    if not quiet:
        return 0.0, lo_s, hi_s
    n, start = max(quiet, key=lambda r: r[0])
    return n * FRAME_S, (lo + start) * FRAME_S, (lo + start + n) * FRAME_S


def _quietest(audio: NDArray[np.float32], lo_s: float, hi_s: float) -> int:
    """The sample at the centre of the quietest 10 ms frame in [lo_s, hi_s]."""
    lo = max(0, int(lo_s * SAMPLE_RATE_HZ))
    hi = min(audio.size, int(hi_s * SAMPLE_RATE_HZ))
    n = (hi - lo) // _FRAME
    if n <= 0:
        return min(max(lo, 0), audio.size)
    frames = audio[lo:lo + n * _FRAME].reshape(n, _FRAME)
    energy = np.einsum("ij,ij->i", frames, frames)
    return lo + int(np.argmin(energy)) * _FRAME + _FRAME // 2


def plan_pieces(audio: NDArray[np.float32], text: str, heard: list[tuple[str, float, float]],
                max_piece_s: float = 30.0) -> list[Piece]:
    """Cut `audio` with its corrected `text` into pieces of at most `max_piece_s`, at boundaries
    between corrected words that were heard one after the other (see the module docstring).
    Raises DictateError when the text does not match the audio well enough to cut it."""
    words = text.split()
    limit = int(max_piece_s * SAMPLE_RATE_HZ)
    if audio.size <= limit:
        return [Piece(0, audio.size, " ".join(words))]
    times = _heard_times(words, heard)
    share = sum(t is not None for t in times) / max(1, len(words))
    if share < MIN_HEARD_SHARE:
        raise DictateError(f"only {100 * share:.0f} % of its words were heard in the audio: is it the right text?")
    # Candidate cuts: (word index after the cut, sample, silence heard there, pause between the
    # word times), both in seconds. The word times alone can be a second off where the model
    # misheard, and a cut there falls inside speech; the VAD's silence near the boundary is what
    # shows a real pause.
    speech = speech_flags(audio)
    cuts: list[tuple[int, int, float, float]] = []
    for i in range(len(words) - 1):
        a, b = times[i], times[i + 1]
        if a is None or b is None or b[0] < a[1] - 0.05:
            continue
        quiet_s, lo_s, hi_s = _longest_silence(speech, a[1] - _NEAR_S, b[0] + _NEAR_S)
        cut = _quietest(audio, lo_s, hi_s) if quiet_s else _quietest(audio, a[1] - 0.1, b[0] + 0.1)
        cuts.append((i + 1, cut, quiet_s, b[0] - a[1]))
    pieces: list[Piece] = []
    start, first_word = 0, 0
    while audio.size - start > limit:
        fits = [c for c in cuts if c[0] > first_word and start < c[1] <= start + limit]
        if not fits:
            raise DictateError(f"no pause between heard words within {max_piece_s:g} s after "
                               f"{start / SAMPLE_RATE_HZ:.1f} s")
        late = [c for c in fits if c[1] - start >= limit // 2] or fits
        word, cut, _quiet, _pause = max(late, key=lambda c: (round(c[2], 2), round(c[3], 2), c[1]))
        pieces.append(Piece(start, cut, " ".join(words[first_word:word])))
        start, first_word = cut, word
    pieces.append(Piece(start, audio.size, " ".join(words[first_word:])))
    return [p for p in pieces if p.text]


# --- writing ----------------------------------------------------------------------------------------

def wav_bytes(audio: NDArray[np.float32]) -> bytes:
    """16-bit mono WAV at 16 kHz."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes((np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes())
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Writer:
    """Writes files under the export folder, never over one it did not write (see the manifest)."""

    def __init__(self, root: Path, report: ExportReport) -> None:
        self.root = root
        self.report = report
        try:
            self.old: dict[str, str] = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("files", {})
        except FileNotFoundError:
            self.old = {}
        except (OSError, ValueError) as exc:
            raise OutputError(f"{root / MANIFEST} is damaged ({exc}); export into an empty folder") from None
        self.new: dict[str, str] = {}

    def _ours(self, rel: str, path: Path) -> bool:
        """The file is as this export left it (so it may be replaced or removed)."""
        expected = self.old.get(rel)
        try:
            return expected is not None and _sha(path.read_bytes()) == expected
        except OSError:
            return False

    def can_write(self, rel: str, data: bytes) -> bool | None:
        """True: write it; None: already there as wanted; False: a user's file is in the way."""
        path = self.root / rel
        if not path.exists():
            return True
        if self._ours(rel, path):
            return None if self.old[rel] == _sha(data) else True
        try:
            if _sha(path.read_bytes()) == _sha(data):  # the same bytes: adopt it
                return None
        except OSError:
            pass
        return False

    def write(self, rel: str, data: bytes, state: bool | None) -> None:
        path = self.root / rel
        if state is True:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, data, durable=False)
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
            self.report.written += 1
        else:
            self.report.unchanged += 1
        self.new[rel] = _sha(data)

    def finish(self) -> None:
        for rel in sorted(set(self.old) - set(self.new)):
            path = self.root / rel
            if path.exists() and self._ours(rel, path):
                path.unlink()
                self.report.removed += 1
        data = json.dumps({"files": dict(sorted(self.new.items()))}, indent=1).encode()
        write_atomic(self.root / MANIFEST, data, durable=False)


def _alignment(pair: Pair, audio: NDArray[np.float32], engine_factory: Callable, options: TranscribeOptions,
               cache: dict) -> list[tuple[str, float, float]]:
    """The engine's words with times for the pair's audio, cached beside the pair by audio hash."""
    path = pair.folder / ALIGNMENT
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("audio_sha256") == pair.audio_sha256:
            return [tuple(w) for w in saved["words"]]
    except (OSError, ValueError, KeyError):
        pass
    if "engine" not in cache:
        cache["engine"] = engine_factory()
    segments = cache["engine"].transcribe(audio, options)
    words = [(w.text.strip(), round(w.start_s, 3), round(w.end_s, 3)) for s in segments for w in s.words]
    try:
        write_atomic(path, json.dumps({"audio_sha256": pair.audio_sha256, "words": words}), durable=False)
    except OSError as exc:  # only a cache
        log.warning("cannot keep the word times of %s: %s", pair.id, exc)
    return words


def export(cfg: Config, out_dir: Path, *, engine_factory: Callable, options: TranscribeOptions | None = None,
           max_piece_s: float = 30.0, on_notice: Callable[[str], None] | None = None) -> ExportReport:
    """Write every training pair into `out_dir` (see the module docstring). `engine_factory` is
    called once, only if some pair is longer than a piece."""
    from dictate.audio.files import decode

    if not 1.0 <= max_piece_s <= 30.0:
        raise DictateError("pieces must be 1 to 30 seconds long (Whisper's window is 30 s)")
    options = options or TranscribeOptions(word_timestamps=True, temperature=0.0)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    report = ExportReport(pieces={s: 0 for s in SPLITS}, seconds={s: 0.0 for s in SPLITS})
    writer = _Writer(out_dir, report)
    rows: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    cache: dict = {}

    def skip(message: str) -> None:
        report.skipped.append(message)
        log.warning("export: %s", message)
        if on_notice:
            on_notice(message)

    for pair in list_pairs(cfg):
        try:
            audio = decode(pair.audio_path)
            heard = _alignment(pair, audio, engine_factory, options, cache) \
                if audio.size > max_piece_s * SAMPLE_RATE_HZ else []
            pieces = plan_pieces(audio, pair.text, heard, max_piece_s)
        except DictateError as exc:
            skip(f"{pair.id}: not exported: {exc}")
            continue
        digest = _sha(f"{pair.audio_sha256}\n{pair.text}\n{max_piece_s}".encode())[:8]
        for k, piece in enumerate(pieces):
            name = f"{pair.id}-{digest}-{k:02d}"
            wav, txt = f"{pair.split}/{name}.wav", f"{pair.split}/{name}.txt"
            wav_data, txt_data = wav_bytes(audio[piece.start:piece.end]), (piece.text + "\n").encode("utf-8")
            states = [writer.can_write(wav, wav_data), writer.can_write(txt, txt_data)]
            if False in states:
                skip(f"{pair.split}/{name}: a file of yours is in the way; it is left as it is")
                continue
            writer.write(wav, wav_data, states[0])
            writer.write(txt, txt_data, states[1])
            rows[pair.split].append((f"{name}.wav", piece.text))
            report.pieces[pair.split] += 1
            report.seconds[pair.split] += (piece.end - piece.start) / SAMPLE_RATE_HZ
    for split in SPLITS:
        if not rows[split]:
            continue
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(["file_name", "transcription"])
        out.writerows(sorted(rows[split]))
        data, rel = buf.getvalue().encode("utf-8"), f"{split}/{METADATA}"
        state = writer.can_write(rel, data)
        if state is False:
            skip(f"{rel} is yours; it is left as it is, so audiofolder will not see the new pieces")
            continue
        writer.write(rel, data, state)
    writer.finish()
    return report
