"""The files window under QT_QPA_PLATFORM=offscreen, over the real queue (dictate.filejobs) and
real files decoded by PyAV; scripted engines here (exact text, controllable pace). Real weights
and a real cross-process drop under Xvfb are in tests/test_files_window_x11.py."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication  # noqa: E402

from dictate.config import Config  # noqa: E402
from dictate.engines import check_audio  # noqa: E402
from dictate.filejobs import FileQueue, JobOptions, JobState  # noqa: E402
from dictate.storage import History  # noqa: E402
from dictate.types import SAMPLE_RATE_HZ, Segment  # noqa: E402
from dictate.ui.files_window import FilesWindow, result_text  # noqa: E402
from dictate.worker import EngineWorker  # noqa: E402
from tests.support.media import tone, write_audio  # noqa: E402
from tests.support.tone_engine import ToneEngine  # noqa: E402

RATE = 16_000


class PacedEngine:
    """One segment per second of audio, `pace_s` of wall time each: a long file in miniature."""

    name = "paced"

    def __init__(self, pace_s: float) -> None:
        self.pace_s = pace_s
        self.segments_made = 0
        self.running = threading.Event()

    def transcribe_iter(self, audio, options):
        audio = check_audio(audio)
        self.running.set()
        try:
            for i in range(int(audio.size // SAMPLE_RATE_HZ)):
                time.sleep(self.pace_s)
                self.segments_made += 1
                yield Segment(float(i), float(i + 1), f" second {i}")
        finally:
            self.running.clear()

    def transcribe(self, audio, options):
        return list(self.transcribe_iter(audio, options))


@pytest.fixture
def cfg() -> Config:
    from dictate import config

    return config.load()


def files_window(qtbot, cfg, engine, **kw) -> FilesWindow:
    worker = EngineWorker(engine)
    window = FilesWindow(cfg, worker=worker, engine_name="tone", model="scripted", **kw)
    qtbot.addWidget(window)
    window.show()
    window._test_worker = worker
    return window


def close(window: FilesWindow) -> None:
    window.shutdown()
    window._test_worker.close(timeout_s=2)


def shown(qtbot, window: FilesWindow, job, label: str) -> None:
    """Wait until the table shows `job` as `label` (the queue's updates reach the GUI posted)."""
    def there() -> bool:
        return job.id in window._rows and window.table.item(window.row_of(job), 1).text() == label
    qtbot.waitUntil(there, timeout=30_000)


def drop(window: FilesWindow, paths: list[Path]) -> None:
    """A drop as Qt delivers it from another application: file URLs in the mime data."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert event.isAccepted()


def test_dropped_files_and_folders_are_transcribed_named_apart_exported_and_kept(qtbot, cfg, tmp_path):
    src = tmp_path / "recordings"
    (src / "more").mkdir(parents=True)
    write_audio(src / "speech.mp3", np.concatenate([tone(440, 1.0, RATE), tone(660, 1.0, RATE)]), RATE)
    write_audio(src / "speech.flac", tone(550, 1.0, RATE), RATE)
    write_audio(src / "more" / "take.ogg", tone(880, 1.0, RATE), RATE)
    (src / "more" / "readme.txt").write_text("not audio: a folder's other files are left alone")
    window = files_window(qtbot, cfg, ToneEngine())
    try:
        for fmt, on in {"txt": True, "srt": True, "vtt": True, "json": True}.items():
            window.format_boxes[fmt].setChecked(on)
        out = tmp_path / "out"
        window.set_output_dir(out)
        out.mkdir()
        drop(window, [src / "speech.mp3", src / "speech.flac", src / "more"])
        jobs = window.queue.jobs
        assert [j.path.name for j in jobs] == ["speech.mp3", "speech.flac", "take.ogg"]
        qtbot.waitUntil(lambda: all(j.finished for j in jobs), timeout=30_000)
        assert [j.state for j in jobs] == [JobState.DONE] * 3, [j.error for j in jobs]
        for j in jobs:
            shown(qtbot, window, j, "Done")
        assert sorted(p.name for p in out.iterdir()) == sorted(
            f"{n}.{f}" for n in ("speech.mp3", "speech.flac", "take") for f in ("txt", "srt", "vtt", "json"))
        assert (out / "speech.mp3.txt").read_text() == "440 Hz 660 Hz\n"
        assert (out / "speech.flac.txt").read_text() == "550 Hz\n"
        assert json.loads((out / "take.json").read_text())["engine"] == "tone"
        # The results view: the selected file's segments with their times.
        window.table.selectRow(window.row_of(jobs[0]))
        assert window.results.toPlainText() == "[0:00:00.0 → 0:00:01.0] 440 Hz\n[0:00:01.0 → 0:00:02.0] 660 Hz"
        assert window.table.cellWidget(0, 2).value() == 1000
        window.copy_button.click()
        assert QGuiApplication.clipboard().text() == "440 Hz 660 Hz"
        assert window.open_output_folder().toLocalFile() == str(out)
        exported = window.export(jobs[0], "vtt", tmp_path / "mine.vtt")
        assert exported.read_text().startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n440 Hz")
        # Every result is in the history, with its outputs.
        entries = History(cfg.paths.history_db).list(kind="file")
        assert sorted(e.title for e in entries) == ["speech.flac", "speech.mp3", "take.ogg"]
        assert {e.engine for e in entries} == {"tone"}
        assert History(cfg.paths.history_db).search("660")[0].title == "speech.mp3"
    finally:
        close(window)


def test_progress_comes_from_segments_with_elapsed_and_eta(qtbot, cfg, tmp_path):
    wav = write_audio(tmp_path / "long.wav", tone(440, 8.0, RATE), RATE)
    engine = PacedEngine(0.15)
    window = files_window(qtbot, cfg, engine)
    try:
        [job] = window.add_paths([wav])
        fractions, etas = [], []

        def seen():
            if job.state == JobState.TRANSCRIBING and 0 < job.fraction < 1:
                fractions.append(job.fraction)
                etas.append(job.eta_s())
            return job.finished

        qtbot.waitUntil(seen, timeout=30_000)
        assert job.state == JobState.DONE
        assert len(set(fractions)) >= 3, fractions  # moved on segment by segment, not all at the end
        assert all(e is not None and e >= 0 for e in etas)
        shown(qtbot, window, job, "Done")
        assert window.table.item(0, 3).text() not in ("", "–")
    finally:
        close(window)


def test_cancel_mid_file_ends_the_job_at_once_and_writes_nothing(qtbot, cfg, tmp_path):
    long = write_audio(tmp_path / "long.wav", tone(440, 60.0, RATE), RATE)
    short = write_audio(tmp_path / "next.wav", tone(440, 2.0, RATE), RATE)
    engine = PacedEngine(0.3)  # 18 s of engine time for the long file
    window = files_window(qtbot, cfg, engine)
    try:
        window.format_boxes["json"].setChecked(True)
        long_job, next_job = window.add_paths([long, short])
        qtbot.waitUntil(lambda: long_job.done_s >= 2, timeout=30_000)
        t0 = time.monotonic()
        window.table.cellWidget(window.row_of(long_job), 5).click()
        qtbot.waitUntil(lambda: long_job.finished, timeout=30_000)
        took = time.monotonic() - t0
        print(f"cancel took {took * 1000:.0f} ms")
        assert long_job.state == JobState.CANCELLED
        assert long_job.fraction < 0.5  # it did not just finish
        shown(qtbot, window, long_job, "Cancelled")
        assert not window.table.cellWidget(window.row_of(long_job), 5).isEnabled()
        # The next file runs once the engine has dropped the cancelled one.
        qtbot.waitUntil(lambda: next_job.finished, timeout=30_000)
        assert next_job.state == JobState.DONE
        assert engine.segments_made < 30, "the engine kept working on the cancelled file"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "next.json", "next.srt", "next.txt",
                                                              "next.wav"]
        assert [e.title for e in History(cfg.paths.history_db).list(kind="file")] == ["next.wav"]
    finally:
        close(window)


def test_a_queued_job_cancelled_never_runs(cfg, tmp_path):
    engine = PacedEngine(0.1)
    worker = EngineWorker(engine)
    q = FileQueue(cfg, worker=worker, engine_name="paced", model="x")
    try:
        first, second = q.add([write_audio(tmp_path / f"{n}.wav", tone(440, 3.0, RATE), RATE) for n in "ab"])
        q.cancel(second)
        assert second.state == JobState.CANCELLED
        assert q.wait(30)
        assert first.state == JobState.DONE and not (tmp_path / "b.txt").exists()
    finally:
        q.close()
        worker.close(2)


def test_options_per_job_and_an_existing_file_is_kept(qtbot, cfg, tmp_path):
    wav = write_audio(tmp_path / "a.wav", tone(440, 1.0, RATE), RATE)
    (tmp_path / "a.txt").write_text("mine\n")
    window = files_window(qtbot, cfg, ToneEngine())
    try:
        assert window.options() == JobOptions(engine="tone", model="scripted", language=None, formats=("txt", "srt"))
        [kept] = window.add_paths([wav])
        qtbot.waitUntil(lambda: kept.finished, timeout=30_000)
        assert kept.state == JobState.FAILED
        shown(qtbot, window, kept, "Failed")
        assert "a.txt exists; not replaced (tick “Replace existing files” to replace it)" in kept.error
        assert (tmp_path / "a.txt").read_text() == "mine\n" and not (tmp_path / "a.srt").exists()
        # The row is updated from the queue's thread through the event loop: wait for it.
        qtbot.waitUntil(lambda: window.table.item(0, 1) is not None and window.table.item(0, 1).toolTip() == kept.error,
                        timeout=10_000)
        # Another engine for the next file (a module:attribute one), another language, replace on.
        window.engine_box.setCurrentText("tests.support.tone_engine:make")
        window.language_edit.setText("de")
        window.format_boxes["srt"].setChecked(False)
        window.overwrite_box.setChecked(True)
        opts = window.options()
        assert (opts.engine, opts.language, opts.formats, opts.overwrite) == (
            "tests.support.tone_engine:make", "de", ("txt",), True)
        [again] = window.add_paths([wav])
        qtbot.waitUntil(lambda: again.finished, timeout=30_000)
        assert again.state == JobState.DONE, again.error
        assert (tmp_path / "a.txt").read_text() == "440 Hz\n"
        assert again.result.engine == "tests.support.tone_engine:make"
        assert window._test_worker.jobs_run == 0  # that engine ran on a worker of its own
        assert History(cfg.paths.history_db).get(again.history_id).options["language"] == "de"
    finally:
        close(window)


def test_results_view_text():
    from dictate.batch import FileTranscript
    from dictate.filejobs import FileJob

    job = FileJob(1, Path("x.wav"), JobOptions(), "x")
    job.result = FileTranscript(Path("x.wav"), (Segment(61.25, 3725.0, " Hello there. "), Segment(1, 2, "  ")),
                                4000.0, 0.0, 0.0)
    assert result_text(job) == "[0:01:01.2 → 1:02:05.0] Hello there."


def test_the_tray_menu_opens_the_files_and_history_windows_on_the_apps_worker(qtbot, cfg, tmp_path):
    from types import SimpleNamespace

    from dictate.ui.app import DesktopApp, Options
    from dictate.ui.tray import Actions, ShellState, menu_entries

    app = DesktopApp(cfg, Options())
    worker = EngineWorker(ToneEngine())
    app.controller = SimpleNamespace(worker=worker, engine_name="tone", model_name="scripted")
    actions = Actions(bridge=None, notes_dir=tmp_path)
    assert [e.key for e in menu_entries(ShellState(), actions)][-2:] == ["notes-folder", "quit"]  # not wired: absent
    actions.open_files, actions.open_history = app.open_files_window, app.open_history_window
    entries = {e.key: e for e in menu_entries(ShellState(), actions)}
    assert (entries["files"].label, entries["history"].label) == ("Transcribe files…", "History…")
    try:
        entries["files"].run()
        files = app.files_window
        qtbot.addWidget(files)
        assert files.isVisible()
        [job] = files.add_paths([write_audio(tmp_path / "a.wav", tone(660, 1.0, RATE), RATE)])
        qtbot.waitUntil(lambda: job.finished, timeout=30_000)
        assert job.state == JobState.DONE and worker.jobs_run == 1  # the app's own worker did it
        entries["files"].run()
        assert app.files_window is files  # one window for the app
        entries["history"].run()
        qtbot.addWidget(app.history_window)
        assert app.history_window.isVisible()
        assert [app.history_window.table.item(r, 2).text() for r in range(app.history_window.table.rowCount())] == [
            "a.wav"]
    finally:
        app.files_window.shutdown()
        worker.close(2)


class Counting:
    """The real engine, counting the segments it decodes (to see it drop a cancelled job)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.segments = 0

    def transcribe_iter(self, audio, options):
        for seg in self.engine.transcribe_iter(audio, options):
            self.segments += 1
            yield seg

    def transcribe(self, audio, options):
        return list(self.transcribe_iter(audio, options))


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["sequential", "batched"])
def test_cancel_in_the_middle_of_a_long_file_with_real_weights(cfg, tmp_path, pipeline):
    """tiny.en on a long file: cancelled after its first segments, the job ends at once, writes
    nothing, and the engine drops the rest (the next file is transcribed right after). One window
    at a time on 45 s of prose; batched (the default) on six minutes, several batches of windows."""
    from dictate.engines.faster import FasterWhisperEngine
    from dictate.filejobs import file_options
    from tests.support.real_models import tiny_en_ct2
    from tests.support.speech import REPORT, build, short
    from tests.support.spoken_files import SENTENCES, spoken_file
    from tests.support.wer import score

    if pipeline == "sequential":
        audio = build(short(REPORT["jargon-rp"], 45.0)).audio
        options = dataclasses.replace(file_options(cfg), batch_size=0)
    else:
        audio = np.concatenate([build(REPORT["jargon-rp"]).audio, build(REPORT["genesis-gb"]).audio])
        options = file_options(cfg)
        assert options.batch_size > 1
    engine = Counting(FasterWhisperEngine(tiny_en_ct2(), device="cpu", compute_type="int8", threads=2))
    worker = EngineWorker(engine)
    q = FileQueue(cfg, worker=worker, engine_name="faster-whisper", model="tiny.en", base_options=options)
    try:
        long_job, next_job = q.add([write_audio(tmp_path / "long.flac", audio, RATE),
                                    spoken_file(tmp_path / "next.mp3", SENTENCES[1])],
                                   JobOptions(formats=("txt", "srt", "vtt", "json"), language="en"))
        deadline = time.monotonic() + 120
        while long_job.done_s <= 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert 0 < long_job.fraction < 0.7, long_job
        seen_at_cancel = engine.segments
        t0 = time.monotonic()
        q.cancel(long_job)
        while not long_job.finished and time.monotonic() < deadline:
            time.sleep(0.005)
        print(f"cancelled {time.monotonic() - t0:.3f} s after the click, at {long_job.done_s:.1f} of "
              f"{long_job.total_s:.1f} s")
        assert long_job.state == JobState.CANCELLED and long_job.result is None
        assert q.wait(120) and next_job.state == JobState.DONE, next_job.error
        assert score(SENTENCES[1], next_job.result.text).wer <= 0.25, next_job.result.text
        # After the cancel the worker stops at the next segment it sees (the rest of the file is never decoded).
        assert engine.segments - seen_at_cancel - len(next_job.result.segments) <= 3, "the cancelled file went on"
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
            "long.flac", "next.json", "next.mp3", "next.srt", "next.txt", "next.vtt"]  # nothing of the long one
        assert [e.title for e in History(cfg.paths.history_db).list(kind="file")] == ["next.mp3"]
    finally:
        q.close()
        worker.close(5)


