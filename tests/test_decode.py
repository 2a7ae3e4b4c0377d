"""Real files of every common format, made with PyAV's encoders, decoded by the product."""

import wave
from pathlib import Path

import numpy as np
import pytest

from dictate.audio.files import decode, duration_s
from dictate.errors import AudioDecodeError
from tests.support.media import AUDIO_FORMATS, tone, write_audio, write_video


def peak_hz(audio: np.ndarray) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(audio))) * 16_000 / audio.size)


@pytest.mark.parametrize("ext", sorted(AUDIO_FORMATS))
@pytest.mark.parametrize("rate,channels", [(8_000, 1), (22_050, 1), (44_100, 2), (48_000, 2)])
def test_every_format_decodes_to_16k_mono(tmp_path: Path, ext: str, rate: int, channels: int) -> None:
    path = write_audio(tmp_path / f"tone.{ext}", tone(440, 2.0, rate), rate, channels)
    audio = decode(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs pad a frame or two; the length must still be the file's.
    assert abs(audio.size / 16_000 - 2.0) < 0.06
    assert abs(peak_hz(audio) - 440) < 2
    assert 0.3 < np.max(np.abs(audio)) <= 1.0


def test_video_with_audio_track(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", 2.0, tone(300, 2.0, 44_100))
    audio = decode(path)
    assert abs(audio.size / 16_000 - 2.0) < 0.06
    assert abs(peak_hz(audio) - 300) < 2
    assert duration_s(path) == pytest.approx(2.0, abs=0.1)


def _truncated(tmp_path: Path) -> Path:
    good = write_audio(tmp_path / "long.mp3", tone(440, 4.0, 16_000), 16_000)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return cut


def test_truncated_file_keeps_what_decodes(tmp_path: Path) -> None:
    audio = decode(_truncated(tmp_path))
    assert 1.5 < audio.size / 16_000 < 2.5


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,expect", [
    (lambda d: d / "missing.wav", "no such file"),
    (lambda d: _file(d / "empty.wav", b""), "empty"),
    (lambda d: _file(d / "noise.mp3", np.random.default_rng(0).bytes(20_000)), "not an audio"),
    (lambda d: _file(d / "notes.txt", b"just some text\n" * 50), "not an audio"),
    (lambda d: write_video(d / "silent-film.mp4", 1.0), "no audio track"),
    (lambda d: d, "folder"),
])
def test_bad_files_raise_one_line_errors(tmp_path: Path, make, expect: str) -> None:
    path = make(tmp_path)
    with pytest.raises(AudioDecodeError) as info:
        decode(path)
    message = str(info.value)
    assert expect in message and str(path) in message and "\n" not in message


def test_zero_length_wav_header_only(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    with wave.open(str(path), "wb") as w:  # a valid header and no frames
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
    with pytest.raises(AudioDecodeError, match="no decodable audio"):
        decode(path)
