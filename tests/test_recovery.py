"""Crash recovery in the real app on Xvfb: a long note is started from the tray (over IPC, as the
menu does), speech plays into the virtual microphone, the app is killed with SIGKILL; started
again, it offers the unfinished recording, Return recovers it into a note with its text and
audio, the tray balloon says the note is ready, and clicking it opens the note window."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from dictate.audio.files import decode
from dictate.audio.journal import find_unfinished
from dictate.config import Paths
from dictate.storage import History, NoteStatus
from tests.support.pulse import virtual_mic  # noqa: F401 - fixture
from tests.support.scripted_engine import build_script
from tests.support.xserver import wait_for, xserver, xserver_with_tray  # noqa: F401 - fixtures
from tests.test_app import TONE, App, around, keep_screenshot

pytestmark = pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("trayer") or not shutil.which("xdotool"),
                                reason="needs Xvfb, trayer and xdotool (packaging/install-system-deps.sh --test)")


@pytest.mark.slow
def test_killed_during_a_note_the_next_start_offers_and_recovers_it(xserver_with_tray, virtual_mic, isolated_dirs,
                                                                     tmp_path):
    x = xserver_with_tray
    cfg = isolated_dirs / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[output]\nbackend = "stdout"\n[ui]\nsounds = false\n')
    env = {**virtual_mic.env, "DBUS_SESSION_BUS_ADDRESS": ""}  # the tray's balloons, not a desktop server
    paths = Paths.default()

    first = App(x, tmp_path / "first", "--engine", TONE, env=env)
    try:
        first.tray_icon()
        first.wait_state("idle")
        assert first.send("note-start")["ok"]
        first.wait_state("note-recording", 10)
        script = build_script([("speech", 4.0), ("silence", 0.5)], seed=11)
        assert virtual_mic.play(script.audio).wait(20)
        time.sleep(2.5)  # the journal is made durable every second or so
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    journals = find_unfinished(paths.journal_dir)
    assert len(journals) == 1
    recorded_s, recorded_samples = journals[0].duration_s, journals[0].num_samples
    assert recorded_s >= script.duration_s - 0.5
    assert not History(paths.history_db).list(kind="note")

    second = App(x, tmp_path / "second", "--engine", TONE, env=env)
    try:
        icon = second.tray_icon()
        dialog = wait_for(lambda: x.search("--onlyvisible", "--name", "unfinished recordings"), 20, 0.1,
                          "the recovery dialog")[0]
        assert "ui: recovery offered for 1 recording(s)" in second.log
        time.sleep(0.5)
        keep_screenshot(x.screenshot(tmp_path / "recovery.png", around(x, dialog)))
        x.xdotool("windowfocus", "--sync", str(dialog))
        time.sleep(0.3)
        x.xdotool("key", "Return")  # Recover is the default button

        def note():
            notes = History(paths.history_db).list(kind="note")
            return notes[0] if notes and notes[0].status == NoteStatus.READY else None

        entry = wait_for(note, 60, 0.2, f"the recovered note (log:\n{second.log[-2000:]})")
        assert "Hz" in entry.text
        assert entry.duration_s == pytest.approx(recorded_s, abs=0.05)
        assert decode(entry.audio_path).size == recorded_samples  # every sample recorded is kept
        assert not find_unfinished(paths.journal_dir)
        wait_for(lambda: not x.viewable(dialog), 10, 0.1, "the dialog to close")

        # The balloon says so; clicking it opens the note window.
        wait_for(lambda: "ui: note ready: " + entry.id in second.log, 10, 0.1, "the notification")
        balloon = wait_for(lambda: second.visible_windows() - {icon} or None, 10, 0.05, "the balloon")
        time.sleep(0.5)
        left, top, w, h = x.geometry(max(balloon))
        x.xdotool("mousemove", str(left + w // 2), str(top + h // 2), "click", "1")
        wait_for(lambda: "ui: note window shown for " + entry.id in second.log, 10, 0.1, "the note window")
        window = wait_for(lambda: x.search("--onlyvisible", "--name", "— dictate$"), 10, 0.1, "the window")[0]
        time.sleep(0.5)
        x.screenshot(tmp_path / "note-window-recovered.png", around(x, window, margin=0))
        assert second.status()["state"] == "idle"

        # A note recorded to its end also says when its text is ready.
        assert second.send("note-start")["ok"]
        second.wait_state("note-recording", 10)
        assert virtual_mic.play(build_script([("speech", 2.0), ("silence", 0.3)], seed=12).audio).wait(20)
        assert second.send("note-stop")["ok"]
        wait_for(lambda: second.log.count("ui: note ready: ") == 2, 30, 0.1, "the second note's notification")
        notes = History(paths.history_db).list(kind="note")
        assert len(notes) == 2 and all("Hz" in n.text for n in notes)
    finally:
        assert second.stop() == 0
