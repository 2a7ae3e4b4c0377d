"""Long notes end to end: segmentation at pauses (espeak-ng speech), the pass through both real
engines, crash recovery after SIGKILL, full disk, engine and model failures, a lost microphone,
and the CLI (start/stop/status/recover/list/retranscribe)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dictate import config as config_mod
from dictate.audio.capture import FileSource
from dictate.audio.files import decode
from dictate.audio.journal import HEADER_BYTES, JournalFullError, JournalState, find_unfinished
from dictate.audio.segmenter import Segmenter, SegmenterParams, Span, segment
from dictate.errors import EngineError
from dictate.longform import SpanResult, SpanTranscriber, build_paragraphs
from dictate.notes import NoteJob, NoteRecorder, recover, retranscribe
from dictate.storage import History, NoteStatus, NoteStore
from dictate.types import Segment, TranscribeOptions, Word
from tests.conftest import REPO, dictate_env
from tests.support.pulse import quantize, virtual_mic  # noqa: F401  (fixture)
from tests.support.tone_engine import ToneEngine

R = 16_000
TONE = "tests.support.tone_engine:make"
SENTENCES = ["the meeting starts at nine in the morning", "please bring the quarterly numbers with you",
             "we will talk about the budget for next year", "lunch is served in the small room downstairs",
             "afterwards there is a short walk by the river", "send me your questions before friday"]


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def utterances(tmp_path_factory) -> list[np.ndarray]:
    """espeak-ng speech, trimmed to its audible part."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt install espeak-ng)")
    out = []
    folder = tmp_path_factory.mktemp("speech")
    for i, text in enumerate(SENTENCES):
        wav = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
        audio = decode(wav)
        loud = np.flatnonzero(np.abs(audio) > 1e-3)
        out.append(audio[loud[0]:loud[-1] + 1])
    return out


def compose(utterances: list[np.ndarray], pauses_s: list[float]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Speech with known pauses; returns the audio and each utterance's [start, end) in samples."""
    parts, truth, pos = [], [], 0
    for i, pause in enumerate(pauses_s):
        u = utterances[i % len(utterances)]
        truth.append((pos, pos + u.size))
        parts += [u, np.zeros(int(pause * R), np.float32)]
        pos += u.size + int(pause * R)
    return np.concatenate(parts), truth


@pytest.fixture(scope="module")
def speech_wav(utterances, tmp_path_factory) -> tuple[Path, np.ndarray]:
    audio, _ = compose(utterances, [0.7, 2.5, 0.8, 3.0, 0.6, 1.0] * 2)
    path = tmp_path_factory.mktemp("wav") / "speech.wav"
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(R)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path, decode(path)


def cfg() -> config_mod.Config:
    return config_mod.load()


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], capture_output=True, text=True,
                          env=dictate_env(), cwd=REPO, timeout=timeout)


# --- segmentation -----------------------------------------------------------------------------------

def assert_no_cut_inside_speech(spans: list[Span], truth: list[tuple[int, int]], total: int) -> None:
    for span in spans:
        for edge in (span.start, span.end):
            inside = [(a, b) for a, b in truth if a < edge < b]
            assert not inside, f"cut at {edge / R:.2f} s inside speech {[(a / R, b / R) for a, b in inside]}"
    for a, b in truth:  # and no speech is left out
        assert any(s.start <= a and b <= s.end for s in spans), f"speech {a / R:.2f}-{b / R:.2f} s not in one span"
    assert all(s.end - s.start <= 28 * R for s in spans)
    assert all(x.end <= y.start for x, y in zip(spans, spans[1:]))
    assert spans[-1].end <= total


def test_segmentation_cuts_only_in_pauses(utterances) -> None:
    pauses = [0.6, 2.0, 0.7, 3.0, 0.8, 1.0] * 4
    audio, truth = compose(utterances, pauses)
    spans = segment(audio)
    assert_no_cut_inside_speech(spans, truth, audio.size)
    assert 4 <= len(spans) <= 12 and not any(s.forced for s in spans)
    # spans end at the long pauses (once they hold a few seconds), so text is ready early
    long_ends = [b for (a, b), p in zip(truth, pauses) if p >= 2.0]
    assert sum(any(abs(s.speech_end - e) < 0.3 * R for e in long_ends) for s in spans) >= len(spans) - 2


@pytest.mark.parametrize("pause_s", [0.8, 0.55, 0.35])
def test_only_short_pauses_still_cut_in_a_pause_before_30_s(utterances, pause_s) -> None:
    """Shorter than split_pause_s: spans grow to target_s, and beyond that end at the last pause
    (a pause the VAD sees as shorter than pause_s is still the quietest place: the forced cut)."""
    audio, truth = compose(utterances, [pause_s] * 18)
    spans = segment(audio)
    assert len(spans) >= 2
    assert_no_cut_inside_speech(spans, truth, audio.size)
    if pause_s >= 0.8:
        assert not any(s.forced for s in spans)


