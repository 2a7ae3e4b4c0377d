"""StreamingSession: live audio in, committed words out. A pure state machine (no threads, no
clock): the caller feeds audio, asks for the next window when the engine is free, and hands the
engine's segments back.

    session = StreamingSession(params, base_options)
    session.feed(samples)                  # as audio arrives (16 kHz mono float32)
    window = session.next_window()         # None while a window is out or nothing is worth sending
    commits = session.on_result(window, segments, engine_s)   # -> list[Commit], newly committed
    session.finish()                       # input ended: only the uncommitted tail is left
    session.done                           # after the final window's result

Policy (after whisper_streaming, made to hold up against real Whisper, whose word times are only
approximate and shift between overlapping windows):
- Double buffering: audio keeps arriving while a window is out; the next window (everything from
  the buffer start to now) goes out as soon as the previous result is back and enough new audio has
  arrived. "Enough" follows the engine: a window costing c seconds waits for c / target_busy of
  audio, so the engine keeps up (busy / audio <= target_busy) instead of falling behind.
- LocalAgreement-2: a word is committed when two consecutive hypotheses agree on it (the longest
  common prefix of their uncommitted words, by text). Real Whisper sometimes answers two readings
  of a hard stretch by turns, and consecutive hypotheses then never agree: once agree_back_after
  windows in a row agreed on nothing, a hypothesis may agree with any of the agree_back before it.
  When VAD closes an utterance (speech, then utterance_silence_s of silence), the window covering
  it commits all of its words.
- Words are matched by text and order; times only bound where to look. A new hypothesis has the
  words already committed removed by matching the committed tail against its head, never by a
  time threshold alone (a word whose time is off by 100 ms must not vanish). The last committed
  word heard again in another spelling at the same time ("And" for "An") is that word; a
  hypothesis whose times collapsed (whisper.cpp's, some windows) is matched by text alone.
- The buffer is trimmed at a pause (VAD silence) that lies after the committed words and before
  the uncommitted ones, so a window starts between words and hears none of what is committed.
  Trimming starts once the buffer is longer than trim_at_s, which keeps windows short and the
  engine fast. With no pause to cut at, it trims between the last committed word and the next.
- Nothing is ever thrown away. When nothing has agreed for stall_s, the words of the last
  hypothesis' finished segments are committed; when even that gives nothing, the oldest part is
  closed as a chunk of its own at a pause and everything heard in it is committed. `discarded_s`
  counts any speech that left the buffer without being heard, and stays 0.
- Committed text before the buffer is the next window's prompt.
- Guards: windows without speech are not sent; segments with high no_speech_prob and low
  avg_logprob, or a high compression ratio, are dropped; words lying in VAD silence are dropped
  (hallucinations); a repetition loop is cut after its first occurrence, and its window is heard
  again rather than committed.
"""

from __future__ import annotations

import dataclasses
import difflib
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
REHEARD_WORDS = 8  # how much of the committed tail a new hypothesis is matched against
REHEARD_WINDOW_S = 1.0  # how far from its committed time a word heard again is looked for
COLLAPSED_S = 0.05  # three words within this are times the engine lost (see _times_collapsed)
# Speech shorter than this between two heard words is the boundary Whisper's approximate times
# leave between them, not a word: a cut may go through it, and it is not counted as discarded.
WORD_SLIVER_S = 0.15


