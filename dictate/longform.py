"""The record-then-transcribe pass over spans cut at pauses: beam search with word timestamps,
the text so far as the prompt, segments merged in order, paragraphs at long pauses, and the
personal punctuation model when one is enabled (plain Whisper punctuation otherwise)."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from dictate.audio.segmenter import Span
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

if TYPE_CHECKING:
    from dictate.config import Config

log = logging.getLogger(__name__)

Transcriber = Callable[[NDArray[np.float32], TranscribeOptions], list[Segment]]
"""Engine.transcribe, or anything that runs it (the engine worker)."""

Punctuator = Callable[[Sequence[Word]], str]
"""Words (with times) -> punctuated text: the personal punctuation model's hook."""

PROMPT_CHARS = 200  # Whisper's prompt holds ~224 tokens; the last sentence or two is what helps


def pass_options(base: TranscribeOptions, beam_size: int) -> TranscribeOptions:
    """The batch pass's options: beam search and word timestamps; no engine-side VAD (the
    spans are already speech) and no batched pipeline (spans are under 30 s)."""
    return dataclasses.replace(base, beam_size=beam_size, word_timestamps=True, vad_filter=False, batch_size=0)


@dataclass(frozen=True)
class SpanResult:
    span: Span
    segments: tuple[Segment, ...]  # times from the start of the recording
    engine_s: float  # wall time in the engine
    started_at: float  # time.monotonic() around the engine call, to tell what ran after stop
    finished_at: float


def _clip_word(w: Word, lo: float, hi: float) -> Word:
    start = min(max(w.start_s, lo), hi)
    return Word(start, min(max(w.end_s, start), hi), w.text, w.probability)


def _clip(seg: Segment, lo: float, hi: float) -> Segment:
    """Engines sometimes place the last timestamp past the audio they were given."""
    start = min(max(seg.start_s, lo), hi)
    return dataclasses.replace(seg, start_s=start, end_s=min(max(seg.end_s, start), hi),
                               words=tuple(_clip_word(w, lo, hi) for w in seg.words))


# A segment Whisper takes for no speech and whose words it is unsure of is the "Thank you." it
# makes up when a span ends in silence: its last timestamp leaves a sliver of pause, decoded on its
# own. faster-whisper drops such a window only below a mean log-probability of -1.0; the ones it
# kept measured -0.7 to -1.0 (no-speech 0.85-0.93), real speech -0.2 to -0.4.
NO_SPEECH_PROB = 0.6
UNSURE_LOGPROB = -0.5


def made_up_in_silence(seg: Segment) -> bool:
    return (seg.no_speech_prob is not None and seg.avg_logprob is not None
            and seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < UNSURE_LOGPROB)


class SpanTranscriber:
    """Transcribes spans in recording order; the text so far is the prompt for the next span."""

    def __init__(self, transcribe: Transcriber, options: TranscribeOptions) -> None:
        self._transcribe = transcribe
        self.options = options
        self.context = ""

    def __call__(self, span: Span, audio: NDArray[np.float32]) -> SpanResult:
        prompt = " ".join(p for p in (self.options.initial_prompt, self.context.strip()[-PROMPT_CHARS:]) if p)
        options = dataclasses.replace(self.options, initial_prompt=prompt or None)
        t0 = time.monotonic()
        raw = self._transcribe(audio, options)
        t1 = time.monotonic()
        lo, hi = span.start_s, span.end_s
        kept = [s for s in raw if s.text.strip() and not made_up_in_silence(s)]
        if len(kept) < len([s for s in raw if s.text.strip()]):
            log.debug("span %.1f-%.1f s: dropped %s", lo, hi,
                      [s.text for s in raw if s.text.strip() and made_up_in_silence(s)])
        segments = tuple(_clip(s.shifted(lo), lo, hi) for s in kept)
        self.context = (self.context + "".join(s.text for s in segments))[-4 * PROMPT_CHARS:]
        return SpanResult(span, segments, t1 - t0, t0, t1)


@dataclass(frozen=True)
class Paragraph:
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...]


def _units(result: SpanResult) -> tuple[list[Word], bool]:
    """Words when the engine gave them for every segment, else each segment as one unit."""
    if result.segments and all(s.words for s in result.segments):
        return [w for s in result.segments for w in s.words], True
    return [Word(s.start_s, s.end_s, s.text, 1.0) for s in result.segments], False


def _join(units: Sequence[Word]) -> str:
    return re.sub(r"\s+", " ", "".join(u.text if u.text[:1].isspace() else " " + u.text for u in units)).strip()


def build_paragraphs(results: Sequence[SpanResult], pause_s: float, punctuate: Punctuator | None = None,
                     notices: list[str] | None = None) -> list[Paragraph]:
    """Merge span results in order; a pause of at least `pause_s` (between spans: measured by the
    VAD; inside a span: between the engine's word times) starts a new paragraph."""
    groups: list[list[Word]] = []
    real: list[bool] = []  # the group holds engine words (not whole segments): the punctuator can use it
    prev_unit_end = 0.0
    prev_speech_end: int | None = None
    for result in sorted(results, key=lambda r: r.span.start):
        units, real_words = _units(result)
        span_gap = (0.0 if prev_speech_end is None
                    else (result.span.speech_start - prev_speech_end) / SAMPLE_RATE_HZ)
        prev_speech_end = result.span.speech_end
        for i, unit in enumerate(units):
            gap = span_gap if i == 0 else unit.start_s - prev_unit_end
            if not groups or gap >= pause_s:
                groups.append([])
                real.append(True)
            groups[-1].append(unit)
            real[-1] = real[-1] and real_words
            prev_unit_end = unit.end_s
    paragraphs = []
    for units, real_words in zip(groups, real):
        text = _join(units)
        if punctuate is not None and real_words:
            try:
                text = punctuate(units).strip() or text
            except Exception as exc:  # the user's model: its failure must not cost the note
                log.warning("punctuation model failed: %s", exc)
                if notices is not None and not any("punctuation" in n for n in notices):
                    notices.append(f"the punctuation model failed ({exc}); Whisper's punctuation was kept")
                punctuate = None
        paragraphs.append(Paragraph(units[0].start_s, units[-1].end_s, text, tuple(units)))
    return paragraphs


def load_punctuator(cfg: "Config", notices: list[str] | None = None) -> Punctuator | None:
    """The personal punctuation model when enabled in config, else None (Whisper's punctuation).
    A missing or broken model is a notice, not a failure: the note still gets Whisper's text."""
    pc = cfg.punctuation
    if not pc.enabled:
        return None
    if not pc.model_path:
        _notice(notices, "punctuation is enabled but no model is trained yet (`dictate punctuation train`)")
        return None
    try:
        from dictate.punctuation import load_model  # lazily: numpy-only, but only when wanted

        model = load_model(pc.model_path)
    except Exception as exc:
        _notice(notices, f"cannot load the punctuation model {pc.model_path}: {exc}; Whisper's punctuation was kept")
        return None
    weight = pc.pause_weight
    return lambda words: model.punctuate_words(list(words), pause_weight=weight)


def _notice(notices: list[str] | None, message: str) -> None:
    log.warning("%s", message)
    if notices is not None:
        notices.append(message)


def title_from(text: str, fallback: str, max_words: int = 8) -> str:
    words = text.split()
    if not words:
        return fallback
    title = " ".join(words[:max_words]).rstrip(",;:")
    return title + ("…" if len(words) > max_words else "")