def test_segmentation_does_not_depend_on_chunk_sizes(utterances) -> None:
    audio, _ = compose(utterances, [0.7, 2.5, 0.6, 1.8] * 3)
    expected = segment(audio)
    seg = Segmenter()
    rng = np.random.default_rng(3)
    got, pos = [], 0
    while pos < audio.size:
        n = int(rng.integers(1, 9000))
        got += seg.feed(audio[pos:pos + n])
        pos += n
    assert got + seg.finish() == expected


def test_continuous_speech_is_cut_at_its_quietest_gap(utterances) -> None:
    audio, truth = compose(utterances, [0.1] * 14)  # no pause a listener would call one
    spans = segment(audio)
    assert len(spans) >= 2 and spans[0].forced
    assert all(s.end - s.start <= 28 * R for s in spans)
    cut = spans[0].end
    assert not any(a + 0.05 * R < cut < b - 0.05 * R for a, b in truth) or \
        np.abs(audio[cut - 80:cut + 80]).max() < np.abs(audio).max() * 0.5


def test_silence_gives_no_spans_and_bounded_memory() -> None:
    seg = Segmenter()
    for _ in range(200):  # 100 s of silence
        assert seg.feed(np.zeros(R // 2, np.float32)) == []
    assert seg._flags.size < 100
    assert seg.finish() == []


def test_params_are_checked() -> None:
    with pytest.raises(ValueError):
        SegmenterParams(pause_s=0.2, pad_s=0.2)


# --- paragraphs and the punctuation hook --------------------------------------------------------------

def _result(start_s: float, end_s: float, words: list[tuple[float, float, str]]) -> SpanResult:
    ws = tuple(Word(a, b, t) for a, b, t in words)
    seg = Segment(ws[0].start_s, ws[-1].end_s, "".join(w.text for w in ws), ws)
    span = Span(int(start_s * R), int(end_s * R), int(start_s * R), int(end_s * R))
    return SpanResult(span, (seg,), 0.1, 0.0, 0.1)


def test_paragraphs_at_long_pauses_between_and_inside_spans() -> None:
    results = [
        _result(0.0, 3.0, [(0.0, 0.5, " One"), (0.6, 1.0, " two."), (2.5, 3.0, " Three")]),
        _result(3.8, 6.0, [(3.8, 5.0, " four.")]),
        _result(9.0, 10.0, [(9.0, 9.5, " Five.")]),
    ]
    paras = build_paragraphs(results, pause_s=2.0)
    assert [p.text for p in paras] == ["One two. Three four.", "Five."]
    assert paras[0].start_s == 0.0 and paras[1].end_s == 9.5
    # inside a span the engine's word times decide (1.5 s), between spans the VAD's (0.8 s)
    assert [p.text for p in build_paragraphs(results, pause_s=1.2)] == ["One two.", "Three four.", "Five."]
    assert [p.text for p in build_paragraphs(results, pause_s=0.7)] == ["One two.", "Three", "four.", "Five."]


def test_punctuation_hook_gets_words_and_failure_falls_back() -> None:
    results = [_result(0.0, 2.0, [(0.0, 0.5, " hello"), (0.6, 1.0, " world")])]
    seen = []

    def punctuate(words):
        seen.append([w.text for w in words])
        return "Hello, world!"

    assert [p.text for p in build_paragraphs(results, 2.0, punctuate)] == ["Hello, world!"]
    assert seen == [[" hello", " world"]]
    notices: list[str] = []

    def broken(words):
        raise RuntimeError("bad weights")

    assert [p.text for p in build_paragraphs(results, 2.0, broken, notices)] == ["hello world"]
    assert notices and "punctuation model failed" in notices[0]


def test_a_thank_you_made_up_in_a_pause_is_dropped_and_the_speech_kept() -> None:
    """Whisper's made-up "Thank you." after a span's last word (figures as tiny.en gave them):
    no-speech 0.85 and unsure words go; the speech before it, and a short real word, stay."""
    said = Segment(0.0, 3.2, " see cracking.", (Word(0.0, 1.0, " see", 0.8), Word(1.0, 3.2, " cracking.", 0.9)),
                   no_speech_prob=0.03, avg_logprob=-0.18)
    made_up = Segment(3.2, 3.34, " Thank you.", (Word(3.2, 3.34, " Thank", 0.02), Word(3.34, 3.34, " you.", 0.98)),
                      no_speech_prob=0.85, avg_logprob=-0.71)
    short_real = Segment(3.4, 3.8, " Yes.", (Word(3.4, 3.8, " Yes.", 0.9),), no_speech_prob=0.65, avg_logprob=-0.3)
    tr = SpanTranscriber(lambda audio, options: [said, made_up, short_real], TranscribeOptions())
    result = tr(Span(16000, 16000 + 4 * 16000, 16000, 16000 + 4 * 16000), np.zeros(4 * 16000, np.float32))
    assert [s.text for s in result.segments] == [" see cracking.", " Yes."]
    assert tr.context == " see cracking. Yes."  # the next span's prompt holds no made-up words either


# --- the recorder in-process (scripted engine for exact text) ---------------------------------------

def make_recorder(audio, engine_factory, *, background=True, speed=20.0, journal_kwargs=None):
    c = cfg()
    job = NoteJob.from_config(c, engine="tone", model="tone", source="test")
    return NoteRecorder(FileSource(audio, speed=speed), c, job, engine_factory, background=background,
                        journal_kwargs=journal_kwargs)


@pytest.mark.parametrize("background", [True, False])
def test_note_round_trip(speech_wav, background) -> None:
    path, audio = speech_wav
    rec = make_recorder(audio, ToneEngine, background=background)
    rec.record()
    out = rec.finish()
    assert out.status == NoteStatus.READY and out.error is None and out.note is not None
    assert out.text.count("Hz") >= 10 and "\n\n" in out.text  # paragraphs at the 2.5 s / 3 s pauses
    note = NoteStore(cfg().notes_dir).get(out.note.id)
    assert note.meta["options"]["beam_size"] == 5 and note.meta["options"]["word_timestamps"] is True
    assert note.meta["duration_s"] == pytest.approx(audio.size / R, abs=1e-3)
    assert {"stop_to_ready_s", "remainder_audio_s", "remainder_engine_s", "engine_s"} <= set(note.meta["timings"])
    stored = decode(note.audio_path)
    assert stored.size == audio.size
    np.testing.assert_allclose(stored, audio, atol=1.5 / 32768)  # 16-bit FLAC of the exact recording
    assert note.segments() and note.text().startswith("# ")
    entry = History(cfg().paths.history_db).get(out.note.id)
    assert entry.text == out.text and entry.kind == "note" and Path(entry.audio_path) == note.audio_path
    assert not out.journal.exists() and find_unfinished(cfg().paths.journal_dir) == []
    if background:  # most spans were done while recording
        assert out.timings["remainder_audio_s"] < audio.size / R / 2


class FailingEngine:
    def transcribe(self, audio, options):
        raise EngineError("faster-whisper failed: out of memory")


def test_engine_failure_leaves_a_pending_note_that_can_be_retried(speech_wav) -> None:
    _, audio = speech_wav
    rec = make_recorder(audio[:20 * R], FailingEngine)
    rec.record()
    out = rec.finish()
    assert out.status == NoteStatus.PENDING and "out of memory" in out.error
    note = out.note
    assert decode(note.audio_path).size == 20 * R
    assert "not transcribed yet" in note.text()
    history = History(cfg().paths.history_db)
    assert [e.id for e in history.list(status=NoteStatus.PENDING)] == [note.id]
    entry = retranscribe(cfg(), note.id, ToneEngine, engine="tone")
    assert entry.status == NoteStatus.READY and "Hz" in entry.text
    assert NoteStore(cfg().notes_dir).get(note.id).status == NoteStatus.READY


def test_background_pass_through_the_engine_worker(speech_wav) -> None:
    from dictate.notes import WorkerEngine
    from dictate.worker import EngineWorker

    _, audio = speech_wav
    with EngineWorker(ToneEngine()) as worker:
        rec = make_recorder(audio[:25 * R], lambda: WorkerEngine(worker))
        rec.record()
        out = rec.finish()
        assert worker.jobs_run >= 2
    assert out.status == NoteStatus.READY and "Hz" in out.text


def test_personal_punctuation_model_is_applied_when_enabled(speech_wav, tmp_path) -> None:
    from dictate.punctuation import read_corpus, train_model

    fixtures = REPO / "tests" / "fixtures" / "punctuation"
    model = train_model(read_corpus([fixtures / "bierce_devils_dictionary.txt"]).paragraphs)
    model_path = tmp_path / "punct.model"
    model.save(model_path)
    c = cfg()
    c.punctuation.enabled = True
    c.punctuation.model_path = str(model_path)
    config_mod.save(c)
    _, audio = speech_wav
    rec = make_recorder(audio[:25 * R], ToneEngine)
    rec.record()
    out = rec.finish()
    assert out.note.meta["punctuation"] == "personal" and not out.notices
    # the scripted engine writes no punctuation at all ("380 Hz 400 Hz"): marks come from the model
    assert any(ch in out.text for ch in ".,;:!?")
    c.punctuation.model_path = str(tmp_path / "missing.model")
    config_mod.save(c)
    rec = make_recorder(audio[:10 * R], ToneEngine)
    rec.record()
    out = rec.finish()
    assert out.status == NoteStatus.READY and out.note.meta["punctuation"] == "whisper"
    assert any("punctuation model" in n for n in out.notices)


def test_disk_full_stops_recording_with_an_intact_journal(speech_wav) -> None:
    import errno
    import os

    _, audio = speech_wav
    room = {"n": HEADER_BYTES + 5 * R * 4}

    def write(fd, data):
        if room["n"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = min(len(data), room["n"])
        room["n"] -= n
        return os.write(fd, bytes(data[:n]))

    rec = make_recorder(audio, ToneEngine, journal_kwargs={"write": write})
    with pytest.raises(JournalFullError, match="disk is full"):
        rec.record()
    [j] = find_unfinished(cfg().paths.journal_dir)
    assert j.state == JournalState.INTERRUPTED
    assert j.repair() == 5 * R
    np.testing.assert_array_equal(j.read(), audio[:5 * R])
    out = recover(cfg(), j, ToneEngine, engine="tone")
    assert out.status == NoteStatus.READY and decode(out.note.audio_path).size == 5 * R


# --- CLI: real subprocesses ------------------------------------------------------------------------------

def test_sigkill_then_recover_is_sample_exact(speech_wav) -> None:
    path, audio = speech_wav
    speed = 4.0
    proc = subprocess.Popen([sys.executable, "-m", "dictate", "note", "start", "--input", str(path), "--speed",
                             str(speed), "--engine", TONE], env=dictate_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    root = cfg().paths.journal_dir
    deadline = time.monotonic() + 30
    size0 = 0
    while time.monotonic() < deadline:
        parts = list(root.glob("*/part-*.wav"))
        if parts and (size0 := (parts[0].stat().st_size - HEADER_BYTES) // 4) >= 8 * R:
            break
        time.sleep(0.05)
    t0 = time.monotonic()
    time.sleep(0.5)
    status = run_cli("note", "status")
    assert status.stdout.startswith("recording ")
    proc.send_signal(signal.SIGKILL)
    t1 = time.monotonic()
    proc.wait(10)
    assert run_cli("note", "status").stdout.startswith("not recording")
    listing = run_cli("note", "recover")
    assert listing.returncode == 0 and "--transcribe" in listing.stderr
    [j] = find_unfinished(root)
    n = j.repair()
    # nothing that was appended is lost, and at most about a second of capture was in flight
    assert n >= size0 + (t1 - t0 - 1.0) * speed * R
    np.testing.assert_array_equal(j.read(), audio[:n])
    done = run_cli("note", "recover", "--transcribe", "--engine", TONE)
    assert done.returncode == 0, done.stderr
    assert "Hz" in done.stdout
    [note] = NoteStore(cfg().notes_dir).list()
    assert note.id == j.id and decode(note.audio_path).size == n
    assert "recovered from an interrupted recording" in note.text()
    assert find_unfinished(root) == []


def test_stop_from_another_shell(speech_wav) -> None:
    path, _ = speech_wav
    proc = subprocess.Popen([sys.executable, "-m", "dictate", "note", "start", "--input", str(path), "--speed", "2",
                             "--engine", TONE], env=dictate_env(), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not run_cli("note", "status").stdout.startswith("recording"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(3)
    stop = run_cli("note", "stop")
    assert stop.returncode == 0, stop.stderr
    out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs
    assert "Hz" in out and "note saved in" in errs
    again = run_cli("note", "stop")
    assert again.returncode == 1 and "no note is being recorded" in again.stderr
    listed = run_cli("note", "list", "--json")
    [entry] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["status"] == "ready" and 3 <= entry["duration_s"] < 60
    found = run_cli("note", "list", "--search", "Hz")
    assert entry["id"] in found.stdout


def test_missing_model_keeps_the_audio_as_a_pending_note(speech_wav, ct2_model) -> None:
    path, audio = speech_wav
    res = run_cli("note", "start", "--input", str(path), "--speed", "20", "--duration", "12",
                  "--engine", "faster-whisper", "--model", "/nonexistent/model-dir")
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert "not transcribed" in last and "retranscribe" in last
    assert "Traceback" not in res.stderr
    pending = run_cli("note", "list", "--pending")
    [line] = pending.stdout.splitlines()
    note_id = line.split()[0]
    note = NoteStore(cfg().notes_dir).get(note_id)
    assert decode(note.audio_path).size == 12 * R
    retry = run_cli("note", "retranscribe", note_id, "--engine", "faster-whisper", "--model", str(ct2_model),
                    "--max-new-tokens", "6")
    assert retry.returncode == 0, retry.stderr
    assert NoteStore(cfg().notes_dir).get(note_id).status == NoteStatus.READY


@pytest.mark.slow
@pytest.mark.parametrize("engine,model_fixture", [("faster-whisper", "ct2_model"), ("whisper.cpp", "ggml_model")])
def test_batch_pass_through_real_engines(speech_wav, engine, model_fixture, request) -> None:
    path, audio = speech_wav
    model = request.getfixturevalue(model_fixture)
    res = run_cli("note", "start", "--input", str(path), "--speed", "16", "--duration", "40", "--engine", engine,
                  "--model", str(model), "--max-new-tokens", "6", timeout=300)
    assert res.returncode == 0, res.stderr
    [note] = NoteStore(cfg().notes_dir).list()
    meta = note.meta
    assert meta["status"] == "ready" and meta["engine"] == engine and meta["options"]["beam_size"] == 5
    assert meta["spans"] >= 2 and meta["timings"]["engine_s"] > 0
    segs = note.segments()
    assert segs and all(0 <= s.start_s <= s.end_s <= 40.0 + 1e-6 for s in segs)
    assert any(s.words for s in segs)  # word timestamps were asked for and came back
    assert res.stdout.strip() == History(cfg().paths.history_db).get(note.id).text
    assert decode(note.audio_path).size == 40 * R


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_really_full_disk_ends_the_cli_with_one_line_and_a_recoverable_journal(speech_wav, tmp_path) -> None:
    path, audio = speech_wav
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "512k"):
        pytest.fail("this test needs to mount a small tmpfs (run as root, or in a container with CAP_SYS_ADMIN)")
    try:
        env = dictate_env({"DICTATE_STATE_DIR": str(small)})
        res = subprocess.run([sys.executable, "-m", "dictate", "note", "start", "--input", str(path), "--speed", "20",
                              "--engine", TONE], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert res.returncode == 1
        last = res.stderr.strip().splitlines()[-1]
        assert "disk is full" in last and "dictate note recover" in last and "Traceback" not in res.stderr
        [j] = find_unfinished(small / "recordings")
        n = j.repair()
        assert 3 * R < n < audio.size
        np.testing.assert_array_equal(j.read(), audio[:n])
        done = subprocess.run([sys.executable, "-m", "dictate", "note", "recover", "--transcribe", "--engine", TONE],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert find_unfinished(small / "recordings") == []
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_microphone_lost_mid_note_keeps_what_was_captured(virtual_mic, utterances) -> None:  # noqa: F811
    from dictate.audio.capture import Microphone

    c = cfg()
    job = NoteJob.from_config(c, engine="tone", model="tone", source="microphone")
    rec = NoteRecorder(Microphone("", preroll_s=0.0), c, job, ToneEngine, background=True)
    speech = np.concatenate([utterances[0], np.zeros(R // 2, np.float32), utterances[1]])
    import threading

    t = threading.Thread(target=rec.record, name="test-recorder")
    t.start()
    # A second of silence first: the recorder opens the microphone before the speech arrives.
    handle = virtual_mic.play(np.concatenate([np.zeros(R, np.float32), speech]))
    assert handle.wait(30)
    time.sleep(0.5)
    virtual_mic.stop()  # the device goes away
    t.join(30)
    assert not t.is_alive()
    out = rec.finish()
    assert out.note is not None and out.status == NoteStatus.READY
    assert any("microphone" in n and "kept" in n for n in out.notices)
    stored = decode(out.note.audio_path)
    assert stored.size >= speech.size  # everything spoken before the device went away is in the note

    # The note holds the speech itself, sample for sample once aligned (the virtual microphone is
    # bit-exact; where the playback lands in the note depends on when the stream opened).
    n = 1 << int(np.ceil(np.log2(stored.size + speech.size)))
    xcorr = np.fft.irfft(np.fft.rfft(stored, n) * np.conj(np.fft.rfft(speech, n)), n)
    lag = int(np.argmax(xcorr[:stored.size - speech.size + 1]))
    match = float(np.corrcoef(stored[lag:lag + speech.size], speech)[0, 1])
    assert match > 0.99, (lag, match)
    assert "microphone" in out.note.text()
