"""Decoding any audio or video file PyAV can read (it bundles FFmpeg) to 16 kHz mono float32."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
from numpy.typing import NDArray

from dictate.errors import AudioDecodeError
from dictate.types import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)


def _open(path: Path):
    import av

    if not path.exists():
        raise AudioDecodeError(f"{path}: no such file")
    if path.is_dir():
        raise AudioDecodeError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path}: the file is empty")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise AudioDecodeError(f"{path}: not an audio or video file that can be read ({_reason(exc)})") from None
    except OSError as exc:
        raise AudioDecodeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not container.streams.audio:
        # FFmpeg opens plain text as "tty" video (ANSI art): that is no media file to a user.
        has_video = bool(container.streams.video) and container.format.name != "tty"
        container.close()
        if not has_video:
            raise AudioDecodeError(f"{path}: not an audio or video file that can be read")
        raise AudioDecodeError(f"{path}: has no audio track")
    return container


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def duration_s(path: Path) -> float | None:
    """The container's idea of the audio length, when it has one (for progress), without decoding."""
    try:
        container = _open(Path(path))
    except AudioDecodeError:
        return None
    with container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000
    return None


def iter_decode(path: str | Path, sample_rate: int = SAMPLE_RATE_HZ) -> Iterator[NDArray[np.float32]]:
    """Mono float32 chunks at `sample_rate`, as they are decoded. Damaged packets are skipped (as
    players do); a file that yields no audio at all raises AudioDecodeError."""
    import av

    path = Path(path)
    container = _open(path)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    produced = 0
    skipped = 0
    with container:
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # a broken container: keep what was decoded
                log.warning("%s: stopped reading at a damaged spot: %s", path, _reason(exc))
                break
            try:
                frames = packet.decode()
            except av.FFmpegError:
                skipped += 1
                continue
            for frame in frames:
                frame.pts = None  # the resampler rejects non-monotonic timestamps of damaged files
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    produced += chunk.size
                    yield chunk
        for out in resampler.resample(None):
            chunk = out.to_ndarray().reshape(-1)
            produced += chunk.size
            yield chunk
    if skipped:
        log.warning("%s: skipped %d damaged packets", path, skipped)
    if produced == 0:
        raise AudioDecodeError(f"{path}: contains no decodable audio (corrupt or zero-length)")


def decode(path: str | Path, sample_rate: int = SAMPLE_RATE_HZ) -> NDArray[np.float32]:
    """The whole file as one mono float32 array at `sample_rate`."""
    chunks = list(iter_decode(path, sample_rate))
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
