"""A long push-to-talk hold on a real X server: the real X11 hotkey listener (XGrabKey), the
controller with the scripted engine on a paced stand-in microphone, and the real xdotool sink
typing into a text box of another process.

While the chord is held, committed text must not be typed: the keyboard is grabbed by our
listener, so the keys would go to it (not the window), and a typed space with the held Ctrl+Alt
is the hotkey chord itself, whose release ended the dictation after a few seconds."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from dictate import config as config_mod
from dictate.controller import Controller, State
from dictate.hotkeys import create_listener
from dictate.output import create_sink
from dictate.types import CommandKind, EventKind
from tests.support.scripted_engine import ScriptedEngine, build_script
from tests.support.type_target import TypeTarget
from tests.support.xserver import XServer, have_xvfb, wait_for, xserver  # noqa: F401 - fixture
from tests.test_controller import Events, PacedSource

pytestmark = pytest.mark.skipif(not have_xvfb() or not shutil.which("xdotool"),
                                reason="needs Xvfb and xdotool (packaging/install-system-deps.sh --test)")

CHORD = "ctrl+alt+space"  # the default [hotkeys] dictate, as xdotool names it


class Commands:
    """The hotkey listener's `put`: records each Command, then hands it to the controller."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.kinds: list[CommandKind] = []

    def __call__(self, command) -> None:
        self.kinds.append(command.kind)
        self.ctl.submit(command)


def run_app(x: XServer, tmp_path, mode: str, script):
    cfg = config_mod.load()
    cfg.streaming.min_chunk_s = 0.5
    cfg.hotkeys.mode = mode
    cfg.output.backend = "xdotool"
    sink = create_sink(cfg, env=x.env)  # the real sink: the modifier guard, xdotool typing
    src = PacedSource(cfg.audio.preroll_s)
    engine = ScriptedEngine(script)
    ctl = Controller(cfg, engine_factory=lambda: engine, source_factory=lambda: src, sink=sink)
    events = Events()
    ctl.subscribe(events)
    commands = Commands(ctl)
    listener = create_listener(cfg, commands, env=x.env)
    assert listener is not None and listener.backend == "x11"
    return cfg, ctl, src, events, commands, listener


def test_a_long_push_to_talk_hold_is_not_cut_off_and_types_every_word_after_release(xserver, tmp_path):
    script = build_script([("silence", 0.5), ("speech", 9.0), ("silence", 1.0)], seed=11)
    said = " ".join(script.texts)
    target = TypeTarget(xserver.env, tmp_path / "target.json")
    cfg, ctl, src, events, commands, listener = run_app(xserver, tmp_path, "push-to-talk", script)
    try:
        ctl.start()
        events.wait_state(State.IDLE)
        listener.start()
        target.focus()

        xserver.xdotool("keydown", CHORD)
        wait_for(lambda: CommandKind.PTT_DOWN in commands.kinds, 5, what="PTT_DOWN")
        held_at = time.monotonic()
        events.wait_state(State.LISTENING)
        after_listening = len(events.states)
        src.play(script.audio, speed=1.0)  # real time: the chord stays down through all of it
        held_s = time.monotonic() - held_at
        committed = "".join(p["text"] for p in events.of(EventKind.COMMITTED))
        # Still held: not cut off, words committed, and not a key typed into the window yet.
        assert held_s > 8.0
        assert commands.kinds == [CommandKind.PTT_DOWN], commands.kinds
        assert ctl.state == State.LISTENING and events.states[after_listening:] == []
        assert len(committed.split()) >= 5, committed  # commits happened during the hold
        assert target.text == ""

        xserver.xdotool("keyup", CHORD)
        events.wait_state(State.IDLE, after=after_listening)
        typed = target.wait_text(said + " ", timeout_s=20)
        assert typed == said + " "  # every word exactly once, in order, then the trailing space
        assert commands.kinds == [CommandKind.PTT_DOWN, CommandKind.PTT_UP]
        assert events.states[after_listening - 1:] == [State.LISTENING, State.TRANSCRIBING, State.IDLE]
    finally:
        listener.stop()
        ctl.shutdown()
        target.close()


def test_toggle_mode_types_during_dictation(xserver, tmp_path):
    """Toggle: nothing is held, so committed text is typed while dictation goes on."""
    script = build_script([("silence", 0.5), ("speech", 6.0), ("silence", 1.0)], seed=12)
    said = " ".join(script.texts)
    target = TypeTarget(xserver.env, tmp_path / "target.json")
    cfg, ctl, src, events, commands, listener = run_app(xserver, tmp_path, "toggle", script)
    try:
        ctl.start()
        events.wait_state(State.IDLE)
        listener.start()
        target.focus()
        xserver.xdotool("key", CHORD)
        events.wait_state(State.LISTENING)
        typed_while_listening: list[str] = []
        player = threading.Thread(target=src.play, args=(script.audio,), kwargs={"speed": 1.5}, name="test-play")
        player.start()
        while player.is_alive():
            if ctl.state == State.LISTENING and target.text:
                typed_while_listening.append(target.text)
            time.sleep(0.05)
        player.join()
        assert typed_while_listening, "nothing was typed while dictating"
        xserver.xdotool("key", CHORD)
        events.wait_state(State.IDLE, after=events.states.index(State.LISTENING))
        assert target.wait_text(said + " ", timeout_s=20) == said + " "
        assert commands.kinds == [CommandKind.TOGGLE, CommandKind.TOGGLE]
    finally:
        listener.stop()
        ctl.shutdown()
        target.close()
