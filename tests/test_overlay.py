"""The live overlay. Its logic with Qt offscreen (events from another thread, through the Bridge);
then the real app on Xvfb: while a dictation runs the overlay is a mapped, override-redirect
window stacked above a real window of another process, which keeps the input focus; it is
unmapped when the dictation ends, and says "no speech heard" when nothing was said."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QCursor, QGuiApplication  # noqa: E402

from dictate.types import Command, Event, EventKind  # noqa: E402
from dictate.ui.bridge import Bridge  # noqa: E402
from dictate.ui.overlay import NO_SPEECH_SHOWN_MS, Overlay, create_overlay  # noqa: E402
from tests.support.pulse import virtual_mic  # noqa: E402,F401 - fixture
from tests.support.scripted_engine import build_script  # noqa: E402
from tests.support.type_target import TypeTarget  # noqa: E402
from tests.support.xserver import wait_for, xserver, xserver_with_tray  # noqa: E402,F401 - fixtures


class Publisher:
    """The controller's side of the Bridge: Events published from a thread of its own."""

    def __init__(self) -> None:
        self.subscribers = []

    def submit(self, command: Command) -> None:  # the overlay sends none
        raise AssertionError(f"unexpected command {command}")

    def subscribe(self, callback) -> None:
        self.subscribers.append(callback)

    def publish(self, *events: Event) -> None:
        def run() -> None:
            for e in events:
                for cb in self.subscribers:
                    cb(e)
        t = threading.Thread(target=run, name="dictate-controller")
        t.start()
        t.join()


def state(name: str) -> Event:
    return Event(EventKind.STATE, {"state": name})


@pytest.fixture
def rig(qapp):
    pub = Publisher()
    bridge = Bridge(pub)
    ready = {"value": False}
    overlay = Overlay(bridge, position="bottom", model_ready=lambda: ready["value"])
    yield pub, overlay, ready
    overlay.hide()
    bridge.close()


def test_overlay_follows_a_dictation(qtbot, rig):
    pub, overlay, ready = rig
    assert not overlay.isVisible()
    flags = overlay.windowFlags()
    for flag in (Qt.WindowType.Tool, Qt.WindowType.WindowStaysOnTopHint, Qt.WindowType.WindowDoesNotAcceptFocus,
                 Qt.WindowType.FramelessWindowHint, Qt.WindowType.WindowTransparentForInput):
        assert flags & flag, flag
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)

    # Dictation started while the model loads: said so, words kept.
    pub.publish(state("listening"))
    qtbot.waitUntil(overlay.isVisible, timeout=2000)
    assert overlay.status.text().startswith("Model loading")
    ready["value"] = True  # the overlay notices without an event
    qtbot.waitUntil(lambda: overlay.status.text() == "Listening…", timeout=2000)

    pub.publish(Event(EventKind.LEVEL, {"dbfs": -30.0}), Event(EventKind.PARTIAL, {"text": "hello wor"}))
    qtbot.waitUntil(lambda: "hello wor" in overlay.text.text(), timeout=2000)
    assert overlay.meter.fraction == pytest.approx(0.5)
    pub.publish(Event(EventKind.COMMITTED, {"text": "Hello world"}), Event(EventKind.PARTIAL, {"text": "and more"}))
    qtbot.waitUntil(lambda: "and more" in overlay.text.text(), timeout=2000)
    assert overlay.text.text().startswith("Hello world <span")  # committed, then the tentative words in grey
    pub.publish(state("transcribing"))
    qtbot.waitUntil(lambda: overlay.status.text() == "Finishing…", timeout=2000)
    assert overlay.isVisible()
    pub.publish(Event(EventKind.DONE, {"status": "done", "text": "Hello world and more"}), state("idle"))
    qtbot.waitUntil(lambda: not overlay.isVisible(), timeout=2000)


def test_no_speech_heard_shows_a_moment_then_hides(qtbot, rig):
    pub, overlay, ready = rig
    ready["value"] = True
    pub.publish(state("listening"), Event(EventKind.LEVEL, {"dbfs": -70.0}))
    qtbot.waitUntil(overlay.isVisible, timeout=2000)
    assert overlay.meter.fraction == 0.0
    started = time.monotonic()
    pub.publish(state("transcribing"), Event(EventKind.DONE, {"status": "done", "text": ""}), state("idle"))
    qtbot.waitUntil(lambda: overlay.status.text() == "No speech heard", timeout=2000)
    assert overlay.isVisible()
    qtbot.waitUntil(lambda: not overlay.isVisible(), timeout=NO_SPEECH_SHOWN_MS + 3000)
    assert time.monotonic() - started >= NO_SPEECH_SHOWN_MS / 1000 * 0.9

    # A new dictation starts clean.
    pub.publish(state("listening"))
    qtbot.waitUntil(lambda: overlay.isVisible() and overlay.status.text() == "Listening…", timeout=2000)
    assert "No speech" not in overlay.text.text()


