"""The live path on real Whisper weights (tiny.en): no word lost or doubled at window boundaries,
nothing thrown away, bounded engine calls; and the other paths held to the same bar.

Recordings are espeak-ng reading the public-domain fixtures (tests/support/speech.py): the
REPORT set, which the policy was not tuned on, with other texts, voices, rates and pause patterns
(run-ons over 30 s, pauses that close utterances, long silences). Figures are measured, not
assumed: offline beam-5 on the whole file is the bar for the same engine on the same audio.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys

import numpy as np
import pytest

from dictate.streaming import StreamingParams, StreamingSession
from dictate.types import TranscribeOptions
from tests.conftest import REPO, dictate_env
from tests.support import live_eval, speech, wer
from tests.support.real_models import tiny_en_ct2
from tests.support.scripted_engine import simulate

pytestmark = pytest.mark.slow

# About a minute of speech each, cut from the REPORT recordings (the whole ones are for the benchmark);
# shorter for whisper.cpp, whose beam search is slower here.
CASES = {"faster-whisper": ["genesis-gb:70", "jargon-rp:60", "bierce-us-slow:60"],
         "whisper.cpp": ["genesis-gb:45", "jargon-rp:40", "bierce-us-slow:40"]}


def run_eval(engine: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "tests.support.live_eval", engine, *CASES[engine]], cwd=REPO,
                          env=dictate_env(), capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module", params=["faster-whisper", "whisper.cpp"])
def live_results(request) -> tuple[str, list[dict]]:
    return request.param, run_eval(request.param)


@pytest.mark.timeout(1800)
def test_live_loses_no_word_and_stays_near_offline(live_results):
    """What holds on real weights today: nothing discarded, windows under Whisper's limit, no more
    words lost than offline loses (plus a few: boundaries cost nothing), no phrase typed twice
    (whisper.cpp's times once collapsed and a sentence came twice), and errors within 1.6 x
    offline + 2 a recording, counted over the three together. One 40 s recording alone swings by
    a third with whisper.cpp: the first window 0.5 s sooner took genesis-gb's from 32 to 21 errors
    (offline 15), all substitutions and insertions on hard words. The goal (1.05 x offline + 1
    word) is not met yet; the benchmark prints where each recording stands."""
    engine, results = live_results
    assert len(results) == len(CASES[engine])
    assert max(r["longest_run_s"] for r in results) > 30  # a run-on stretch past Whisper's window
    report = "\n".join(
        f"{engine} {r['name']}: offline {100 * r['offline_wer']:.1f} % ({r['offline_errors']} errors, "
        f"{r['offline_deletions']} del), live {100 * r['live_wer']:.1f} % ({r['live_errors']}; {r['deletions']} del, "
        f"{r['insertions']} ins), goal {'met' if r['within_bound'] else 'not met'}, "
        f"latency {r['median_latency_s']:.2f}/{r['p90_latency_s']:.2f} s" for r in results)
    print(report)
    for r in results:
        detail = f"{r['name']}\n{report}\n" + wer.alignment(r["reference"], r["live"])
        assert r["discarded_s"] == 0.0, detail  # no audio ever thrown away
        assert r["max_window_s"] <= 25.0, detail  # never near Whisper's 30 s
        assert r["deletions"] <= r["offline_deletions"] + 3, detail  # no words lost at window boundaries
        assert wer.longest_insertion(r["reference"], r["live"]) <= 4, detail  # no phrase typed twice
    live_errors, offline_errors = sum(r["live_errors"] for r in results), sum(r["offline_errors"] for r in results)
    assert live_errors <= 1.6 * offline_errors + 2 * len(results), report


@pytest.fixture(scope="module")
def tiny_engine():
    return live_eval.make_engine("faster-whisper")


@pytest.mark.timeout(900)
def test_silence_only_yields_no_words_through_every_path(tiny_engine, tmp_path):
    """Several minutes of a microphone's noise floor: nothing live, nothing from transcribe, nothing
    in a note."""
    rng = np.random.default_rng(7)
    silence = rng.normal(0.0, 10 ** (-62 / 20), 16000 * 180).astype(np.float32)
    session = StreamingSession(StreamingParams(), TranscribeOptions(language="en"))
    calls = []

    class Counting:
        def transcribe(self, audio, options):
            calls.append(audio.size)
            return tiny_engine.transcribe(audio, options)

    result = simulate(session, silence, Counting())
    assert result.committed == [] and calls == []  # not a single window sent
    wav = live_eval.write_wav(silence, tmp_path / "silence.wav")
    model = str(tiny_en_ct2())
    for args in (["transcribe", str(wav)], ["listen", "--input", str(wav), "--speed", "20"],
                 ["note", "start", "--input", str(wav), "--speed", "20"]):
        proc = subprocess.run([sys.executable, "-m", "dictate", *args, "--model", model, "--language", "en"],
                              cwd=REPO, env=dictate_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert wer.normalize(proc.stdout) == "", (args, proc.stdout)  # the note prints its text too


@pytest.mark.timeout(600)
def test_transcribe_gives_bare_faster_whisper_text(tmp_path):
    """`dictate transcribe` on real weights: the same text as faster-whisper itself, same options;
    batched by default (the file is over 30 s), one window at a time with --batch-size 0."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from dictate.audio.files import decode
    from dictate.batch import BATCH_SIZE

    rec = speech.build(speech.short(speech.REPORT["jargon-rp"], 45))
    wav = live_eval.write_wav(rec.audio, tmp_path / "talk.wav")
    model = str(tiny_en_ct2())
    bare = WhisperModel(model, device="cpu", compute_type="int8")
    for batch in (None, 0):
        argv = [] if batch is None else ["--batch-size", str(batch)]
        proc = subprocess.run([sys.executable, "-m", "dictate", "transcribe", str(wav), "--model", model,
                               "--language", "en", "--beam-size", "5", *argv], cwd=REPO, env=dictate_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        if batch is None:
            segments, _ = BatchedInferencePipeline(bare).transcribe(decode(wav), language="en", beam_size=5,
                                                                     vad_filter=True, batch_size=BATCH_SIZE)
        else:
            segments, _ = bare.transcribe(decode(wav), language="en", beam_size=5, vad_filter=True)
        expected = " ".join(s.text.strip() for s in segments)
        assert " ".join(proc.stdout.split()) == " ".join(expected.split()), batch
        assert wer.score(rec.text, expected).wer < 0.35  # and it is speech, recognised


@pytest.mark.timeout(900)
def test_note_pass_is_as_accurate_as_offline(tmp_path):
    """`dictate note start --input` (spans cut at pauses, beam 5, the text so far as the prompt)
    against bare beam-5 on the whole file, over two recordings (one alone swings by a few words
    either way): no worse, and no "thank you" made up where a span ends in a pause (jargon-rp
    closes every sentence with one)."""
    engine = live_eval.make_engine("faster-whisper")
    model = str(tiny_en_ct2())
    offline_errors = note_errors = 0
    for name in ("jargon-rp", "genesis-gb"):
        rec = speech.build(speech.short(speech.REPORT[name], 60))
        wav = live_eval.write_wav(rec.audio, tmp_path / f"{name}.wav")
        proc = subprocess.run([sys.executable, "-m", "dictate", "note", "start", "--input", str(wav), "--speed",
                               "20", "--model", model, "--language", "en"], cwd=REPO, env=dictate_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        offline = wer.score(rec.text, live_eval.offline_text(engine, rec.audio))
        note = wer.score(rec.text, proc.stdout)
        print(f"{name} 60 s, tiny.en: offline {offline}; note pass {note}")
        assert "thank you" not in wer.normalize(proc.stdout), proc.stdout
        offline_errors += offline.errors
        note_errors += note.errors
    assert note_errors <= 1.02 * offline_errors + 1, (offline_errors, note_errors)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["genesis-gb", "bierce-us-slow"])
def test_a_short_dictation_keeps_every_word_at_any_start_and_pace(tiny_engine, name):
    """One sentence, as voice typing gets it: the first words agree early, and the final window must
    still hear them as context. Cut right after them (no pause there), tiny.en heard "the morning
    with the second day" for "and the evening and the morning were the second day" in 4 of these
    8 starts and paces (and the other sentence lost or misheard its start in 4). The bar is offline
    on the same audio plus one word left out, and four errors in all: partial windows may agree on
    a word split in two ("And over mastering" for "An overmastering", heard so by 7 windows in a
    row), which LocalAgreement commits (three errors), and with the encoder's 15 s of padding the
    last window hears "my friends" for "by friends" in 4 of the 8 runs (2 of 8 at 30 s; a full
    encoder for closing windows was tried, and cost more on longer dictation: 93 errors against 88
    on bierce-us, wait 0.58 s against 0.24 s). The word once committed as "An" and then heard as
    "And" was typed twice ("An And over") until the session learned to drop it."""
    rec = speech.build(speech.short(speech.RECORDINGS[name], 3.0))
    start_s, end_s = rec.spans_s[0]
    said = rec.sentences[0]
    clip = rec.audio[int(start_s * 16000):int((end_s + 0.05) * 16000)]
    failures = []
    for lead_s in (0.0, 0.1, 0.2, 0.3):  # pre-roll before the first word
        audio = np.concatenate([np.zeros(int(lead_s * 16000), np.float32), clip,
                                np.zeros(int(0.45 * 16000), np.float32)])  # trailing capture
        offline = wer.score(said, live_eval.offline_text(tiny_engine, audio))
        for first_s in (0.7, 0.9):  # engine time per window
            session = StreamingSession(StreamingParams(), live_eval.OPTIONS)
            result = simulate(session, audio, tiny_engine, feed_s=0.1, cost=lambda w, c=first_s: c + 0.05 * w)
            text = "".join(w.text for w in result.committed)
            live = wer.score(said, text)
            heard = wer.normalize(text).split()
            doubled = [(a, b) for a, b in zip(heard, heard[1:]) if difflib.SequenceMatcher(None, a, b).ratio() >= 0.75]
            if live.deletions > offline.deletions + 1 or live.errors > offline.errors + 4 or doubled:
                failures.append(f"lead {lead_s} s, engine {first_s} s: {text!r} ({live}; offline {offline}; "
                                f"doubled {doubled})")
    assert not failures, f"{said!r}:\n" + "\n".join(failures)


@pytest.mark.timeout(300)
def test_single_pass_hears_what_transcribe_hears(tiny_engine):
    """Live windows are decoded in one pass (dictate.engines.faster: no second encoder and decoder
    pass over what follows the last word). On real weights it hears the same words as transcribe()
    with the same options, for windows of a second to twenty, prompt and vocabulary included."""
    import dataclasses

    rec = speech.build(speech.short(speech.RECORDINGS["bierce-us-slow"], 25.0))
    base = TranscribeOptions(language="en", beam_size=5, word_timestamps=True, temperature=0.0,
                             initial_prompt="The Devil's Dictionary.", hotwords=("Bierce",), max_new_tokens=200)
    for seconds in (1.0, 3.6, 8.0, 20.0):
        audio = rec.audio[:int(seconds * 16000)]
        two = tiny_engine.transcribe(audio, base)
        one = tiny_engine.transcribe(audio, dataclasses.replace(base, single_pass=True))
        words_two = [w.text for s in two for w in s.words]
        words_one = [w.text for s in one for w in s.words]
        # The one pass may only leave out what the second pass found after its last word (Whisper
        # sometimes ends a window early: the session hears that part again in its next window).
        assert words_one == words_two[:len(words_one)] and 2 * len(words_one) >= len(words_two), (
            seconds, words_one, words_two)
        assert words_one, seconds
        for a, b in zip(one, two):
            assert (a.start_s, a.end_s) == pytest.approx((b.start_s, b.end_s), abs=0.01)
            assert a.avg_logprob == pytest.approx(b.avg_logprob, abs=1e-4)


def _words(segments) -> list[str]:
    return [w.text for s in segments for w in s.words]


@pytest.mark.timeout(300)
def test_a_window_plus_15_s_of_silence_hears_what_30_s_hears(tiny_engine, monkeypatch):
    """Live windows reach the encoder with encoder_pad_s of silence after them, not padded to 30 s:
    its self-attention costs the square of its input (15 s encode in a quarter of the time of 30 s).
    On real weights the window and 15 s hear the words the full 30 s hears. (With 2 s of silence
    tiny.en left out 22 of 60 words: the shorter input is not free.)"""
    import dataclasses

    rec = speech.build(speech.short(speech.REPORT["genesis-gb"], 25.0))
    base = TranscribeOptions(language="en", beam_size=5, word_timestamps=True, temperature=0.0,
                             single_pass=True, max_new_tokens=200)
    model = tiny_engine._model
    encode = model.encode
    frames: list[int] = []
    monkeypatch.setattr(model, "encode", lambda features, *a, **k: frames.append(features.shape[-1])
                        or encode(features, *a, **k))
    for seconds in (3.0, 8.0, 15.0):
        audio = rec.audio[:int(seconds * 16000)]
        frames.clear()
        full = _words(tiny_engine.transcribe(audio, base))
        short = _words(tiny_engine.transcribe(audio, dataclasses.replace(base, encoder_pad_s=15.0)))
        assert frames == [3000, min(3000, int(seconds * 100) + 1500)], seconds  # 10 ms a frame
        assert full, seconds
        differ = wer.score(" ".join(full), " ".join(short)).errors
        assert differ <= max(1, 0.05 * len(full)), (seconds, full, short)

