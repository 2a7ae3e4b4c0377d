"""StreamingSession driven by the scripted engine (words wholly inside a window are recognised, cut
ones garbled, silence hallucinated on): zero words lost, doubled or inserted across many window
boundaries; then the threaded loop with a deliberately slow engine: no sample lost."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dictate.audio import vad
from dictate.audio.capture import FileSource
from dictate.live import LiveTranscriber
from dictate.streaming import StreamingParams, StreamingSession, compression_ratio
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word
from dictate.worker import EngineWorker, JobCancelled, Priority
from tests.support.scripted_engine import ScriptedEngine, build_script, simulate, word_burst

SR = SAMPLE_RATE_HZ

# 45 s of run-on speech (no pause over 100 ms), then utterances between silences where the engine
# hallucinates.
PIECES = [("silence", 1.0), ("speech", 45.0), ("silence", 3.0), ("speech", 8.0), ("silence", 4.0),
          ("speech", 5.0), ("silence", 0.8)]

COSTS = {
    "fast": lambda window_s: 0.05,
    "whisper-like": lambda window_s: 0.4 + 0.05 * window_s,  # mostly a fixed cost per window
    "slow": lambda window_s: 1.5 + 0.05 * window_s,
    "rtf-0.9": lambda window_s: 0.9 * window_s,
}


def texts(words) -> list[str]:
    return [w.text.strip() for w in words]


def assert_same_words(got: list[Word], script) -> None:
    """Exactly the spoken words, in order, each once, at the right time."""
    assert texts(got) == script.texts
    for heard, said in zip(got, script.words):
        assert abs(heard.start_s - said.start_s) < 0.05 and abs(heard.end_s - said.end_s) < 0.05


@pytest.mark.parametrize("cost", sorted(COSTS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_word_lost_doubled_or_inserted(cost, seed):
    script = build_script(PIECES, seed=seed)
    engine = ScriptedEngine(script)
    session = StreamingSession(StreamingParams())
    result = simulate(session, script.audio, engine, cost=COSTS[cost])
    assert_same_words(result.committed, script)
    assert engine.cut_words >= 3 if cost == "rtf-0.9" else engine.cut_words >= 10  # boundaries inside words
    assert result.windows >= (5 if cost == "rtf-0.9" else 10)
    assert result.max_window_s < 25.5  # never near Whisper's 30 s
    assert engine.silent_calls == 0  # windows without speech are not sent


@pytest.mark.parametrize("seed", [0, 1])
def test_repetition_loops_are_not_committed(seed):
    script = build_script(PIECES, seed=seed)
    engine = ScriptedEngine(script, loop_every=3)  # every third call loops
    session = StreamingSession(StreamingParams())
    result = simulate(session, script.audio, engine, cost=COSTS["whisper-like"])
    assert_same_words(result.committed, script)


def test_hallucinations_on_silence_are_dropped():
    # long silences inside windows: the engine "hears" phrases there, some flagged, some confident
    script = build_script([("speech", 3.0), ("silence", 2.5), ("speech", 3.0), ("silence", 2.5),
                           ("speech", 2.0), ("silence", 1.5)], seed=5)
    engine = ScriptedEngine(script)
    params = StreamingParams(utterance_silence_s=3.0)  # keep the silences inside windows
    session = StreamingSession(params)
    result = simulate(session, script.audio, engine, cost=COSTS["slow"])
    assert_same_words(result.committed, script)
    assert session.dropped_segments + session.dropped_words > 0  # there was something to drop


def test_windows_are_trimmed_between_words_and_stay_short():
    script = build_script([("speech", 70.0), ("silence", 1.0)], seed=7)
    engine = ScriptedEngine(script)
    session = StreamingSession(StreamingParams(trim_at_s=20.0))
    result = simulate(session, script.audio, engine, cost=COSTS["whisper-like"])
    assert_same_words(result.committed, script)
    starts = [a for a, _ in engine.windows]
    assert max(b - a for a, b in engine.windows) < 25.5
    assert max(starts) > 40  # the buffer moved on
    # no window starts inside a word (beyond the engine's tolerance)
    for a in starts:
        assert not any(w.start_s + 0.04 < a < w.end_s - 0.04 for w in script.words), a


@pytest.mark.parametrize("trailing_s", [0.4, 0.0])
def test_final_latency_does_not_grow_with_the_utterance(trailing_s):
    """The wait after stop: only the uncommitted tail is left. Stop 0.4 s after the last word (push
    to talk released), or in the middle of a word (then at most the call already running is
    waited for, on top of the tail)."""
    latencies = {}
    for seconds in (5.0, 60.0):
        waits = []
        for k in range(6):  # stops at several points of the engine's cycle: the wait is a mean
            pieces = [("speech", seconds + 0.23 * k)] + ([("silence", trailing_s)] if trailing_s else [])
            script = build_script(pieces, seed=3)
            engine = ScriptedEngine(script)
            session = StreamingSession(StreamingParams())
            result = simulate(session, script.audio, engine, cost=COSTS["whisper-like"])
            if trailing_s:
                assert_same_words(result.committed, script)
            else:  # the last word may be cut by the stop itself
                assert texts(result.committed)[:-1] == script.texts[:len(result.committed) - 1]
            # at most the call already running, then the uncommitted tail
            assert result.final_latency_s <= COSTS["whisper-like"](session.params.max_window_s) + 2.0 * result.tail_engine_s
            waits.append(result.final_latency_s)
        latencies[seconds] = sum(waits) / len(waits)
    assert latencies[60.0] <= 1.3 * latencies[5.0] + 0.05


def test_prompt_is_the_committed_text():
    script = build_script([("speech", 100.0), ("silence", 1.0)], seed=2)
    engine = ScriptedEngine(script)
    session = StreamingSession(StreamingParams(), TranscribeOptions(language="en"))
    limit = session.params.prompt_chars
    prompts = []
    real = engine.transcribe

    def spy(audio, options):
        # The prompt is what was committed before the window, never what the window holds.
        start = session.duration_s - audio.size / SR if not session.finishing else None
        before = "".join(w.text for w in session.committed if start is None or (w.start_s + w.end_s) / 2 < start + 0.05)
        prompts.append((options.initial_prompt, before.strip()))
        assert options.word_timestamps and options.language == "en"
        assert options.temperature == 0.0 and 24 <= options.max_new_tokens <= 220  # bounded calls
        return real(audio, options)

    engine.transcribe = spy
    simulate(session, script.audio, engine)
    assert all((p or "") == c[-limit:] for p, c in prompts)
    assert any(len(c) > limit for _, c in prompts)  # the limit was reached, and held


# -- guards as pure functions ---------------------------------------------------------------------

def _words(*names, start=0.0, step=0.3):
    return [Word(start + i * step, start + i * step + 0.25, " " + n) for i, n in enumerate(names)]


def test_loop_guard_keeps_the_first_occurrence():
    cut = StreamingSession._cut_loop(_words("we", "went", "to", "the", "the", "the", "the", "the"))
    assert texts(cut) == ["we", "went", "to", "the"]
    cut = StreamingSession._cut_loop(_words("a", "b", "and", "then", "and", "then", "and", "then", "x"))
    assert texts(cut) == ["a", "b", "and", "then"]
    ok = _words("very", "very", "good", "and", "then", "and", "then")  # legit repeats stay
    assert StreamingSession._cut_loop(ok) == ok


def test_segment_guards():
    s = StreamingSession(StreamingParams())
    w = tuple(_words("hello"))
    assert s._segment_ok(Segment(0, 1, " hello", w, no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.1))
    assert not s._segment_ok(Segment(0, 1, " hello", w, no_speech_prob=0.9, avg_logprob=-1.5, compression_ratio=1.1))
    assert s._segment_ok(Segment(0, 1, " hello", w, no_speech_prob=0.9, avg_logprob=-0.2, compression_ratio=1.1))
    looped = " and so on" * 30
    assert compression_ratio(looped) > 2.4
    assert not s._segment_ok(Segment(0, 1, looped, w))  # ratio computed when the engine gives none


def test_silence_is_not_sent_and_buffer_stays_small():
    session = StreamingSession(StreamingParams())
    calls = []
    for _ in range(300):  # 30 s of silence
        session.feed(np.zeros(1600, dtype=np.float32))
        w = session.next_window()
        if w is not None:
            calls.append(w)
    assert calls == []
    assert session.buffer_s < 1.0
    session.finish()
    assert session.next_window() is None and session.done


# -- EngineWorker ----------------------------------------------------------------------------------

class _Recorder:
    def __init__(self, delay_s=0.0):
        self.seen = []
        self.delay_s = delay_s
        self.gate = threading.Event()

    def transcribe(self, audio, options):
        self.gate.wait(5)
        self.seen.append(options.initial_prompt)
        time.sleep(self.delay_s)
        if options.initial_prompt == "boom":
            raise RuntimeError("engine exploded")
        return [Segment(0, 1, options.initial_prompt or "")]


def test_worker_runs_live_before_batch_and_cancels():
    eng = _Recorder()
    audio = np.zeros(160, dtype=np.float32)
    with EngineWorker(eng) as worker:
        first = worker.submit(audio, TranscribeOptions(initial_prompt="first"), priority=Priority.BATCH)
        time.sleep(0.05)  # the engine thread is now blocked inside "first"
        batch = worker.submit(audio, TranscribeOptions(initial_prompt="batch"), priority=Priority.BATCH)
        cancelled = worker.submit(audio, TranscribeOptions(initial_prompt="never"), priority=Priority.LIVE)
        live = worker.submit(audio, TranscribeOptions(initial_prompt="live"), priority=Priority.LIVE)
        cancelled.cancel()
        done = []
        bad = worker.submit(audio, TranscribeOptions(initial_prompt="boom"), on_done=done.append)
        eng.gate.set()
        assert live.result(5)[0].text == "live"
        assert batch.result(5)[0].text == "batch"
        with pytest.raises(JobCancelled):
            cancelled.result(5)
        from dictate.errors import EngineError

        with pytest.raises(EngineError, match="exploded"):
            bad.result(5)
        assert done == [bad]
        assert first.result(5)[0].text == "first"
    assert eng.seen == ["first", "live", "boom", "batch"]
    assert worker._thread.name == "dictate-engine" and not worker._thread.is_alive()


# -- the threaded loop: a slow engine never stalls capture -----------------------------------------

@pytest.mark.slow
def test_slow_engine_loses_no_sample():
    """Four minutes of dictation with pauses, played at 8x through the ring, against an engine
    with a real-time factor of 0.9 (in wall time: it is as slow as the played audio is fast)."""
    speed = 8.0
    pieces = [("silence", 0.5)] + [("speech", 25.0), ("silence", 1.5)] * 9
    script = build_script(pieces, seed=11)
    engine = ScriptedEngine(script, rtf=0.9 / speed)
    source = FileSource(script.audio, speed=speed, ring_capacity_s=120.0)
    session = StreamingSession(StreamingParams())
    committed = []
    with EngineWorker(engine) as worker:
        stats = LiveTranscriber(source, worker, session, lambda c: committed.extend(c.words)).run()
    assert stats.samples_lost == 0 and stats.overflows == 0
    assert stats.samples_captured == script.audio.size
    assert stats.duration_s == pytest.approx(script.duration_s)
    assert stats.max_window_s < 25.5
    assert stats.engine_busy_s > 0.5 * 0.9 * script.duration_s / speed  # the engine really was busy
    assert texts(committed) == script.texts


def test_discarded_counts_unheard_speech_that_could_hold_a_word():
    """A cut through the sliver Whisper's times leave between two heard words (under
    WORD_SLIVER_S) loses no word and is not counted; unheard speech longer than that is."""
    from dictate.streaming import WORD_SLIVER_S

    rng = np.random.default_rng(3)
    session = StreamingSession(StreamingParams())
    session.feed((0.1 * rng.standard_normal(16000 * 2)).astype(np.float32))  # VAD hears it all as speech
    assert vad.has_speech(session._flags_between(0.0, 2.0), 1.5)
    session._trim_to(0.09)
    assert session.discarded_s == 0.0 and WORD_SLIVER_S > 0.09
    session._trim_to(0.6)
    assert session.discarded_s == pytest.approx(0.51, abs=0.031)


def test_windows_carry_the_configured_encoder_padding():
    """[streaming] encoder_pad_s reaches every window's options; 30 (Whisper's whole window) means
    no shortening at all."""
    from dictate.config import Config

    cfg = Config()
    assert StreamingParams.from_config(cfg).encoder_pad_s == cfg.streaming.encoder_pad_s == 15.0
    cfg.streaming.encoder_pad_s = 30.0
    assert StreamingParams.from_config(cfg).encoder_pad_s is None
    for pad in (12.0, None):
        session = StreamingSession(StreamingParams(encoder_pad_s=pad), TranscribeOptions(language="en"))
        session.feed(np.full(SR * 3, 0.3, np.float32) * np.sin(np.arange(SR * 3) * 0.2).astype(np.float32))
        session.finish()
        window = session.next_window()
        assert window is not None and window.options.encoder_pad_s == pad and window.options.single_pass


def test_the_last_committed_word_heard_again_in_another_spelling_is_not_typed_twice():
    """A committed "An", heard as "And" at the same time by the next window (seen on real tiny.en:
    "An And over mastering"), is the same word; a word spelled alike that follows it is new."""
    session = StreamingSession(StreamingParams())
    session.committed = [Word(0.0, 0.40, " An")]
    session._committed_end = 0.40
    again = [Word(0.0, 0.42, " And"), Word(0.42, 0.60, " over"), Word(0.60, 1.06, " mastering")]
    assert texts(session._drop_reheard(again)) == ["over", "mastering"]
    session.committed = [Word(0.8, 1.0, " the")]
    session._committed_end = 1.0
    after = [Word(1.02, 1.25, " they"), Word(1.25, 1.5, " went")]
    assert texts(session._drop_reheard(after)) == ["they", "went"]


def test_a_hypothesis_whose_times_collapsed_is_matched_to_the_committed_words_by_text():
    """whisper.cpp (real tiny.en) once answered a closing window with "The" over 2.7 s, "state's"
    over 6.5 s and the 26 words after them all at one instant: matched by time, the sentence was
    committed twice. By text, only what follows the committed words is new."""
    session = StreamingSession(StreamingParams())
    said = "the state's magnanimity to most offenders who would be too expensive to punish or rather great".split()
    session.committed = _words(*said, start=7.4)
    session._committed_end = session.committed[-1].end_s
    heard = [Word(7.4, 10.1, " The"), Word(10.2, 16.7, " state's"), Word(16.8, 20.5, " magnanimity")]
    heard += [Word(20.51, 20.51, " " + w) for w in said[3:] + ["functionary", "already", "slippery"]]
    assert texts(session._drop_reheard(heard)) == ["functionary", "already", "slippery"]
    # With times that hold, a phrase said again later is new, however well its text matches.
    again = _words("or", "rather", "great", "again", start=session._committed_end + 3.0)
    assert texts(session._drop_reheard(again)) == ["or", "rather", "great", "again"]


def _voiced(seconds: float) -> np.ndarray:
    """A harmonic tone, which the VAD takes for speech throughout."""
    return word_burst("voiced", int(SR * seconds), np.random.default_rng(0))


def _hear(session: StreamingSession, said: str, new_s: float = 1.5) -> list[str]:
    """Feed `new_s` more seconds, send the next window, and answer it with `said` spread over the
    window's first seconds (well clear of its end); returns what it committed."""
    session.feed(_voiced(new_s))
    window = session.next_window()
    assert window is not None
    names = said.split()
    words = tuple(Word(0.2 + 0.3 * i, 0.45 + 0.3 * i, " " + w) for i, w in enumerate(names))
    segment = Segment(words[0].start_s, words[-1].end_s, "".join(w.text for w in words), words=words)
    return [w for c in session.on_result(window, [segment], 0.5) for w in texts(c.words)]


def test_alternating_hypotheses_commit_what_two_of_the_last_three_agree_on():
    """Real tiny.en on Bierce's prose answered 'remembrance of the average man' and 'in emblem
    some damage man' by turns for ten windows: consecutive hypotheses never agreed, and the words
    came 12-16 s late. Once two windows in a row agreed on nothing, a hypothesis may agree with the one
    before the last as well; a word only one hypothesis holds is never committed."""
    a = "remembrance of the average man than he has"
    b = "in emblem some damage man than he has"
    classic = StreamingSession(StreamingParams(agree_back=1))
    assert [_hear(classic, s) for s in (a, b, a, b)] == [[], [], [], []]

    session = StreamingSession(StreamingParams())
    assert [_hear(session, s) for s in (a, b)] == [[], []]
    assert _hear(session, a) == a.split()

    distinct = StreamingSession(StreamingParams())
    heard = [_hear(distinct, s) for s in (a, b, "a blend of some damage man", "remembering the average")]
    assert heard == [[], [], [], []]