def test_cancel_and_failure_hide_at_once(qtbot, rig):
    pub, overlay, ready = rig
    ready["value"] = True
    for status in ("cancelled", "failed"):
        pub.publish(state("listening"), Event(EventKind.PARTIAL, {"text": "some words"}))
        qtbot.waitUntil(overlay.isVisible, timeout=2000)
        pub.publish(Event(EventKind.DONE, {"status": status, "text": ""}))
        qtbot.waitUntil(lambda: not overlay.isVisible(), timeout=2000)
        pub.publish(state("idle"))


def test_placement_stays_on_the_screen(qapp):
    pub = Publisher()
    bridge = Bridge(pub)
    try:
        area = QGuiApplication.primaryScreen().availableGeometry()
        for position in ("bottom", "top", "cursor"):
            o = Overlay(bridge, position=position)
            o.adjustSize()
            for pointer in (area.center(), area.bottomRight(), area.topLeft()):
                QCursor.setPos(pointer)
                p = o.place()
                assert area.contains(QPoint(p.x(), p.y()))
                assert p.x() + o.width() <= area.right() + 1 and p.y() + o.sizeHint().height() <= area.bottom() + 1
            QCursor.setPos(area.center())
            p = o.place()
            if position == "bottom":
                assert p.y() > area.center().y()
            elif position == "top":
                assert p.y() < area.center().y()
        assert create_overlay(bridge, "off", lambda: True) is None
        with pytest.raises(ValueError):
            Overlay(bridge, position="middle")
    finally:
        bridge.close()


# --- the real app on a real X server --------------------------------------------------------------

needs_x = pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("trayer") or not shutil.which("xdotool"),
                             reason="needs Xvfb, trayer and xdotool (packaging/install-system-deps.sh --test)")


def _stacking(x) -> list[int]:
    """Top-level windows, bottom to top (XQueryTree's order)."""
    from Xlib import display

    d = display.Display(x.display)
    try:
        return [w.id for w in d.screen().root.query_tree().children]
    finally:
        d.close()


def _override_redirect(x, wid: int) -> bool:
    from Xlib import display

    d = display.Display(x.display)
    try:
        return bool(d.create_resource_object("window", wid).get_attributes().override_redirect)
    finally:
        d.close()


def _focus(x) -> int:
    return int(x.xdotool("getwindowfocus").strip())


@needs_x
@pytest.mark.slow
def test_overlay_on_xvfb_stays_on_top_without_taking_the_focus(xserver_with_tray, virtual_mic, isolated_dirs,
                                                               tmp_path):
    from tests.test_app import TONE, App, around, keep_screenshot

    x = xserver_with_tray
    cfg = isolated_dirs / "config" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[output]\nbackend = "stdout"\ntrailing_space = false\n[ui]\nsounds = false\n')
    with TypeTarget(x.env, tmp_path / "target.json") as target:
        app = App(x, tmp_path / "app", "--engine", TONE, env=virtual_mic.env)
        try:
            app.tray_icon()
            app.wait_state("idle")
            target.focus()
            assert not x.search("--onlyvisible", "--name", "^dictate-overlay$")

            assert app.send("start")["ok"]
            app.wait_state("listening", 10)
            overlay = wait_for(lambda: x.search("--onlyvisible", "--name", "^dictate-overlay$"), 10, 0.05,
                               "the overlay")[0]
            assert _override_redirect(x, overlay)  # no window manager sees it: no taskbar entry, no activation
            assert _focus(x) == target.wid

            script = build_script([("speech", 3.0), ("silence", 0.4)], seed=5)
            assert virtual_mic.play(script.audio).wait(15)
            wait_for(lambda: "Hz" in app.typed, 20, 0.1, "committed text")
            time.sleep(0.4)  # the overlay has drawn the words
            stack = _stacking(x)
            assert stack.index(overlay) > stack.index(target.wid)  # above the window being typed into
            assert _focus(x) == target.wid
            left, top, w, h = x.geometry(overlay)
            assert top > 400 and w >= 300  # bottom edge by default
            keep_screenshot(x.screenshot(tmp_path / "overlay.png", around(x, overlay, margin=16)))

            assert app.send("stop")["ok"]
            app.wait_state("idle", 20)
            wait_for(lambda: not x.viewable(overlay), 10, 0.05, "the overlay to go")
            assert _focus(x) == target.wid
            assert "ui: overlay shown (bottom)" in app.log and "ui: overlay hidden" in app.log

            # Nothing said: "no speech heard", then it goes.
            assert app.send("start")["ok"]
            app.wait_state("listening", 10)
            wait_for(lambda: x.viewable(overlay), 10, 0.05, "the overlay again")
            time.sleep(1.0)
            assert app.send("stop")["ok"]
            wait_for(lambda: "ui: overlay: no speech heard" in app.log, 20, 0.05, "no speech heard")
            wait_for(lambda: not x.viewable(overlay), 10, 0.05, "the overlay to go")
            assert _focus(x) == target.wid
            assert target.text == ""  # the overlay typed nothing anywhere
        finally:
            assert app.stop() == 0
