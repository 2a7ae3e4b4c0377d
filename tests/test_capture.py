"""Capture with real parts: PortAudio reading a private PulseAudio virtual microphone, and files
played as a microphone through the same ring."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from dictate.audio.capture import FileSource, Microphone, StreamResampler, resolve_device
from dictate.audio.files import decode
from dictate.errors import AudioDecodeError, AudioDeviceError
from dictate.types import SAMPLE_RATE_HZ
from tests.support.media import write_audio
from tests.support.pulse import VirtualMic, quantize, virtual_mic  # noqa: F401 (fixture)

SR = SAMPLE_RATE_HZ


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-loud noise plus a tone, never exactly zero (so its first sample can be found)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = 0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / SR) + 0.1 * rng.standard_normal(n)
    x = np.clip(x, -0.9, 0.9)
    x[np.abs(x) < 0.01] = 0.02
    return x.astype(np.float32)


def read_for(src, seconds: float) -> list[np.ndarray]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(src.read())
        time.sleep(0.02)
    return out


def first_nonzero(a: np.ndarray) -> int:
    nz = np.flatnonzero(a)
    assert nz.size, "nothing but silence was captured"
    return int(nz[0])


def test_captured_samples_equal_the_written_ones(virtual_mic):
    sig = signal(3.0)
    mic = Microphone("")
    assert mic.rate_hz == SR
    mic.start()
    time.sleep(0.2)
    handle = virtual_mic.play(sig)
    assert handle.wait(10)
    chunks = read_for(mic, 0.6)
    chunks.append(mic.stop())
    got = np.concatenate(chunks)
    i = first_nonzero(got)
    np.testing.assert_array_equal(got[i:i + sig.size], quantize(sig))
    assert np.all(got[i + sig.size:] == 0)  # and silence after it: nothing doubled
    stats = mic.stats()
    assert stats.samples_lost == 0 and stats.overflows == 0
    assert stats.samples_captured == got.size


def test_device_by_name_and_bad_names(virtual_mic):
    assert resolve_device("pulse") is not None
    assert resolve_device("") is None
    with pytest.raises(AudioDeviceError, match="no input device matches 'no-such-mic'"):
        resolve_device("no-such-mic")
    with pytest.raises(AudioDeviceError, match="does not exist"):
        resolve_device("999")
    mic = Microphone("pulse")
    mic.start()
    time.sleep(0.3)
    assert mic.stop().size > 0


def test_native_rate_is_resampled_to_16k(virtual_mic):
    t = np.arange(2 * SR) / SR  # band-limited: resampling filters would blur noise near 8 kHz
    sig = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * 1200 * t) + 0.05).astype(np.float32)
    mic = Microphone("", capture_rate_hz=48_000)  # as when a device refuses 16 kHz
    assert mic.rate_hz == 48_000
    mic.start()
    time.sleep(0.2)
    assert virtual_mic.play(sig).wait(10)
    chunks = read_for(mic, 0.5)
    chunks.append(mic.stop())
    got = np.concatenate(chunks)
    i = int(np.flatnonzero(np.abs(got) > 0.05)[0])
    seg = got[max(0, i - 5):i - 5 + sig.size + 10]
    # align by cross-correlation (the resampler's filter delays a few samples)
    lag = int(np.argmax(np.correlate(seg[:4000], quantize(sig)[:3000], mode="valid")))
    aligned = seg[lag:lag + sig.size - 100]
    assert np.corrcoef(aligned, quantize(sig)[:aligned.size])[0, 1] > 0.999
    assert mic.stats().capture_rate_hz == 48_000


def test_preroll_keeps_the_audio_from_before_recording_began(virtual_mic):
    mic = Microphone("", preroll_s=0.5)
    mic.start(recording=False)
    time.sleep(0.2)
    sig = signal(1.0, seed=2)
    handle = virtual_mic.play(sig)
    assert handle.wait(10)
    idle = read_for(mic, 0.05)
    assert all(c.size == 0 for c in idle)  # idle: nothing handed out
    time.sleep(0.1)
    mic.begin_recording()
    chunks = read_for(mic, 0.3)
    chunks.append(mic.stop())
    got = np.concatenate(chunks)
    q = quantize(sig)
    # the recording starts inside the signal: its first samples are the signal's last ones
    head = got[:200]
    matches = [k for k in range(q.size - 200) if np.array_equal(q[k:k + 200], head)]
    assert matches, "the pre-roll is not a piece of the spoken signal"
    tail_len = q.size - matches[0]
    assert 0.1 * SR < tail_len <= 0.5 * SR
    np.testing.assert_array_equal(got[:tail_len], q[matches[0]:])


def test_starved_stream_stops_at_once_and_keeps_its_audio(virtual_mic):
    mic = Microphone("")
    mic.start()
    time.sleep(0.4)
    virtual_mic.feeding = False  # the source delivers nothing: PortAudio's stop() would hang
    time.sleep(0.6)
    assert mic.starved
    t0 = time.monotonic()
    rest = mic.stop()
    assert time.monotonic() - t0 < 1.0
    assert rest.size >= 0.3 * SR


def test_device_gone_mid_stream_raises_after_handing_out_the_audio():
    with VirtualMic() as vm:
        mic = Microphone("")
        mic.start()
        time.sleep(0.2)
        sig = signal(0.5, seed=3)
        assert vm.play(sig).wait(10)
        time.sleep(0.2)
        vm.stop()  # the sound server goes away, like an unplugged USB microphone
        got = []
        with pytest.raises(AudioDeviceError, match="microphone"):
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                got.append(mic.read())
                time.sleep(0.02)
        audio = np.concatenate(got)
        i = first_nonzero(audio)
        np.testing.assert_array_equal(audio[i:i + sig.size], quantize(sig))  # kept, every sample
        mic.stop()


def test_no_input_device_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    try:
        with pytest.raises(AudioDeviceError, match="no microphone found") as exc:
            Microphone("")
        assert "\n" not in str(exc.value)
    finally:
        monkeypatch.undo()
        sd._terminate()
        sd._initialize()


def test_missing_sounddevice_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as when it is not installed
    with pytest.raises(AudioDeviceError, match="sounddevice"):
        Microphone("")


# -- FileSource --------------------------------------------------------------------------------------

def test_file_source_plays_every_sample_in_order_at_speed(tmp_path):
    sig = signal(4.0, seed=4)
    path = write_audio(tmp_path / "in.wav", sig, SR)
    src = FileSource(path, speed=8.0)
    t0 = time.monotonic()
    src.start()
    chunks = []
    while not src.exhausted:
        chunks.append(src.read())
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    chunks.append(src.stop())
    got = np.concatenate(chunks)
    np.testing.assert_array_equal(got, decode(path))  # exactly the decoded file, in order
    np.testing.assert_allclose(got, sig, atol=2 / 32768)  # which is the signal, as 16-bit wav
    assert 0.4 <= elapsed < 1.5  # 4 s at 8x is 0.5 s
    assert src.stats().samples_lost == 0
    assert src.capture_time(SR * 2) == pytest.approx(src._t0 + 0.25)


def test_file_source_that_is_not_read_overflows_like_a_microphone():
    sig = signal(2.0, seed=5)
    src = FileSource(sig, speed=50.0, ring_capacity_s=0.5)
    src.start()
    time.sleep(0.15)  # 2 s of audio played in 0.04 s; nobody reads
    got = np.concatenate([src.read(), src.stop()])
    stats = src.stats()
    assert stats.samples_lost == sig.size - int(0.5 * SR)
    assert stats.overflows > 0
    np.testing.assert_array_equal(got, sig[:int(0.5 * SR)])  # the oldest audio is kept, never overwritten


def test_file_source_bad_file_is_a_decode_error(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioDecodeError):
        FileSource(bad)
    with pytest.raises(ValueError):
        FileSource(signal(0.1), speed=0)


def test_stream_resampler_keeps_length_and_content():
    rate = 44_100
    t = np.arange(rate * 2) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    rs = StreamResampler(rate)
    parts = [rs.push(x[i:i + 777]) for i in range(0, x.size, 777)] + [rs.flush()]
    y = np.concatenate(parts)
    assert abs(y.size - 2 * SR) <= 64
    spectrum = np.abs(np.fft.rfft(y[1000:1000 + SR]))
    assert abs(np.argmax(spectrum) - 440) <= 1
