"""Real media files made at test time with PyAV's encoders (no committed binaries)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# extension -> (container format, audio codec, sample format the encoder wants)
AUDIO_FORMATS: dict[str, tuple[str, str, str]] = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "mp3": ("mp3", "libmp3lame", "s16p"),
    "flac": ("flac", "flac", "s16"),
    "ogg": ("ogg", "libopus", "s16"),
    "opus": ("opus", "libopus", "s16"),
    "m4a": ("ipod", "aac", "fltp"),
}
ENCODER_RATES = {"libopus": 48_000}  # Opus only encodes at a few rates


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _add_audio_stream(container, codec: str, sample_fmt: str, rate: int, channels: int):
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "mono" if channels == 1 else "stereo"
    stream.format = sample_fmt
    return stream


def _encode_audio(container, stream, sample_fmt: str, audio: np.ndarray, rate: int, channels: int) -> None:
    import av

    planar = sample_fmt.endswith("p")
    samples = np.repeat(audio[None, :], channels, axis=0)  # (channels, n)
    dtype = np.int16 if sample_fmt.startswith("s16") else np.float32
    if dtype is np.int16:
        samples = np.clip(samples * 32767, -32768, 32767).astype(np.int16)
    frame_size = stream.codec_context.frame_size or 1024
    pts = 0
    for start in range(0, samples.shape[1], frame_size):
        block = samples[:, start:start + frame_size]
        data = block if planar else block.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=sample_fmt, layout=stream.layout.name)
        frame.sample_rate = rate
        frame.pts = pts
        frame.time_base = Fraction(1, rate)
        pts += block.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_audio(path: Path, audio: np.ndarray, rate: int, channels: int = 1) -> Path:
    """Encode mono float32 `audio` (at `rate`) into the format that `path`'s extension names."""
    import av

    fmt, codec, sample_fmt = AUDIO_FORMATS[path.suffix.lstrip(".")]
    enc_rate = ENCODER_RATES.get(codec, rate)
    if enc_rate != rate:
        idx = np.arange(int(audio.size * enc_rate / rate)) * rate / enc_rate
        audio = np.interp(idx, np.arange(audio.size), audio).astype(np.float32)
    with av.open(str(path), "w", format=fmt) as container:
        stream = _add_audio_stream(container, codec, sample_fmt, enc_rate, channels)
        _encode_audio(container, stream, sample_fmt, audio, enc_rate, channels)
    return path


def write_video(path: Path, seconds: float, audio: np.ndarray | None = None, rate: int = 44_100) -> Path:
    """An MP4 with a small moving picture and, when given, an AAC audio track."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        # Every stream must exist before the first packet is muxed.
        sound = _add_audio_stream(container, "aac", "fltp", rate, 2) if audio is not None else None
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), (i * 10) % 255, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            _encode_audio(container, sound, "fltp", audio, rate, 2)
    return path
