"""Data that crosses module and thread boundaries: frozen dataclasses with units in their names."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

SAMPLE_RATE_HZ = 16_000
"""Every engine takes mono float32 audio in [-1, 1] at this rate."""


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str  # as the engine produced it, usually with a leading space
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()
    # Whisper's own confidence figures, where the engine knows them (None otherwise).
    no_speech_prob: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None

    def clamped(self, duration_s: float) -> "Segment":
        """Times kept inside [0, duration_s]: decoders can predict timestamps past the audio's end."""
        def c(t: float) -> float:
            return min(max(t, 0.0), duration_s)

        if 0.0 <= self.start_s <= self.end_s <= duration_s and all(0.0 <= w.start_s <= w.end_s <= duration_s
                                                                  for w in self.words):
            return self
        words = tuple(Word(c(w.start_s), max(c(w.start_s), c(w.end_s)), w.text, w.probability) for w in self.words)
        start = c(self.start_s)
        return Segment(start, max(start, c(self.end_s)), self.text, words, self.no_speech_prob,
                       self.avg_logprob, self.compression_ratio)

    def shifted(self, offset_s: float) -> "Segment":
        """The same segment with every time moved by `offset_s` (for audio cut from a longer stream)."""
        return Segment(
            start_s=self.start_s + offset_s,
            end_s=self.end_s + offset_s,
            text=self.text,
            words=tuple(
                Word(w.start_s + offset_s, w.end_s + offset_s, w.text, w.probability) for w in self.words
            ),
            no_speech_prob=self.no_speech_prob,
            avg_logprob=self.avg_logprob,
            compression_ratio=self.compression_ratio,
        )


@dataclass(frozen=True)
class TranscribeOptions:
    language: str | None = None  # None: detect
    beam_size: int = 1
    initial_prompt: str | None = None
    hotwords: tuple[str, ...] = ()  # personal vocabulary, biases decoding towards these spellings
    word_timestamps: bool = False
    vad_filter: bool = False
    temperature: float | tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    # Upper bound on generated tokens per window; None lets the engine decide (Whisper's 448 context).
    max_new_tokens: int | None = None
    batch_size: int = 0  # > 1: faster-whisper's batched pipeline for long files
    task: str = "transcribe"  # or "translate" (to English)
    # A window under 30 s decoded in one pass (live windows): no second pass over what follows the
    # last word, which the next window hears anyway. Engines without such a pass ignore it.
    single_pass: bool = False
    # Seconds of silence the encoder hears after a single-pass window, instead of padding it to 30 s.
    # The encoder's cost grows with the square of its input: 15 s of it encode in a quarter of the
    # time 30 s take (0.12 s against 0.45-0.52 s, tiny.en on 2 cores). None: the full 30 s, as
    # Whisper was trained. faster-whisper only: whisper.cpp's audio_ctx, the same idea, lost words
    # at every padding tried (15-25 s: 7 of 29 words of an 8 s window, all 4 of a 3 s one), so that
    # engine keeps its 30 s.
    encoder_pad_s: float | None = None
    # Engine-specific extras that the protocol does not name (passed through untouched).
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class RecordingMode(enum.Enum):
    PUSH_TO_TALK = "push-to-talk"
    TOGGLE = "toggle"


class CommandKind(enum.Enum):
    START = "start"
    STOP = "stop"
    TOGGLE = "toggle"
    CANCEL = "cancel"
    PTT_DOWN = "ptt-down"  # push-to-talk pressed: start (pre-roll included)
    PTT_UP = "ptt-up"  # push-to-talk released: trailing capture, then the tail is transcribed
    NOTE_START = "note-start"
    NOTE_STOP = "note-stop"
    QUIT = "quit"


@dataclass(frozen=True)
class Command:
    """What hotkeys, IPC and the UI ask of the controller; they produce nothing else."""

    kind: CommandKind
    payload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class EventKind(enum.Enum):
    STATE = "state"  # payload: {"state": idle|loading|listening|transcribing|note-recording|error}
    PARTIAL = "partial"  # payload: {"text"} tentative text
    COMMITTED = "committed"  # payload: {"text"} committed text (as typed)
    LEVEL = "level"  # payload: {"dbfs"} input level, about 10 times a second while capturing
    PROGRESS = "progress"  # payload: fraction 0..1, label
    ERROR = "error"  # payload: {"message", "action"} one-line message and what to do about it
    NOTICE = "notice"  # payload: {"message"} one-line message for the user
    CUE = "cue"  # payload: {"sound": "start"|"stop"|"cancel"|"error"}; the UI plays it if enabled
    SHOW = "show"  # payload: {}; a second launch asked the running app to show itself
    DONE = "done"  # payload: {"status": done|cancelled|failed, "text", "history_id"}; a dictation ended


@dataclass(frozen=True)
class Event:
    """What the controller publishes; the UI and the CLI only listen."""

    kind: EventKind
    payload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