@dataclass(frozen=True)
class StreamingParams:
    min_chunk_s: float = 1.0  # least new audio before the next window
    target_busy: float = 0.75  # engine time per second of audio the pace aims at
    trim_at_s: float = 10.0  # trim at a pause after the committed words once the buffer is longer
    context_s: float = 4.0  # committed speech kept at the buffer start as context for the next window
    final_window_s: float = 8.0  # the last window's length, context included, where a pause allows
    stall_s: float = 16.0  # no agreement this long: commit the last hypothesis' finished segments
    max_window_s: float = 25.0  # hard limit on a window, safely under Whisper's 30 s
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    utterance_silence_s: float = 0.6  # this much silence after speech closes an utterance
    edge_guard_s: float = 0.25  # a word ending this close to its window's end is not agreed on yet
    # Once agree_back_after windows in a row agreed on nothing, a hypothesis may agree with any of
    # the agree_back before it (1: LocalAgreement-2 alone), see on_result.
    agree_back: int = 3
    agree_back_after: int = 2
    cut_silence_s: float = 0.09  # the least VAD silence the buffer is cut at
    speech_pad_s: float = 0.3  # silence kept before speech so its onset is not clipped
    silence_word_pad_s: float = 0.15  # a word is a hallucination if no speech lies within this of it
    prompt_chars: int = 200
    tokens_per_s: float = 8.0  # token limit per window second (speech runs at ~4), so no runaway
    # Silence the encoder hears after a window (None: padded to Whisper's 30 s). The encoder is
    # over half of a window's cost on a CPU and grows with the square of its input; 15 s kept
    # tiny.en's words (2 s lost 22 of 60 words), see tests/benchmarks/bench_live_accuracy.py.
    encoder_pad_s: float | None = 15.0
    vad_aggressiveness: int = vad.DEFAULT_AGGRESSIVENESS

    @classmethod
    def from_config(cls, cfg) -> "StreamingParams":
        s = cfg.streaming
        trim = min(float(s.trim_at_s), 20.0)
        pad = float(s.encoder_pad_s)
        return cls(min_chunk_s=float(s.min_chunk_s), trim_at_s=trim, context_s=min(4.0, trim / 2),
                   encoder_pad_s=None if pad >= WHISPER_WINDOW_S else pad,
                   stall_s=max(trim + 6.0, 12.0),
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
    reason: str  # "agreement", "utterance-end", "final", "segment" or "chunk"

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


def _spelled_alike(a: str, b: str) -> bool:
    """Two spellings of one heard word ("an"/"and", "color"/"colour"), by their normalised text."""
    if a == b:
        return bool(a)
    return bool(a and b) and difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def _times_collapsed(words: list[Word]) -> bool:
    """Three words or more in a row within 50 ms: no one speaks that fast, the engine lost track of
    time (whisper.cpp's token times do this on some windows)."""
    run = 1
    for a, b in zip(words, words[1:]):
        run = run + 1 if b.end_s - a.start_s <= COLLAPSED_S and b.start_s - a.start_s <= COLLAPSED_S else 1
        if run >= 3:
            return True
    return False


def _tail_run(keys: list[str], j: int, tail: list[str]) -> int:
    """How many words of `tail`, from its end, `keys` holds ending at index j."""
    run = 0
    while run < len(tail) and j - run >= 0 and keys[j - run] == tail[-1 - run]:
        run += 1
    return run


def _text_anchor(keys: list[str], tail: list[str]) -> int | None:
    """The index in `keys` where the committed `tail` ends, matched by text only: the last committed
    word with the most of the words before it matching too (three at least, or the whole tail);
    the earliest such place on a tie."""
    need = min(3, len(tail))
    best, best_run = None, 0
    for j, key in enumerate(keys):
        if key != tail[-1]:
            continue
        run = _tail_run(keys, j, tail)
        if run >= need and run > best_run:
            best, best_run = j, run
    return best


def _overlap(a: Word, b: Word) -> float:
    """How much of the shorter of two words the other covers in time (0 to 1)."""
    shared = min(a.end_s, b.end_s) - max(a.start_s, b.start_s)
    return max(0.0, shared) / max(1e-3, min(a.end_s - a.start_s, b.end_s - b.start_s))


def _mid(w: Word) -> float:
    return (w.start_s + w.end_s) / 2


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

    def get(self, until: int | None = None) -> NDArray[np.float32]:
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        out = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [out]  # windows are taken often; keep one contiguous chunk
        return out if until is None else out[:max(0, until - self.start)]


class StreamingSession:
    """See the module docstring. Times are seconds since the first sample fed."""

    def __init__(self, params: StreamingParams | None = None, options: TranscribeOptions | None = None) -> None:
        self.params = params or StreamingParams()
        base = options or TranscribeOptions()
        # Live windows are short and many: one greedy temperature (a fallback cascade can take
        # 20-30 s on one window) and a token limit in proportion to the window, set per window.
        self._options = dataclasses.replace(base, word_timestamps=True, vad_filter=False, temperature=0.0,
                                            single_pass=True, encoder_pad_s=self.params.encoder_pad_s)
        self._audio = _Audio()
        self._vad = vad.FrameVad(self.params.vad_aggressiveness)
        self._flags = bytearray()  # one speech flag per 30 ms frame since the start
        self.committed: list[Word] = []
        self._committed_end = 0.0  # end of the last committed word (engine time, approximate)
        self._heard_until = 0.0  # audio before this has been heard and committed (or was silence)
        self._hyp: list[Word] | None = None  # uncommitted words of the last hypothesis
        self._hyp_segments: list[list[Word]] = []  # the same words, by segment
        self._earlier: list[list[Word]] = []  # the uncommitted words of hypotheses before the last
        self._idle_windows = 0  # windows in a row that agreed on nothing
        self._hyp_window_end = 0.0
        self._close_chunk_at: float | None = None  # the oldest part is to be closed at this time
        self._pending: list[Commit] = []  # commits made outside a result, handed out with the next
        self._loop_cut = False
        self._retries = 0
        self._in_flight: Window | None = None
        self._last_window_end = 0  # absolute sample index where the last window ended
        self._cost_s: float | None = None  # engine time of recent windows (smoothed)
        self._finishing = False
        self.done = False
        # Whether the committed text goes into the prompt. An engine can say no (`live_prompt =
        # False`): whisper.cpp's token times drift by up to a second under a prompt and it skips
        # words the prompt holds, which cost 36 of 157 words on a minute of Genesis.
        self.prompting = True
        # figures
        self.windows = 0
        self.max_window_s = 0.0
        self.dropped_segments = 0
        self.dropped_words = 0
        self.discarded_s = 0.0  # speech that left the buffer unheard; stays 0

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
    def _start_s(self) -> float:
        return self._audio.start / SR

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

    def _unheard_start_s(self) -> float:
        return max(self._start_s, self._heard_until)

    def _last_speech_end_s(self, since_s: float, until_s: float | None = None) -> float | None:
        flags = self._flags_between(since_s, self.duration_s if until_s is None else until_s)
        idx = np.flatnonzero(flags)
        if idx.size == 0:
            return None
        first = int(since_s / vad.FRAME_S)
        return (first + int(idx[-1]) + 1) * vad.FRAME_S

    def _pauses(self, lo_s: float, hi_s: float) -> list[tuple[float, float]]:
        """VAD silences of at least cut_silence_s inside [lo_s, hi_s], as (start, end) times."""
        first = max(0, int(lo_s / vad.FRAME_S))
        flags = self._flags_between(first * vad.FRAME_S, hi_s)
        limit = max(1, vad.frames(self.params.cut_silence_s))
        return [((first + a) * vad.FRAME_S, (first + b) * vad.FRAME_S)
                for a, b, v in vad.runs(flags) if not v and b - a >= limit]

    # -- windows --

    def next_window(self) -> Window | None:
        """The window to send now, or None (a window is out, nothing new, or no speech)."""
        if self._in_flight is not None or self.done:
            return None
        p = self.params
        self._enforce_limit()
        if self._close_chunk_at is not None:
            return self._make_window(closes_at_s=self._close_chunk_at, until_s=self._close_chunk_at)
        since = self._unheard_start_s()
        flags = self._flags_between(since, self.duration_s)
        speech = vad.has_speech(flags)
        if self._finishing:
            if not speech and not self._hyp:
                self.done = True
                return None
            self._trim_for_final()
            return self._make_window(final=True)
        if not speech:
            self._drop_silence()
            return None
        if vad.trailing_silence_s(flags) >= p.utterance_silence_s:
            return self._make_window(closes_at_s=self._last_speech_end_s(since))
        new_s = (self._audio.end - max(self._last_window_end, self._audio.start)) / SR
        if new_s >= self._pace_s():
            return self._make_window()
        return None

    def _pace_s(self) -> float:
        """New audio to wait for: enough that the engine's time per window stays under target_busy
        of the audio it gets (it would fall further and further behind otherwise)."""
        if self._cost_s is None:
            return self.params.min_chunk_s
        return max(self.params.min_chunk_s, self._cost_s / self.params.target_busy)

    def _make_window(self, closes_at_s: float | None = None, final: bool = False,
                     until_s: float | None = None) -> Window:
        if until_s is None and self.buffer_s > self.params.max_window_s:
            until_s = self._start_s + self.params.max_window_s  # the rest waits for the next window
            final = False
        until = None if until_s is None else int(round(until_s * SR))
        audio = self._audio.get(until).copy()  # the buffer keeps changing while the engine works
        start_s = self._start_s
        end_s = start_s + audio.size / SR
        tokens = int(24 + self.params.tokens_per_s * (end_s - start_s))
        options = dataclasses.replace(self._options, initial_prompt=self._prompt(),
                                      max_new_tokens=min(tokens, 220))
        window = Window(self.windows, audio, start_s, end_s, options, closes_at_s, final)
        self.windows += 1
        self.max_window_s = max(self.max_window_s, window.duration_s)
        self._in_flight = window
        self._last_window_end = self._audio.start + audio.size
        return window

    def _prompt(self) -> str | None:
        """The committed text before the buffer: Whisper is told what came before, never what the
        window itself holds (a prompt repeating the audio makes it skip those words)."""
        base = self._options.initial_prompt or ""
        if not self.prompting:
            return base or None
        start = self._start_s
        before = [w for w in self.committed if _mid(w) < start + 0.05]
        committed = join_words(before).strip()
        text = (base + " " + committed).strip() if base else committed
        n = self.params.prompt_chars
        return (text[-n:] if n > 0 else "") or None

    def _drop_silence(self) -> None:
        """Nothing uncommitted is being said: keep only a little silence before the next onset."""
        if self._hyp:
            return
        keep_from = self._audio.end - int(self.params.speech_pad_s * SR)
        if keep_from > self._audio.start:
            self._trim_to(keep_from / SR)

    def _trim_to(self, t_s: float) -> None:
        """Move the buffer start to t_s; speech in between that was never heard is counted."""
        t_s = min(max(t_s, self._start_s), self.duration_s)
        unheard_from = self._unheard_start_s()
        if t_s > unheard_from + vad.FRAME_S:
            flags = self._flags_between(unheard_from, t_s)
            if vad.has_speech(flags, WORD_SLIVER_S):
                lost = float(flags.sum()) * vad.FRAME_S
                self.discarded_s += lost
                log.warning("live: %.2f s of speech left the buffer unheard", lost)
        self._audio.drop_before(int(round(t_s * SR)))
        self._heard_until = max(self._heard_until, t_s)

    def _trim_after_committed(self, tight: bool = False) -> None:
        """Start the buffer at a pause after the committed words and before the next heard word;
        with context_s (unless `tight`), at a pause that still leaves that much committed speech
        before it, which the next window hears again for context (and the text match takes away)."""
        if not self.committed or self._committed_end <= self._start_s:
            return
        last = self.committed[-1]
        nxt = self._hyp[0] if self._hyp else None
        ctx = 0.0 if tight else self.params.context_s
        if ctx > 0:
            pauses = self._pauses(self._start_s, last.start_s - ctx)
            if pauses:
                self._trim_heard(sum(pauses[-1]) / 2)
            elif self.buffer_s > self.params.trim_at_s + 4.0:
                ctx = 0.0  # run-on speech: fall back to cutting right after the committed words
            if ctx > 0:
                return
        # Only a pause right after the committed word will do: speech between it and a later pause
        # may be a word the hypothesis skipped, and it would leave the buffer unheard.
        lo = max(self._start_s, _mid(last))
        hi = min(last.end_s + 0.4, _mid(nxt) if nxt is not None else self.duration_s - 0.1)
        pauses = self._pauses(lo, hi)
        if pauses:
            a, b = pauses[0]
            cut = (a + b) / 2
        elif tight or self.buffer_s > self.params.trim_at_s + 4.0:
            # No pause at all (run-on speech): cut between the words; what the next window hears
            # again of the last word is matched away by text.
            cut = last.end_s if nxt is None else (last.end_s + max(last.end_s, nxt.start_s)) / 2
        else:
            return
        self._trim_heard(cut)

    def _trim_for_final(self) -> None:
        """The last window holds the uncommitted tail and, up to final_window_s in all, the speech
        before it as context, from a pause. The wait after stop is this window's, so it stays flat
        in the length of what was said before. Cut right after the committed words with no pause
        there, tiny.en heard "the morning" for "and the evening and the morning" (the words heard
        again of the committed ones are matched away by text)."""
        p = self.params
        if self.buffer_s <= p.final_window_s or not self.committed:
            return  # all of it is heard (nothing committed: nothing to cut after)
        nxt = self._hyp[0] if self._hyp else None
        hi = min(self._committed_end, _mid(nxt)) if nxt is not None else self._committed_end
        pauses = self._pauses(self.duration_s - p.final_window_s, hi)
        if pauses:
            self._trim_heard(sum(pauses[0]) / 2)
        else:
            self._trim_after_committed(tight=True)

    def _trim_heard(self, cut: float) -> None:
        """Trim at `cut` only if no unheard speech lies before it (word times can be off by a
        second with some engines); else at the last pause before the unheard part, if any."""
        unheard = self._unheard_start_s()
        if cut > unheard + vad.FRAME_S and vad.has_speech(self._flags_between(unheard, cut), WORD_SLIVER_S):
            pauses = self._pauses(self._start_s, unheard)
            cut = sum(pauses[-1]) / 2 if pauses else self._start_s
        if cut > self._start_s:
            self._trim_to(cut)

    def _enforce_limit(self) -> None:
        """Keep every window under max_window_s without throwing anything away."""
        p = self.params
        if self._close_chunk_at is not None or self.buffer_s < p.stall_s:
            return
        # Nothing has agreed for a long time: commit the finished segments of the last hypothesis
        # (a segment that ends well before its window's end is one Whisper has closed itself).
        done = [w for seg in self._hyp_segments[:-1] for w in seg if w.end_s <= self._hyp_window_end - 1.0]
        if done:
            self._pending.append(self._commit(done, "segment"))
            self._hyp = [w for w in self._hyp or [] if _mid(w) > _mid(done[-1])]
            self._hyp_segments = [self._hyp] if self._hyp else []
            self._earlier = []
            log.info("live: %.0f s without agreement; committed %d words of finished segments",
                     self.buffer_s, len(done))
            self._trim_after_committed()
        if self.buffer_s + 0.5 < p.max_window_s:
            return
        # Still too long (the engine commits nothing here): close the oldest part as a chunk of its
        # own, cut at a pause (or between two heard words), and commit whatever is heard in it.
        self._close_chunk_at = self._chunk_cut(self._start_s + p.trim_at_s)
        log.warning("live: %.0f s without a commit; closing %.1f s as a chunk of its own",
                    self.buffer_s, self._close_chunk_at - self._start_s)

    def _chunk_cut(self, target_s: float) -> float:
        """Where to close a chunk near target_s: the latest pause before it, else the gap between
        two words of the last hypothesis nearest to it, else the quietest moment near it."""
        pauses = self._pauses(self._start_s + 2.0, target_s + 2.0)
        if pauses:
            return sum(pauses[-1]) / 2
        hyp = self._hyp or []
        gaps = [(a.end_s + b.start_s) / 2 for a, b in zip(hyp, hyp[1:]) if self._start_s + 2.0 < a.end_s]
        if gaps:
            return min(gaps, key=lambda g: abs(g - target_s))
        return self._quietest(target_s - 1.0, target_s + 1.0)

    def _quietest(self, lo_s: float, hi_s: float, step_s: float = 0.01) -> float:
        """The middle of the quietest 30 ms in [lo_s, hi_s]: between words, where speech runs on."""
        audio = self._audio.get()
        a = max(0, int((lo_s - self._start_s) * SR))
        b = min(audio.size, int((hi_s - self._start_s) * SR))
        hop, width = int(step_s * SR), vad.FRAME_SAMPLES
        if b - a < width + hop:
            return (lo_s + hi_s) / 2
        power = np.convolve(np.square(audio[a:b], dtype=np.float64), np.ones(width), "valid")[::hop]
        return self._start_s + (a + int(np.argmin(power)) * hop + width // 2) / SR

    # -- results --

    def on_result(self, window: Window, segments: list[Segment], engine_s: float | None = None) -> list[Commit]:
        """Process the engine's answer for `window` (which took it `engine_s` seconds, if known);
        returns what it commits (maybe nothing)."""
        if window is not self._in_flight:
            raise ValueError("on_result() for a window that is not out")
        self._in_flight = None
        if engine_s is not None:
            self._cost_s = engine_s if self._cost_s is None else 0.5 * self._cost_s + 0.5 * engine_s
        commits, self._pending = self._pending, []
        by_segment = self._heard(window, segments)
        words = [w for seg in by_segment for w in seg]
        final = window.final
        if self._finishing and not final and window.closes_at_s is None:
            # finish() came while this window was out: if it already holds every word said, it is
            # the last one (the wait after stop is then at most what is left of this call).
            last_speech = self._last_speech_end_s(window.start_s)
            final = last_speech is None or last_speech <= window.end_s - 0.15
        if final or window.closes_at_s is not None:
            commits += self._close(window, words, final)
        else:
            # Stuck on two readings by turns (tiny.en: "remembrance of the average man", "in emblem
            # some damage man", for ten windows): agreeing with the hypothesis before the last will do.
            earlier = self._earlier if self._idle_windows >= self.params.agree_back_after else []
            agreed = max((self._agreement(h, words) for h in [self._hyp, *earlier]), key=len)
            # A word touching the window's end may be only partly heard, twice alike ("coins" for
            # "coined"): it waits for a window that holds all of it.
            while agreed and agreed[-1].end_s > window.end_s - self.params.edge_guard_s:
                agreed.pop()
            if agreed:
                commits.append(self._commit(agreed, "agreement"))
            self._idle_windows = 0 if agreed else self._idle_windows + 1
            # The earlier hypotheses kept are those that began with what was committed now.
            n = len(agreed)
            kept = [h for h in [self._hyp, *self._earlier][:self.params.agree_back - 1] if h and len(h) > n]
            self._earlier = [h[n:] for h in kept if len(self._agreement(h, agreed)) == n]
            self._hyp = words[len(agreed):]
            self._hyp_segments = _regroup(by_segment, len(agreed))
            self._hyp_window_end = window.end_s
            if self.buffer_s > self.params.trim_at_s:
                self._trim_after_committed()
        return [c for c in commits if c.words]

    def _close(self, window: Window, words: list[Word], final: bool) -> list[Commit]:
        """A window that holds a whole utterance (or the last one): commit everything it heard, if
        it heard it all; otherwise hear the rest again."""
        limit = None if final else window.closes_at_s
        # Speech after the pause cannot begin within it: a word starting just past the VAD's end
        # of speech (Whisper's times are that approximate) still belongs to this utterance.
        heard = [w for w in words if limit is None or w.start_s < limit + 0.3]
        until = limit if limit is not None else window.end_s
        speech_end = self._last_speech_end_s(max(window.start_s, self._heard_until), until)
        complete = not self._loop_cut and (
            (not heard and speech_end is None) or (bool(heard) and heard[-1].end_s >= speech_end - 1.0))
        commits = []
        if heard:
            commits.append(self._commit(heard, "final" if final else
                                        ("chunk" if self._close_chunk_at is not None else "utterance-end")))
        self._hyp, self._hyp_segments, self._earlier = None, [], []
        if complete or self._retries >= MAX_CLOSE_RETRIES:
            if not complete:
                log.info("live: %.1f s at %.1f s heard %d times without a full hypothesis; moving on",
                         until - window.start_s, window.start_s, self._retries + 1)
            self._retries = 0
            self._close_chunk_at = None
            if final:
                self.done = True
            else:
                self._heard_until = max(self._heard_until, until)
                # The next utterance starts afresh: measured, keeping this one as its context
                # made Whisper worse across pauses, not better.
                self._trim_to(max(until, self._start_s))
        else:
            # A loop or a hypothesis that stops short: hear the rest again in another window.
            self._retries += 1
            if heard:
                self._trim_after_committed()
        return commits

    def on_error(self, window: Window) -> None:
        """The engine failed on `window`: nothing is committed, the audio stays for the next one."""
        if window is self._in_flight:
            self._in_flight = None

    def _commit(self, words: list[Word], reason: str = "agreement") -> Commit:
        self.committed.extend(words)
        self._committed_end = max(self._committed_end, words[-1].end_s)
        self._heard_until = max(self._heard_until, min(words[-1].end_s, self.duration_s))
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

    def _heard(self, window: Window, segments: list[Segment]) -> list[list[Word]]:
        """The hypothesis as words in session time, by segment: guarded, without what is already
        committed."""
        groups: list[list[Word]] = []
        for seg in segments:
            if not self._segment_ok(seg):
                self.dropped_segments += 1
                continue
            group = []
            for w in _segment_words(seg):
                start = min(max(w.start_s, 0.0), window.duration_s) + window.start_s
                end = min(max(w.end_s, w.start_s, 0.0), window.duration_s) + window.start_s
                if normalize(w.text):
                    group.append(Word(start, max(start, end), w.text, w.probability))
            if group:
                groups.append(group)
        words = [w for g in groups for w in g]
        cut = self._cut_loop(words)
        self._loop_cut = len(cut) < len(words)
        # Words lying in silence are hallucinations, and so is all of a segment that mostly does.
        in_cut = set(map(id, cut))
        kept_ids: set[int] = set()
        for g in groups:
            heard = [w for w in g if id(w) in in_cut and self._has_speech_near(w)]
            if 2 * len(heard) > len([w for w in g if id(w) in in_cut]):
                kept_ids.update(map(id, heard))
        kept = [w for w in cut if id(w) in kept_ids]
        self.dropped_words += len(cut) - len(kept)
        new = self._drop_reheard(kept)
        keep = set(map(id, new))
        return [g2 for g2 in ([w for w in g if id(w) in keep] for g in groups) if g2]

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

    def _drop_reheard(self, words: list[Word]) -> list[Word]:
        """Remove what the window heard again of the committed words. The last committed word is
        looked for by text among the heard words near it in time (within REHEARD_WINDOW_S) and
        after nothing new, the candidate whose preceding words also match the committed ones
        winning; everything up to it goes. With no such anchor, only words lying wholly inside the
        committed stretch go, and the last committed word heard again in another spelling."""
        words = [w for w in words if w.end_s > self._start_s + 0.02]
        if not self.committed or not words:
            return words
        tail = [normalize(w.text) for w in self.committed[-REHEARD_WORDS:]]
        last = self.committed[-1]
        keys = [normalize(w.text) for w in words]
        if _times_collapsed(words):
            # The times say nothing here (whisper.cpp piled 26 words onto one instant and stretched
            # the three before them over 13 s; matched by time, a whole sentence was typed twice):
            # match the committed tail by text alone.
            j = _text_anchor(keys, tail)
            if j is not None:
                return words[j + 1:]
        best, best_score = None, 0.0
        for j, (w, key) in enumerate(zip(words, keys)):
            if w.start_s > self._committed_end + REHEARD_WINDOW_S:
                break
            if key != tail[-1] or abs(_mid(w) - _mid(last)) > REHEARD_WINDOW_S:
                continue
            run = _tail_run(keys, j, tail)
            if any(_mid(h) > last.end_s + 0.1 for h in words[:j - run + 1]):
                continue  # a new word before it: this is the same word said again, not heard again
            score = run - abs(_mid(w) - _mid(last))
            if best is None or score > best_score:
                best, best_score = j, score
        if best is not None:
            return words[best + 1:]
        # No anchor (the last committed word was heard differently): drop the head words that end
        # before the last committed word began. Its end is no bound: Whisper often stretches the
        # last word before a pause across it.
        n = 0
        while n < len(words) and words[n].end_s <= last.start_s + 0.1:
            n += 1
        # The next may be the last committed word itself, spelled a little differently ("And" for
        # a committed "An", at the same time): keeping it would type the word twice.
        if n < len(words) and _overlap(words[n], last) >= 0.5 and _spelled_alike(keys[n], tail[-1]):
            n += 1
        return words[n:]

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


def _regroup(groups: list[list[Word]], skip: int) -> list[list[Word]]:
    """`groups` without their first `skip` words."""
    out = []
    for g in groups:
        if skip >= len(g):
            skip -= len(g)
            continue
        out.append(g[skip:])
        skip = 0
    return out


def _segment_words(seg: Segment) -> tuple[Word, ...]:
    """Word timings, spread evenly over the segment for engines that do not give them."""
    if seg.words:
        return seg.words
    parts = seg.text.split()
    if not parts:
        return ()
    step = (seg.end_s - seg.start_s) / len(parts)
    return tuple(Word(seg.start_s + i * step, seg.start_s + (i + 1) * step, " " + p) for i, p in enumerate(parts))
