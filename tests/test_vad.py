"""VAD: real webrtcvad on espeak-ng speech and on silence; the pure functions on hand-made flags."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dictate.audio import vad
from dictate.audio.files import decode
from dictate.types import SAMPLE_RATE_HZ

SR = SAMPLE_RATE_HZ


def f(pattern: str) -> np.ndarray:
    """Flags from a string: '#' speech frame, '.' silence frame."""
    return np.array([c == "#" for c in pattern], dtype=bool)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required for the VAD tests (apt install espeak-ng)")
    out = tmp_path_factory.mktemp("vad") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(out), "the quick brown fox jumps over the lazy dog"], check=True)
    return decode(out)


def test_speech_and_silence_are_told_apart(speech):
    silence = np.zeros(SR, dtype=np.float32)
    audio = np.concatenate([silence, speech, silence * 1.5, silence])
    flags = vad.speech_flags(audio)
    assert flags.size == audio.size // vad.FRAME_SAMPLES
    spans = vad.speech_spans(flags)
    assert len(spans) == 1, spans
    speech_s = speech.size / SR
    # espeak pads its output with a little silence of its own; the span lies inside the speech part
    assert 0.9 <= spans[0].start_s <= 1.3
    assert 1.0 + speech_s - 0.4 <= spans[0].end_s <= 1.0 + speech_s + 0.1
    assert not vad.has_speech(vad.speech_flags(silence))
    assert vad.utterance_ended(flags)
    cuts = vad.silence_cut_points(vad.speech_flags(np.concatenate([speech, silence, speech])))
    assert len(cuts) >= 1
    assert any(speech_s <= c <= speech_s + 1.0 for c in cuts)


def test_frame_vad_matches_batch_flags_for_any_chunking(speech):
    audio = np.concatenate([np.zeros(SR // 3, dtype=np.float32), speech])
    expected = vad.speech_flags(audio)
    inc = vad.FrameVad()
    rng = np.random.default_rng(0)
    got = []
    pos = 0
    while pos < audio.size:
        n = int(rng.integers(1, 2000))
        got.append(inc.feed(audio[pos:pos + n]))
        pos += n
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_quiet_noise_is_not_speech():
    noise = (np.random.default_rng(1).standard_normal(2 * SR) * 0.0005).astype(np.float32)
    assert not vad.has_speech(vad.speech_flags(noise), min_speech_s=0.2)


def test_smooth_fills_short_pauses_and_drops_clicks():
    flags = f("..####.##### ......#.....".replace(" ", "."))
    s = vad.smooth(flags, min_speech_s=0.06, min_silence_s=0.09)
    # the one-frame pause inside speech is filled, the one-frame click is dropped
    assert s.tolist() == f("..##########.............").tolist()


def test_speech_spans_times_padding_and_offset():
    flags = f("...####......###..")
    spans = vad.speech_spans(flags, offset_s=10.0, min_speech_s=0.03, min_silence_s=0.09)
    assert [(round(s.start_s, 3), round(s.end_s, 3)) for s in spans] == [(10.09, 10.21), (10.39, 10.48)]
    padded = vad.speech_spans(flags, min_speech_s=0.03, min_silence_s=0.09, pad_s=0.1)
    assert round(padded[0].start_s, 3) == 0.0 and round(padded[-1].end_s, 3) == 0.54  # clipped to the audio


def test_silence_cut_points_only_between_speech():
    flags = f("....##..........##.##....")
    cuts = vad.silence_cut_points(flags, min_silence_s=0.3)
    assert cuts == [pytest.approx((6 + 16) / 2 * vad.FRAME_S)]
    # leading and trailing silence are not cut points, however long
    assert vad.silence_cut_points(f("....##.##...."), min_silence_s=0.03) == [pytest.approx(6.5 * vad.FRAME_S)]


def test_trailing_silence_and_utterance_end():
    assert vad.trailing_silence_s(f("")) == 0.0
    assert vad.trailing_silence_s(f("####")) == 0.0
    assert vad.trailing_silence_s(f("##" + "." * 20)) == pytest.approx(0.6)
    assert vad.trailing_silence_s(f("." * 10)) == pytest.approx(0.3)
    assert vad.utterance_ended(f("####" + "." * 20), min_silence_s=0.6)
    assert not vad.utterance_ended(f("####" + "." * 19), min_silence_s=0.6)
    assert not vad.utterance_ended(f("." * 40), min_silence_s=0.6)  # no speech, no utterance
