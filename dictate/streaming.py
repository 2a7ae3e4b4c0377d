"""StreamingSession: live audio in, committed words out. A pure state machine (no threads, no
clock): the caller feeds audio, asks for the next window when the engine is free, and hands the
engine's segments back.

    session = StreamingSession(params, base_options)
    session.feed(samples)                  # as audio arrives (16 kHz mono float32)
    window = session.next_window()         # None while a window is out or nothing is worth sending
    commits = session.on_result(window, segments)   # -> list[Commit], newly committed words
    session.finish()                       # input ended: only the uncommitted tail is left
    session.done                           # after the final window's result

Policy (after whisper_streaming):
- Double buffering: audio keeps arriving while a window is out; the next window (everything from
  the buffer start to now) goes out as soon as the previous result is back and >= min_chunk_s of
  new audio has arrived.
- LocalAgreement-2: a word is committed when two consecutive hypotheses agree on it (the longest
  common prefix of their uncommitted words). When VAD closes an utterance (speech followed by
  utterance_silence_s of silence), the window covering it commits all of its words.
- The buffer is trimmed at the end of the last committed word once it is longer than trim_at_s
  (and at utterance ends), so windows start between words; a hard limit below Whisper's 30 s
  forces a commit of the settled words in the unlikely case that nothing has agreed for that long.
- Committed text is the next window's prompt.
- Guards: windows without speech are not sent; segments with high no_speech_prob and low
  avg_logprob, or a high compression ratio, are dropped; words lying in VAD silence are dropped
  (hallucinations); a repetition loop is cut after its first occurrence.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dictate.audio import vad
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

log = logging.getLogger(__name__)

SR = SAMPLE_RATE_HZ
WHISPER_WINDOW_S = 30.0
MAX_CLOSE_RETRIES = 2  # an utterance-end or final window that came back short is tried again
EDGE_SLIVER_S = 0.08  # no real word ends this soon after a window start that lies between words


@dataclass(frozen=True)
class StreamingParams:
    min_chunk_s: float = 1.0  # least new audio before the next window
    trim_at_s: float = 20.0  # trim at the last committed word once the buffer is longer
    max_window_s: float = 25.0  # hard limit on a window, safely under Whisper's 30 s
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    utterance_silence_s: float = 0.6  # this much silence after speech closes an utterance
    speech_pad_s: float = 0.3  # silence kept before speech so its onset is not clipped
    silence_word_pad_s: float = 0.15  # a word is a hallucination if no speech lies within this of it
    prompt_chars: int = 200
    vad_aggressiveness: int = vad.DEFAULT_AGGRESSIVENESS

    @classmethod
    def from_config(cls, cfg) -> "StreamingParams":
        s = cfg.streaming
        trim = min(float(s.trim_at_s), 25.0)
        return cls(min_chunk_s=float(s.min_chunk_s), trim_at_s=trim, max_window_s=min(trim + 5.0, 28.0),
                   no_speech_threshold=float(s.no_speech_threshold), logprob_threshold=float(s.logprob_threshold),
                   compression_ratio_threshold=float(s.compression_ratio_threshold))


@dataclass(frozen=True)
class Window:
    """One call to the engine: `audio` starts at `start_s` seconds of the session."""

    index: int
    audio: NDArray[np.float32] = dataclasses.field(repr=False, compare=False)
    start_s: float
    end_s: float
    options: TranscribeOptions = dataclasses.field(repr=False, compare=False)
    closes_at_s: float | None = None  # utterance end: commit every word that starts before this
    final: bool = False  # the tail after finish(): commit everything

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Commit:
    """Words committed by one result, times in seconds of the session."""

    words: tuple[Word, ...]
    reason: str  # "agreement", "utterance-end", "final" or "forced"

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words)

    @property
    def end_s(self) -> float:
        return self.words[-1].end_s


def normalize(text: str) -> str:
    """Word identity for agreement: case and punctuation do not count."""
    return re.sub(r"[^\w']+", "", text.lower())


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetitiveness: text bytes over zlib-compressed bytes."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def join_words(words: list[Word] | tuple[Word, ...]) -> str:
    return "".join(w.text for w in words)


class _Audio:
    """The live buffer: chunks as fed, addressed by absolute sample index, trimmed from the front."""

    def __init__(self) -> None:
        self._chunks: list[NDArray[np.float32]] = []
        self.start = 0  # absolute index of the first kept sample
        self.end = 0  # absolute index one past the last sample

    def append(self, samples: NDArray[np.float32]) -> None:
        if samples.size:
            self._chunks.append(samples)
            self.end += samples.size

    def drop_before(self, index: int) -> None:
        index = min(max(index, self.start), self.end)
        while self._chunks and self.start + self._chunks[0].size <= index:
            self.start += self._chunks.pop(0).size
        if self._chunks and index > self.start:
            self._chunks[0] = self._chunks[0][index - self.start:]
            self.start = index
        if not self._chunks:
            self.start = index

    def get(self) -> NDArray[np.float32]:
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        out = np.concatenate(self._chunks)
        self._chunks = [out]  # windows are taken often; keep one contiguous chunk
        return out


class StreamingSession:
    """See the module docstring. Times are seconds since the first sample fed."""

    def __init__(self, params: StreamingParams | None = None, options: TranscribeOptions | None = None) -> None:
        self.params = params or StreamingParams()
        base = options or TranscribeOptions()
        self._options = dataclasses.replace(base, word_timestamps=True, vad_filter=False)
        self._audio = _Audio()
        self._vad = vad.FrameVad(self.params.vad_aggressiveness)
        self._flags = bytearray()  # one speech flag per 30 ms frame since the start
        self.committed: list[Word] = []
        self._committed_end = 0.0
        self._hyp: list[Word] | None = None  # uncommitted words of the last hypothesis
        self._hyp_end_s = 0.0  # end of the window that hypothesis came from
        self._pending: list[Commit] = []  # forced commits, handed out with the next result
        self._loop_cut = False  # the last hypothesis was cut short by the loop guard
        self._retries = 0  # closing windows that came back incomplete in a row
        self._in_flight: Window | None = None
        self._last_window_end = 0  # absolute sample index where the last window ended
        self._finishing = False
        self.done = False
        # figures
        self.windows = 0
        self.max_window_s = 0.0
        self.dropped_segments = 0
        self.dropped_words = 0

    # -- input --

    def feed(self, samples: NDArray[np.float32]) -> None:
        if samples.size == 0:
            return
        if self._finishing:
            raise RuntimeError("feed() after finish()")
        samples = np.asarray(samples, dtype=np.float32)
        self._audio.append(samples)
        self._flags.extend(self._vad.feed(samples).tobytes())

    def finish(self) -> None:
        """No more audio: the next window (or the one out now, if it already covers every word)
        is the last."""
        self._finishing = True

    @property
    def finishing(self) -> bool:
        return self._finishing

    @property
    def busy(self) -> bool:
        """A window is out with the engine."""
        return self._in_flight is not None

    @property
    def duration_s(self) -> float:
        return self._audio.end / SR

    @property
    def buffer_s(self) -> float:
        return (self._audio.end - self._audio.start) / SR

    @property
    def tentative(self) -> list[Word]:
        """Words heard but not yet committed (for an overlay or --partial)."""
        return list(self._hyp or ())

    @property
    def committed_text(self) -> str:
        return join_words(self.committed)

    # -- VAD over absolute time --

    def _flags_between(self, start_s: float, end_s: float) -> NDArray[np.bool_]:
        a = max(0, int(start_s / vad.FRAME_S))
        b = min(len(self._flags), int(np.ceil(end_s / vad.FRAME_S)))
        if b <= a:
            return np.zeros(0, dtype=bool)
        return np.frombuffer(bytes(self._flags[a:b]), dtype=np.uint8).astype(bool)

    def _uncommitted_start_s(self) -> float:
        return max(self._audio.start / SR, self._committed_end)

    def _last_speech_end_s(self, since_s: float, until_s: float | None = None) -> float | None:
        flags = self._flags_between(since_s, self.duration_s if until_s is None else until_s)
        idx = np.flatnonzero(flags)
        if idx.size == 0:
            return None
        first = int(since_s / vad.FRAME_S)
        return (first + int(idx[-1]) + 1) * vad.FRAME_S

    # -- windows --

    def next_window(self) -> Window | None:
        """The window to send now, or None (a window is out, nothing new, or no speech)."""
        if self._in_flight is not None or self.done:
            return None
        p = self.params
        self._enforce_limit()
        since = self._uncommitted_start_s()
        flags = self._flags_between(since, self.duration_s)
        speech = vad.has_speech(flags)
        if self._finishing:
            if not speech and not self._hyp:
                self.done = True
                return None
            return self._make_window(final=True)
        if not speech:
            self._drop_silence()
            return None
        if vad.trailing_silence_s(flags) >= p.utterance_silence_s:
            return self._make_window(closes_at_s=self._last_speech_end_s(since))
        if (self._audio.end - max(self._last_window_end, self._audio.start)) / SR >= p.min_chunk_s:
            return self._make_window()
        return None

    def _make_window(self, closes_at_s: float | None = None, final: bool = False) -> Window:
        audio = self._audio.get().copy()  # the buffer keeps changing while the engine works
        start_s, end_s = self._audio.start / SR, self._audio.end / SR
        options = dataclasses.replace(self._options, initial_prompt=self._prompt())
        window = Window(self.windows, audio, start_s, end_s, options, closes_at_s, final)
        self.windows += 1
        self.max_window_s = max(self.max_window_s, window.duration_s)
        self._in_flight = window
        self._last_window_end = self._audio.end
        return window

    def _prompt(self) -> str | None:
        base = self._options.initial_prompt or ""
        committed = self.committed_text.strip()
        text = (base + " " + committed).strip() if base else committed
        return text[-self.params.prompt_chars:] or None

    def _cut_after_committed(self) -> float:
        """Where to start the buffer after the committed words: between the last committed word and
        the next heard one, so that neither is cut (word times are only approximate)."""
        cut = self._committed_end
        if self._hyp and 0.0 < self._hyp[0].start_s - cut < 0.3:
            cut = (cut + self._hyp[0].start_s) / 2
        return cut

    def _drop_silence(self) -> None:
        """Nothing uncommitted is being said: keep only a little silence before the next onset."""
        keep_from = self._audio.end - int(self.params.speech_pad_s * SR)
        if keep_from > self._audio.start and not self._hyp:
            self._trim_to(keep_from / SR)

    def _trim_to(self, t_s: float) -> None:
        self._audio.drop_before(int(round(t_s * SR)))

    def _enforce_limit(self) -> None:
        """Keep every window under max_window_s even if nothing has been agreed on for that long."""
        p = self.params
        if self.buffer_s + 0.5 <= p.max_window_s:
            return
        # Commit the settled words of the last hypothesis: all but those near its window's end,
        # which may be cut.
        forced = [w for w in (self._hyp or []) if w.end_s <= self._hyp_end_s - 0.5]
        if forced:
            self._pending.append(self._commit(forced, "forced"))
            self._hyp = [w for w in self._hyp or [] if w.end_s > self._committed_end]
            log.warning("live: %.0f s buffered without agreement; committed %d settled words", self.buffer_s, len(forced))
        cut = max(self._committed_end, self._audio.start / SR)
        if self._audio.end / SR - cut + 0.5 > p.max_window_s:
            # Still too long (the engine heard nothing it would commit): cut at a pause if any.
            lo, hi = self._audio.start / SR, self._audio.end / SR - p.trim_at_s
            cuts = vad.silence_cut_points(self._flags_between(lo, hi), lo, 0.09)
            cut = cuts[-1] if cuts else hi
            log.warning("live: dropping %.1f s of audio the engine could not transcribe", cut - lo)
            self._hyp = [w for w in self._hyp or [] if w.start_s >= cut] or None
        self._trim_to(cut)

    # -- results --

    def on_result(self, window: Window, segments: list[Segment]) -> list[Commit]:
        """Process the engine's answer for `window`; returns what it commits (maybe nothing)."""
        if window is not self._in_flight:
            raise ValueError("on_result() for a window that is not out")
        self._in_flight = None
        commits, self._pending = self._pending, []
        words = self._new_words(window, segments)
        final = window.final
        if self._finishing and not final:
            # finish() came while this window was out: if it already holds every word said, it is
            # the last one (the wait after stop is then at most what is left of this call).
            last_speech = self._last_speech_end_s(window.start_s)
            final = last_speech is None or last_speech <= window.end_s - 0.15
            if not final:
                window = dataclasses.replace(window, closes_at_s=None)  # the final window will follow
        if final or window.closes_at_s is not None:
            # The last window (or one already covering everything said before finish()), or one
            # that VAD says holds a whole utterance: commit everything it heard, if it heard it all.
            limit = None if final else window.closes_at_s
            heard = [w for w in words if limit is None or w.start_s < limit]
            speech_end = self._last_speech_end_s(max(window.start_s, self._committed_end),
                                                 limit if limit is not None else window.end_s)
            complete = not self._loop_cut and (
                (not heard and speech_end is None) or (bool(heard) and heard[-1].end_s >= speech_end - 1.0))
            if heard:
                commits.append(self._commit(heard, "final" if final else "utterance-end"))
            self._hyp = None  # anything after the pause is heard again in the next window
            if complete or self._retries >= MAX_CLOSE_RETRIES:
                self._retries = 0
                if final:
                    self.done = True
                else:
                    self._trim_to(max(window.closes_at_s, self._committed_end))
            else:
                # A loop or a hypothesis that stops short: hear the rest again in another window.
                self._retries += 1
                if self._committed_end > self._audio.start / SR:
                    self._trim_to(self._committed_end)
                if final:
                    self._finishing = True  # the next window is final again
        else:
            agreed = self._agreement(self._hyp, words)
            if agreed:
                commits.append(self._commit(agreed, "agreement"))
            self._hyp = words[len(agreed):]
            self._hyp_end_s = window.end_s
            if self.buffer_s > self.params.trim_at_s and self._committed_end > self._audio.start / SR:
                self._trim_to(self._cut_after_committed())
        return [c for c in commits if c.words]

    def on_error(self, window: Window) -> None:
        """The engine failed on `window`: nothing is committed, the audio stays for the next one."""
        if window is self._in_flight:
            self._in_flight = None

    def _commit(self, words: list[Word], reason: str = "agreement") -> Commit:
        self.committed.extend(words)
        self._committed_end = max(self._committed_end, words[-1].end_s)
        return Commit(tuple(words), reason)

    @staticmethod
    def _agreement(previous: list[Word] | None, current: list[Word]) -> list[Word]:
        """LocalAgreement-2: the longest common prefix (by normalized text), with current times."""
        if not previous:
            return []
        n = 0
        for a, b in zip(previous, current):
            if normalize(a.text) != normalize(b.text):
                break
            n += 1
        return current[:n]

    # -- hypothesis cleaning --

    def _new_words(self, window: Window, segments: list[Segment]) -> list[Word]:
        """The hypothesis as words in session time, guarded, without what is already committed."""
        words: list[Word] = []
        for seg in segments:
            if not self._segment_ok(seg):
                self.dropped_segments += 1
                continue
            for w in _segment_words(seg):
                start = min(max(w.start_s, 0.0), window.duration_s) + window.start_s
                end = min(max(w.end_s, w.start_s, 0.0), window.duration_s) + window.start_s
                if normalize(w.text):
                    words.append(Word(start, max(start, end), w.text, w.probability))
        cut = self._cut_loop(words)
        self._loop_cut = len(cut) < len(words)
        words = cut
        if window.start_s > 0:
            # A window that starts where a committed word ended may hear a sliver of that word.
            words = [w for w in words if w.end_s > window.start_s + EDGE_SLIVER_S]
        kept = [w for w in words if self._has_speech_near(w)]
        self.dropped_words += len(words) - len(kept)
        new = [w for w in kept if (w.start_s + w.end_s) / 2 > self._committed_end]
        return self._drop_overlap(new)

    def _segment_ok(self, seg: Segment) -> bool:
        p = self.params
        if (seg.no_speech_prob is not None and seg.avg_logprob is not None
                and seg.no_speech_prob > p.no_speech_threshold and seg.avg_logprob < p.logprob_threshold):
            return False
        ratio = seg.compression_ratio if seg.compression_ratio is not None else compression_ratio(seg.text)
        return ratio <= p.compression_ratio_threshold

    def _has_speech_near(self, w: Word) -> bool:
        pad = self.params.silence_word_pad_s
        return bool(self._flags_between(w.start_s - pad, w.end_s + pad).any())

    def _drop_overlap(self, new: list[Word]) -> list[Word]:
        """Drop words at the head of `new` that repeat the committed tail and lie where it already
        is in time (an engine's timestamps can put a committed word a little late)."""
        tail = self.committed[-5:]
        for n in range(min(len(tail), len(new)), 0, -1):
            if new[n - 1].end_s > self._committed_end + 0.25:
                continue
            if [normalize(w.text) for w in tail[-n:]] == [normalize(w.text) for w in new[:n]]:
                return new[n:]
        return new

    @staticmethod
    def _cut_loop(words: list[Word], max_ngram: int = 4) -> list[Word]:
        """Stop a repetition loop: where an n-gram repeats back to back (3 times, or 4 for a single
        word), keep its first occurrence and drop the rest of the hypothesis."""
        keys = [normalize(w.text) for w in words]
        for i in range(len(keys)):
            for n in range(1, max_ngram + 1):
                times = 4 if n == 1 else 3
                if i + n * times > len(keys):
                    continue
                gram = keys[i:i + n]
                if all(keys[i + k * n:i + (k + 1) * n] == gram for k in range(1, times)):
                    log.info("live: repetition loop cut at %r", " ".join(gram))
                    return words[:i + n]
        return words


def _segment_words(seg: Segment) -> tuple[Word, ...]:
    """Word timings, spread evenly over the segment for engines that do not give them."""
    if seg.words:
        return seg.words
    parts = seg.text.split()
    if not parts:
        return ()
    step = (seg.end_s - seg.start_s) / len(parts)
    return tuple(Word(seg.start_s + i * step, seg.start_s + (i + 1) * step, " " + p) for i, p in enumerate(parts))