def test_a_fallback_chain_records_the_engine_that_served(cfg, tmp_path):
    from dictate.engines.fallback import Candidate, EngineUnavailableError, FallbackEngine
    from dictate.loader import LoadingEngine

    class Down:
        def transcribe(self, audio, options):
            raise EngineUnavailableError("server unreachable")

    chain = FallbackEngine([Candidate("remote", Down), Candidate("local-tones", ToneEngine)])
    worker = EngineWorker(LoadingEngine(lambda: chain).start())
    q = FileQueue(cfg, worker=worker, engine_name="remote", model="whisper-1")
    try:
        [job] = q.add([write_audio(tmp_path / "a.wav", tone(440, 1.0, RATE), RATE)], JobOptions(formats=("json",)))
        assert q.wait(30) and job.state == JobState.DONE, job.error
        assert json.loads((tmp_path / "a.json").read_text())["engine"] == "local-tones"
        assert History(cfg.paths.history_db).get(job.history_id).engine == "local-tones"
    finally:
        q.close()
        worker.close(2)


def test_dictate_files_without_a_desktop_says_what_to_do_in_one_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO, dictate_env

    env = dictate_env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "dictate", "files", str(tmp_path)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "for the files window" in run.stderr
    assert "`dictate transcribe FILE`" in run.stderr and "Traceback" not in run.stderr


def test_each_finished_file_is_announced_once_with_its_outcome(qtbot, cfg, tmp_path):
    """The app notifies the desktop from this hook: once per file, done or failed, on the GUI thread."""
    gui = threading.current_thread()
    seen: list[tuple[str, str, bool]] = []
    window = files_window(qtbot, cfg, ToneEngine(),
                          on_finished=lambda job: seen.append((job.path.name, job.state,
                                                               threading.current_thread() is gui)))
    try:
        good = write_audio(tmp_path / "good.wav", tone(440, 1.0, RATE), RATE)
        bad = tmp_path / "bad.wav"
        bad.write_bytes(b"not audio at all")
        jobs = window.add_paths([good, bad])
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=30_000)
        qtbot.wait(300)  # later updates of a finished job announce nothing more
        assert sorted(seen) == [("bad.wav", JobState.FAILED, True), ("good.wav", JobState.DONE, True)]
        assert all(job.finished for job in jobs)
    finally:
        close(window)
