"""Recordings of real prose read by espeak-ng, for measuring transcription with real Whisper
weights: sentences from the public-domain fixtures, several voices and rates, and pause patterns
that matter to a live policy (run-on stretches over Whisper's 30 s window, pauses that close an
utterance, long silences). Each recording is built once and cached beside the test models.

    rec = build(RECORDINGS["genesis-gb"])
    rec.audio          # 16 kHz mono float32, with a faint noise floor like a real microphone
    rec.text           # the words read, for WER

Two sets, so that a policy tuned on one is reported on the other: TUNE and REPORT.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dictate.audio import files
from dictate.types import SAMPLE_RATE_HZ
from tests.support.whisper_models import cache_dir

SR = SAMPLE_RATE_HZ
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "punctuation"
_VERSION = 1  # bump when the synthesis changes, so old cache entries are not reused


@dataclass(frozen=True)
class RecordingSpec:
    name: str
    source: str  # fixture file under tests/fixtures/punctuation
    first_sentence: int
    duration_s: float  # sentences are added until the speech reaches this long
    voice: str  # espeak-ng voice
    wpm: int
    gaps_s: tuple[float, ...]  # silence after each sentence, cycled
    lead_s: float = 0.5
    tail_s: float = 1.0
    silence_after: tuple[tuple[int, float], ...] = ()  # (sentence index, seconds): a long silence there
    noise_dbfs: float = -62.0
    seed: int = 0


@dataclass
class Recording:
    spec: RecordingSpec
    audio: np.ndarray
    sentences: list[str]
    spans_s: list[tuple[float, float]]  # each sentence's (start, end) in the audio

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def duration_s(self) -> float:
        return self.audio.size / SR

    def longest_run_s(self) -> float:
        """The longest stretch of speech without a pause that closes an utterance (>= 0.6 s)."""
        best, start = 0.0, self.spans_s[0][0]
        for (s0, e0), (s1, _e1) in zip(self.spans_s, self.spans_s[1:]):
            if s1 - e0 >= 0.6:
                best, start = max(best, e0 - start), s1
        return max(best, self.spans_s[-1][1] - start)


BREATHS = (0.2, 0.25, 0.3, 0.2, 0.35)  # between sentences read without stopping: no utterance end

# Tuned on: Bierce, American voice, run-on breaths with an occasional pause.
TUNE = {
    "bierce-us": RecordingSpec("bierce-us", "bierce_devils_dictionary.txt", 0, 150.0, "en-us", 165,
                               BREATHS + (1.2,) + BREATHS, silence_after=((20, 4.0),)),
    "jargon-us-fast": RecordingSpec("jargon-us-fast", "jargon_file.txt", 40, 90.0, "en-us", 190,
                                    (0.2, 0.3, 0.9, 0.25), seed=1),
}

# Reported on: other texts, voices, rates and pause patterns.
REPORT = {
    "genesis-gb": RecordingSpec("genesis-gb", "kjv_genesis.txt", 10, 150.0, "en-gb", 150,
                                (0.18, 0.22, 0.25, 0.2), silence_after=((14, 6.0),), seed=2),
    "jargon-rp": RecordingSpec("jargon-rp", "jargon_file.txt", 0, 150.0, "en-gb-x-rp", 175,
                               (0.8, 1.5, 0.3, 0.25, 0.7), seed=3),
    "bierce-us-slow": RecordingSpec("bierce-us-slow", "bierce_devils_dictionary.txt", 60, 150.0, "en-us", 140,
                                    (0.3, 0.25, 0.3, 2.5, 0.2, 0.3, 0.25), silence_after=((9, 8.0),), seed=4),
}

RECORDINGS = {**TUNE, **REPORT}


def short(spec: RecordingSpec, duration_s: float) -> RecordingSpec:
    """The same recording cut to about `duration_s` of speech (for the test suite's time budget)."""
    silences = tuple((i, s) for i, s in spec.silence_after if i < 8)
    return RecordingSpec(**{**asdict(spec), "name": f"{spec.name}-{int(duration_s)}s", "duration_s": duration_s,
                            "silence_after": silences, "gaps_s": tuple(spec.gaps_s)})


def sentences_of(source: str) -> list[str]:
    """Plain sentences of 5–30 words without digits (Whisper writes numbers as digits)."""
    text = (FIXTURES / source).read_text(encoding="utf-8")
    out = []
    for s in re.split(r"(?<=[.!?])\s+|\n+", text):
        s = s.strip()
        if not s or re.search(r"\d", s) or not re.search(r"[.!?]$", s):
            continue
        if 5 <= len(s.split()) <= 30 and re.fullmatch(r"[A-Za-z ,;:'.!?\-]+", s):
            out.append(s)
    return out


def _espeak(text: str, voice: str, wpm: int, workdir: Path) -> np.ndarray:
    wav = workdir / "s.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True,
                   capture_output=True)
    audio = files.decode(wav)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0]:loud[-1] + 1] if loud.size else audio[:0]


def build(spec: RecordingSpec) -> Recording:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is required (apt install espeak-ng)")
    key = hashlib.sha256(json.dumps([_VERSION, asdict(spec)], sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir() / "speech"
    npy, meta = folder / f"{spec.name}-{key}.npy", folder / f"{spec.name}-{key}.json"
    if npy.exists() and meta.exists():
        data = json.loads(meta.read_text())
        return Recording(spec, np.load(npy), data["sentences"], [tuple(x) for x in data["spans"]])
    rng = np.random.default_rng(spec.seed)
    pool = sentences_of(spec.source)[spec.first_sentence:]
    silences = dict(spec.silence_after)
    pieces = [np.zeros(int(spec.lead_s * SR), np.float32)]
    t = spec.lead_s
    sentences, spans = [], []
    speech_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(pool):
            if speech_s >= spec.duration_s:
                break
            audio = _espeak(sentence, spec.voice, spec.wpm, Path(tmp))
            gap = silences.get(i, spec.gaps_s[i % len(spec.gaps_s)])
            pieces += [audio, np.zeros(int(gap * SR), np.float32)]
            sentences.append(sentence)
            spans.append((t, t + audio.size / SR))
            t += (audio.size + int(gap * SR)) / SR
            speech_s += audio.size / SR
    pieces.append(np.zeros(int(spec.tail_s * SR), np.float32))
    audio = np.concatenate(pieces)
    audio += rng.normal(0.0, 10 ** (spec.noise_dbfs / 20), audio.size).astype(np.float32)
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(npy, audio)
    meta.write_text(json.dumps({"sentences": sentences, "spans": spans}))
    return Recording(spec, audio, sentences, spans)
