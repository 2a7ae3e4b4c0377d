"""A scripted engine for the live pipeline: it knows what was said when (a `Script`), and behaves
like Whisper at window edges and in silence.

- It finds its window inside the script's audio (the samples are unique: there is dither under
  everything), so it is also a check that the session sends exactly the audio it was fed.
- A word lying wholly inside the window (up to `tolerance_s` clipped) is recognised, with its
  times off by up to `jitter_s`; a word cut by the window edge comes out garbled, differently for
  each cut, as Whisper does with half a word.
- A silence of `hallucinate_after_s` or more inside the window makes it "hear" a phrase there:
  alternately flagged as no-speech (high no_speech_prob, low avg_logprob) and confident.
- With `loop_every=k`, every k-th call degenerates into a repetition loop after a real word.
- `rtf`/`fixed_s` make it take that long (real time factor and per-call overhead), so threaded
  tests and benchmarks can stand in for a slow model.

The audio is speech-like for webrtcvad: each word is a tone burst with harmonics.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np

from dictate.engines import check_audio
from dictate.streaming import compression_ratio
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

SR = SAMPLE_RATE_HZ

VOCABULARY = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu apple banana cherry dragon "
    "eagle falcon garden harbor island jungle kettle lemon marble needle orange pepper quartz river "
    "saddle timber umbrella velvet window yellow zebra anchor bridge candle desert engine forest"
).split()


@dataclass(frozen=True)
class ScriptWord:
    start_s: float
    end_s: float
    text: str  # without the leading space


@dataclass(frozen=True)
class Script:
    words: tuple[ScriptWord, ...]
    audio: np.ndarray

    @property
    def duration_s(self) -> float:
        return self.audio.size / SR

    @property
    def texts(self) -> list[str]:
        return [w.text for w in self.words]


def word_burst(text: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of a harmonic tone (pitch from `text`), which webrtcvad takes for speech."""
    f0 = 110 + (int(hashlib.md5(text.encode()).hexdigest(), 16) % 120)
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 8))
    env = np.ones(n)
    ramp = min(n // 4, int(0.01 * SR))
    if ramp:
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
    return (0.15 * x * env).astype(np.float32)


def build_script(pieces: list[tuple[str, float]], seed: int = 0, word_s: tuple[float, float] = (0.25, 0.55),
                 gap_s: tuple[float, float] = (0.0, 0.1)) -> Script:
    """Audio from `pieces`: ("speech", seconds) for run-on words with short gaps, ("silence",
    seconds) for a pause. Consecutive words always differ."""
    rng = np.random.default_rng(seed)
    words: list[ScriptWord] = []
    parts: list[np.ndarray] = []
    t = 0
    last = ""
    for kind, seconds in pieces:
        end = t + int(seconds * SR)
        if kind == "silence":
            parts.append(np.zeros(end - t, dtype=np.float32))
            t = end
            continue
        while True:
            n = int(rng.uniform(*word_s) * SR)
            if t + n > end:
                break
            text = last
            while text == last:
                text = VOCABULARY[int(rng.integers(len(VOCABULARY)))]
            last = text
            parts.append(word_burst(text, n, rng))
            words.append(ScriptWord(t / SR, (t + n) / SR, text))
            t += n
            gap = min(int(rng.uniform(*gap_s) * SR), end - t)
            parts.append(np.zeros(gap, dtype=np.float32))
            t += gap
        parts.append(np.zeros(end - t, dtype=np.float32))
        t = end
    audio = np.concatenate(parts)
    # Dither far below what webrtcvad or int16 can see, so every window can be located exactly.
    audio = audio + rng.standard_normal(audio.size).astype(np.float32) * np.float32(1e-6)
    return Script(tuple(words), audio.astype(np.float32))


class ScriptedEngine:
    name = "scripted"

    def __init__(self, script: Script, *, tolerance_s: float = 0.04, jitter_s: float = 0.02,
                 hallucinate_after_s: float = 1.0, loop_every: int = 0, rtf: float = 0.0,
                 fixed_s: float = 0.0) -> None:
        self.script = script
        self.tolerance_s = tolerance_s
        self.jitter_s = jitter_s
        self.hallucinate_after_s = hallucinate_after_s
        self.loop_every = loop_every
        self.rtf = rtf
        self.fixed_s = fixed_s
        self.calls = 0
        self.windows: list[tuple[float, float]] = []  # (start_s, end_s) of every call, in script time
        self.cut_words = 0  # words that lay across a window edge
        self.silent_calls = 0  # calls whose window held no word at all
        self._starts = np.argsort(script.audio)
        self._sorted = script.audio[self._starts]

    def locate(self, audio: np.ndarray) -> int:
        """Where `audio` starts in the script (it must be an exact slice of it)."""
        lo = np.searchsorted(self._sorted, audio[0], side="left")
        hi = np.searchsorted(self._sorted, audio[0], side="right")
        for pos in self._starts[lo:hi]:
            pos = int(pos)
            if np.array_equal(self.script.audio[pos:pos + audio.size], audio):
                return pos
        raise AssertionError("the engine was given audio that is not a slice of what was fed")

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> list[Segment]:
        audio = check_audio(audio)
        t_start = time.perf_counter()
        self.calls += 1
        if audio.size == 0:
            return []
        offset = self.locate(audio) / SR
        length = audio.size / SR
        self.windows.append((offset, offset + length))
        segments = self._hear(offset, length)
        cost = self.fixed_s + self.rtf * length
        left = cost - (time.perf_counter() - t_start)
        if left > 0:
            time.sleep(left)
        return segments

    def _jitter(self, word: ScriptWord, which: int) -> float:
        h = int(hashlib.md5(f"{word.start_s}:{which}:{self.calls}".encode()).hexdigest(), 16)
        return ((h % 2001) / 1000.0 - 1.0) * self.jitter_s

    def _hear(self, offset: float, length: float) -> list[Segment]:
        end = offset + length
        tol = self.tolerance_s
        heard: list[Word] = []
        for w in self.script.words:
            if w.end_s <= offset or w.start_s >= end:
                continue
            if w.start_s >= offset - tol and w.end_s <= end + tol:
                s = max(0.0, w.start_s - offset + self._jitter(w, 0))
                e = min(length, max(s + 0.01, w.end_s - offset + self._jitter(w, 1)))
                heard.append(Word(s, e, " " + w.text, 0.9))
            else:
                self.cut_words += 1
                visible = (min(w.end_s, end) - max(w.start_s, offset)) / (w.end_s - w.start_s)
                garbled = f" {w.text[:max(1, int(len(w.text) * visible))]}~{int(visible * 1000)}"
                heard.append(Word(max(0.0, w.start_s - offset), min(length, w.end_s - offset), garbled, 0.3))
        if not heard:
            self.silent_calls += 1
        if self.loop_every and self.calls % self.loop_every == 0 and len(heard) > 3:
            # A Whisper repetition loop: after a real word, the same word again and again.
            k = len(heard) // 2
            w = heard[k]
            heard = heard[:k + 1] + [Word(w.end_s + 0.01 * i, w.end_s + 0.01 * (i + 1), w.text, 0.5)
                                     for i in range(8)]
            return [self._segment(heard, no_speech=0.02, logprob=-0.3)]
        segments = []
        group: list[Word] = []
        for word in heard:
            if group and word.start_s - group[-1].end_s > 0.5:
                segments.append(self._segment(group))
                group = []
            group.append(word)
        if group:
            segments.append(self._segment(group))
        segments.extend(self._hallucinations(offset, length, heard))
        return sorted(segments, key=lambda s: s.start_s)

    def _hallucinations(self, offset: float, length: float, heard: list[Word]) -> list[Segment]:
        out = []
        edges = [0.0] + [t for w in heard for t in (w.start_s, w.end_s)] + [length]
        for i in range(0, len(edges), 2):
            a, b = edges[i], edges[i + 1]
            if b - a >= self.hallucinate_after_s:
                text_words = (" Thank", " you.") if len(out) % 2 == 0 else (" Subtitles", " by", " Amara.")
                step = (b - a) / (len(text_words) + 1)
                words = tuple(Word(a + step * (j + 0.5), a + step * (j + 1.5), t, 0.5) for j, t in enumerate(text_words))
                flagged = (self.calls + len(out)) % 2 == 0
                out.append(Segment(words[0].start_s, words[-1].end_s, "".join(text_words), words,
                                   no_speech_prob=0.92 if flagged else 0.1,
                                   avg_logprob=-1.4 if flagged else -0.3,
                                   compression_ratio=compression_ratio("".join(text_words))))
        return out

    @staticmethod
    def _segment(words: list[Word], no_speech: float = 0.02, logprob: float = -0.2) -> Segment:
        text = "".join(w.text for w in words)
        return Segment(words[0].start_s, words[-1].end_s, text, tuple(words), no_speech_prob=no_speech,
                       avg_logprob=logprob, compression_ratio=compression_ratio(text))


@dataclass(frozen=True)
class SimResult:
    committed: list[Word]
    windows: int
    max_window_s: float
    final_latency_s: float  # virtual time from the end of input to the final text
    tail_engine_s: float  # virtual engine time of the last window
    commits: int
    commit_latencies_s: list[float] = field(default_factory=list)  # per word: its end -> committed
    busy_s: float = 0.0  # virtual engine time in all


def simulate(session, audio: np.ndarray, engine, *, feed_s: float = 0.05, cost=None, window_cost=None) -> SimResult:
    """Drive a StreamingSession in virtual time, single-threaded and deterministic: audio arrives
    in `feed_s` steps, the engine's answer "arrives" `cost(window_s)` seconds after the window went
    out (default: 0.1 s + 0.1 x its length), or `window_cost(window)` when that is given, and
    meanwhile audio keeps coming (double buffering)."""
    cost = cost or (lambda window_s: 0.1 + 0.1 * window_s)
    window_cost = window_cost or (lambda window: cost(window.duration_s))
    step = int(feed_s * SR)
    now = 0.0
    pos = 0
    out = None  # (window, segments, ready_at)
    committed: list[Word] = []
    commits = 0
    last_cost = 0.0
    end_of_input = None
    final_at = None
    latencies: list[float] = []
    busy = 0.0

    def pump() -> None:
        nonlocal out, commits, final_at, last_cost, busy
        if out is not None and now >= out[2] - 1e-9:
            window, segments, _ = out
            out = None
            for c in session.on_result(window, segments, last_cost):
                committed.extend(c.words)
                latencies.extend(max(0.0, now - w.end_s) for w in c.words)
                commits += 1
            if session.done:
                final_at = now
        if out is None and not session.done:
            window = session.next_window()
            if window is not None:
                last_cost = window_cost(window)
                busy += last_cost
                out = (window, engine.transcribe(window.audio, window.options), now + last_cost)
            elif session.finishing and session.done and final_at is None:
                final_at = now

    while pos < audio.size:
        session.feed(audio[pos:pos + step])
        pos += step
        now += step / SR
        pump()
    end_of_input = now
    session.finish()
    while not session.done:
        pump()
        if not session.done:
            now = out[2] if out is not None else now + feed_s
    pump()
    if final_at is None:
        final_at = now
    return SimResult(committed, session.windows, session.max_window_s, final_at - end_of_input, last_cost, commits,
                     latencies, busy)


# -- for CLI tests: the script travels in a file, the engine is built by `module:attribute` --------

SCRIPT_ENV = "DICTATE_TEST_SCRIPT"


def save_script(script: Script, directory) -> tuple:
    """Write the script's audio as a float32 WAV (decoded bit-exact) and its words as JSON next to
    it; returns (wav path, env for a subprocess that uses `--engine tests.support.scripted_engine:from_env`)."""
    import json
    from fractions import Fraction
    from pathlib import Path

    import av

    directory = Path(directory)
    wav = directory / "script.wav"
    with av.open(str(wav), "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=SR)
        stream.layout = "mono"
        for start in range(0, script.audio.size, 4096):
            block = script.audio[start:start + 4096].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
            frame.sample_rate = SR
            frame.pts = start
            frame.time_base = Fraction(1, SR)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    words = directory / "script.json"
    words.write_text(json.dumps([[w.start_s, w.end_s, w.text] for w in script.words]))
    return wav, {SCRIPT_ENV: str(words)}


def from_env() -> ScriptedEngine:
    """Zero-argument factory: the script named by $DICTATE_TEST_SCRIPT, its audio decoded from the
    WAV beside it exactly as `dictate listen --input` decodes it."""
    import json
    import os
    from pathlib import Path

    from dictate.audio.files import decode

    words_path = Path(os.environ[SCRIPT_ENV])
    words = tuple(ScriptWord(a, b, t) for a, b, t in json.loads(words_path.read_text()))
    audio = decode(words_path.with_suffix(".wav"))
    kwargs = json.loads(os.environ.get(SCRIPT_ENV + "_OPTIONS", "{}"))
    return ScriptedEngine(Script(words, audio), **kwargs)
