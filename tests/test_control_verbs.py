"""`dictate toggle|start|stop|cancel` and `dictate note start|stop|status`, run as real processes
against a real IPC server (in this process, with a stand-in for the controller), and without one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dictate import ipc
from dictate.config import Paths
from tests.conftest import REPO, dictate_env
from tests.support.ipc_app import FakeApp

NOT_RUNNING = "dictate is not running (start it with `dictate`)\n"


def run_dictate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], capture_output=True, text=True,
                          env=dictate_env(), cwd=REPO, timeout=timeout)


@pytest.fixture
def app():
    fake = FakeApp()
    with ipc.IpcServer(Paths.default(), fake):
        yield fake


def test_verbs_reach_the_running_app_and_print_its_answer(app) -> None:
    steps = [("toggle", 0, "listening\n", ""), ("start", 1, "", "dictate: already listening\n"),
             ("stop", 0, "stopped\n", ""), ("start", 0, "listening\n", ""), ("cancel", 0, "cancelled\n", ""),
             ("cancel", 1, "", "dictate: not listening\n"), ("toggle", 0, "listening\n", ""),
             ("toggle", 0, "stopped\n", "")]
    for verb, code, out, errs in steps:
        res = run_dictate(verb)
        assert (verb, res.returncode, res.stdout, res.stderr) == (verb, code, out, errs)
    assert app.commands() == [s[0] for s in steps]


@pytest.mark.parametrize("verb", ["toggle", "start", "stop", "cancel"])
def test_verbs_without_the_app_say_how_to_start_it(verb) -> None:
    res = run_dictate(verb)
    assert (res.returncode, res.stdout, res.stderr) == (1, "", NOT_RUNNING)


def test_verbs_do_not_wait_forever_on_a_stuck_app() -> None:
    stuck = FakeApp(delay_s=3.0)
    with ipc.IpcServer(Paths.default(), stuck):
        res = run_dictate("toggle", "--timeout", "0.5")
    assert res.returncode == 1 and res.stderr == "dictate: dictate did not answer within 0.5 s\n"


def test_note_verbs_go_to_the_running_app(app) -> None:
    status = run_dictate("note", "status")
    assert (status.returncode, status.stdout.splitlines()[0]) == (0, "not recording")
    start = run_dictate("note", "start")
    assert (start.returncode, start.stdout) == (0, "recording note 20240101-120000\n"), start.stderr
    again = run_dictate("note", "start")
    assert again.returncode == 1 and "already being recorded" in again.stderr
    status = run_dictate("note", "status")
    assert status.stdout.splitlines()[0] == "recording 20240101-120000 (0:05 so far, in the app)"
    stop = run_dictate("note", "stop")
    assert (stop.returncode, stop.stdout) == (0, "stopping note 20240101-120000\n")
    none = run_dictate("note", "stop")
    assert none.returncode == 1 and none.stderr == "dictate: no note is being recorded\n"
    assert app.commands() == ["note-status", "note-start", "note-start", "note-status", "note-stop", "note-stop"]


def test_note_start_with_local_options_while_the_app_runs_says_what_to_do(app) -> None:
    res = run_dictate("note", "start", "--duration", "5", "--engine", "faster-whisper")
    assert res.returncode == 1
    assert res.stderr == ("dictate: the running app records notes with its own settings: drop --duration, "
                          "--engine, or add --here to record in this process\n")
    assert "note-start" not in app.commands()


def test_note_verbs_without_the_app_work_as_before() -> None:
    status = run_dictate("note", "status")
    assert (status.returncode, status.stdout) == (0, "not recording\n")
    stop = run_dictate("note", "stop")
    assert stop.returncode == 1 and stop.stderr == "dictate: no note is being recorded\n"


def test_note_start_from_a_file_records_here_even_while_the_app_runs(app, tmp_path) -> None:
    from tests.support.media import tone, write_audio

    wav = write_audio(tmp_path / "tone.wav", tone(440, 3.0, 16_000), 16_000)
    res = run_dictate("note", "start", "--input", str(wav), "--speed", "10", "--engine",
                      "tests.support.tone_engine:make")
    assert res.returncode == 0, res.stderr
    assert "440 Hz" in res.stdout and "note saved in" in res.stderr
    assert app.commands() == []  # the app was not asked


# --- the real controller behind the socket -------------------------------------------------------------

def test_dictate_toggle_drives_the_real_controller_and_every_word_is_typed() -> None:
    from dictate import config as config_mod
    from dictate.controller import State
    from tests.support.scripted_engine import build_script
    from tests.test_controller import make, sample, wait_until

    cfg = config_mod.load()
    cfg.streaming.min_chunk_s = 0.5
    script = build_script([("silence", 1.5), ("speech", 4.0), ("silence", 1.5)], seed=5)
    ctl, src, sink, events, _ = make(cfg, script)
    ctl.start()
    events.wait_state(State.IDLE)
    answers = []

    def verb(name: str):
        def call() -> None:  # runs on the playing thread: the audio waits for the verb's answer
            res = run_dictate(name)
            answers.append((name, res.returncode, res.stdout, res.stderr))
        return call

    try:
        with ipc.IpcServer(cfg.paths, ctl.handle_ipc):
            src.play(script.audio, speed=2.0, marks={sample(1.0): verb("toggle"),
                                                     sample(script.words[-1].end_s + 0.2): verb("toggle")})
            events.wait_state(State.IDLE, after=events.states.index(State.LISTENING))
            wait_until(lambda: sink.text.endswith(" "), 30)
            verb("status")()
            verb("quit")()
            wait_until(lambda: ctl.handle_ipc({"command": "stop"})["message"] == "dictate is not running", 30)
    finally:
        ctl.shutdown()
    assert answers == [("toggle", 0, "listening\n", ""), ("toggle", 0, "transcribing\n", ""),
                       ("status", 0, "idle\n", ""), ("quit", 0, "quitting\n", "")]
    assert sink.text == " ".join(script.texts) + " "
