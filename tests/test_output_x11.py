"""Typing into a real window of another process on a private Xvfb: xdotool typing, clipboard
paste with the previous clipboard restored (every format, only after the paste landed, not if it
changed meanwhile), terminals, the modifier guard and BackSpaces."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from dictate.config import Config
from dictate.errors import OutputError
from dictate.output import create_sink
from dictate.output.paste import X11PasteSink
from dictate.output.xclipboard import ClipboardContent, X11Clipboard
from dictate.output.xdotool import XdotoolSink
from tests.conftest import REPO, dictate_env
from tests.support.type_target import TypeTarget
from tests.support.xserver import XServer, have_xvfb, wait_for, xserver  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not (have_xvfb() and shutil.which("xdotool") and shutil.which("xclip")),
                                reason="needs Xvfb, xdotool and xclip (packaging/install-system-deps.sh --test)")

UNICODE_TEXT = "Grüße, café, ñandú, über: 漢字 and 🎤!"


def png_bytes(width: int, height: int, seed: int = 1) -> bytes:
    """A valid RGB PNG with noisy pixels (so it does not compress to nothing)."""
    rows, state = [], seed
    for _ in range(height):
        row = bytearray([0])
        for _ in range(width * 3):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            row.append(state >> 16 & 0xFF)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 1))
            + chunk(b"IEND", b""))


def xclip_out(env: dict, target: str = "UTF8_STRING", selection: str = "clipboard") -> bytes | None:
    res = subprocess.run(["xclip", "-selection", selection, "-o", "-t", target], env=env, capture_output=True,
                         timeout=10)
    return res.stdout if res.returncode == 0 else None


def clipboard_targets(env: dict) -> list[str]:
    out = xclip_out(env, "TARGETS")
    return out.decode().split() if out else []


def clipboard_owner(env: dict) -> int:
    from Xlib import display

    d = display.Display(env["DISPLAY"])
    try:
        owner = d.get_selection_owner(d.intern_atom("CLIPBOARD"))
        return owner if isinstance(owner, int) else owner.id
    finally:
        d.close()


@contextmanager
def xclip_holding(env: dict, data: bytes, target: str) -> Iterator[subprocess.Popen]:
    """Another process (xclip) owning CLIPBOARD with one target."""
    proc = subprocess.Popen(["xclip", "-quiet", "-selection", "clipboard", "-t", target, "-i"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.stdin.write(data)
    proc.stdin.close()
    try:
        wait_for(lambda: target in clipboard_targets(env), what=f"xclip to own the clipboard ({target})")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(5)


@pytest.fixture
def target(xserver: XServer, tmp_path: Path) -> Iterator[TypeTarget]:
    with TypeTarget(xserver.env, tmp_path / "target.json") as t:
        t.focus()
        yield t


def config(backend: str, **output) -> Config:
    cfg = Config()
    cfg.output.backend = backend
    for key, value in output.items():
        setattr(cfg.output, key, value)
    return cfg


# -- typing ---------------------------------------------------------------------------------

def test_xdotool_types_exact_text_with_accents_cjk_and_emoji(xserver: XServer, target: TypeTarget) -> None:
    chunks = ["Hello world.", " Second line follows:\n", UNICODE_TEXT, " plain ASCII again,", " 漢字🎤 end."]
    sink = create_sink(config("auto"), env=xserver.env)
    try:
        assert isinstance(sink, XdotoolSink)
        with xclip_holding(xserver.env, "what the user had copied ✓".encode(), "UTF8_STRING"):
            for chunk in chunks:
                sink.emit(0, chunk)
            expected = "".join(chunks)
            assert target.wait_text(expected) == expected
            # the chunks with non-ASCII went through the clipboard, which holds the user's text again
            assert sink._paster is not None and sink._paster.last_restored is True
            assert xclip_out(xserver.env) == "what the user had copied ✓".encode()
    finally:
        sink.close()


def test_a_long_piece_of_plain_text_is_pasted_and_a_short_one_typed(xserver: XServer, target: TypeTarget) -> None:
    """What push-to-talk holds until the chord is let go comes out at once: over paste_long_over
    characters it goes through the clipboard (the same time for any length), which is restored."""
    sink = create_sink(config("xdotool", paste_long_over=200), env=xserver.env)
    long = " ".join(f"word{i}" for i in range(150))  # 1040 characters of plain ASCII
    try:
        assert isinstance(sink, XdotoolSink)
        with xclip_holding(xserver.env, b"what the user had copied", "UTF8_STRING"):
            sink.emit(0, "Short first.")
            assert target.wait_text("Short first.") == "Short first."
            assert sink._paster is not None and sink._paster.last_route == ("", "")  # typed, no paste yet
            sink.emit(0, " " + long)
            assert target.wait_text("Short first. " + long) == "Short first. " + long
            assert sink._paster.last_route == ("CLIPBOARD", "ctrl+v") and sink._paster.last_restored is True
            assert xclip_out(xserver.env) == b"what the user had copied"
    finally:
        sink.close()


def test_backspaces_delete_what_was_typed(xserver: XServer, target: TypeTarget) -> None:
    sink = create_sink(config("xdotool"), env=xserver.env)
    try:
        sink.emit(0, "hello wrold")
        assert target.wait_text("hello wrold") == "hello wrold"
        sink.emit(5, "world, 🎤")
        assert target.wait_text("hello world, 🎤") == "hello world, 🎤"
        sink.emit(len("world, 🎤"), "")  # emoji: one code point, one BackSpace
        assert target.wait_text("hello ") == "hello "
    finally:
        sink.close()


# -- paste ------------------------------------------------------------------------------------

def test_paste_is_exact_and_restores_every_format_of_the_previous_clipboard(xserver: XServer, target: TypeTarget,
                                                                           tmp_path: Path) -> None:
    png = png_bytes(64, 48)
    png_file = tmp_path / "pic.png"
    png_file.write_bytes(png)
    owner = subprocess.Popen([sys.executable, str(REPO / "tests/support/clipboard_owner.py"), "copied text ✓",
                              str(png_file)], env=dict(xserver.env, QT_QPA_PLATFORM="xcb"),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert owner.stdout.readline().strip() == "ready"
        wait_for(lambda: "image/png" in clipboard_targets(xserver.env), what="the Qt clipboard owner")
        before_targets = [t for t in clipboard_targets(xserver.env) if t not in ("TARGETS", "TIMESTAMP", "MULTIPLE",
                                                                                 "SAVE_TARGETS")]
        before = {t: xclip_out(xserver.env, t) for t in before_targets}
        assert before["image/png"] == png and before["application/x-dictate-test"] == b"\x00private\xffbytes"
        assert before["UTF8_STRING"] == "copied text ✓".encode()

        sink = create_sink(config("clipboard"), env=xserver.env)
        try:
            assert isinstance(sink, X11PasteSink)
            sink.emit(0, UNICODE_TEXT)
            assert target.wait_text(UNICODE_TEXT) == UNICODE_TEXT
            assert sink.paster.last_restored is True
            # the Qt owner lost the clipboard to the paste; now this process serves what it held
            after_targets = set(clipboard_targets(xserver.env))
            assert set(before_targets) <= after_targets
            for name, data in before.items():
                assert xclip_out(xserver.env, name) == data, name
            # a second paste saves what the first restored, and restores it again
            sink.emit(0, " más")
            assert target.wait_text(UNICODE_TEXT + " más") == UNICODE_TEXT + " más"
            assert xclip_out(xserver.env, "image/png") == png
            assert xclip_out(xserver.env, "UTF8_STRING") == "copied text ✓".encode()
        finally:
            sink.close()
    finally:
        owner.terminate()
        owner.wait(5)


def test_paste_restores_a_large_image_clipboard_set_by_xclip(xserver: XServer, target: TypeTarget) -> None:
    png = png_bytes(600, 600)  # ~1 MB: both directions go by INCR transfer
    assert len(png) > 600_000
    with xclip_holding(xserver.env, png, "image/png") as holder:
        sink = create_sink(config("clipboard"), env=xserver.env)
        try:
            sink.emit(0, "漢字 🎤")
            assert target.wait_text("漢字 🎤") == "漢字 🎤"
            assert holder.wait(5) == 0  # xclip exits once it lost the clipboard
            assert clipboard_targets(xserver.env) == ["TARGETS", "TIMESTAMP", "image/png"]
            assert xclip_out(xserver.env, "image/png") == png
        finally:
            sink.close()


def test_paste_leaves_an_empty_clipboard_empty(xserver: XServer, target: TypeTarget) -> None:
    assert clipboard_owner(xserver.env) == 0
    sink = create_sink(config("clipboard"), env=xserver.env)
    try:
        sink.emit(0, "ñ")
        assert target.wait_text("ñ") == "ñ"
        assert clipboard_owner(xserver.env) == 0
    finally:
        sink.close()


def test_restore_waits_for_a_slow_window_not_a_timer(xserver: XServer, tmp_path: Path) -> None:
    """The window takes 1.5 s to fetch the paste: it still gets our text, and the clipboard is
    restored only after that."""
    with TypeTarget(xserver.env, tmp_path / "slow.json", paste_delay_ms=1500) as slow, \
            xclip_holding(xserver.env, b"previous", "UTF8_STRING"):
        slow.focus()
        sink = create_sink(config("clipboard"), env=xserver.env)
        try:
            t0 = time.monotonic()
            sink.emit(0, "späť")
            elapsed = time.monotonic() - t0
            assert slow.wait_text("späť") == "späť"
            assert elapsed >= 1.4
            assert sink.paster.last_restored is True
            assert xclip_out(xserver.env) == b"previous"
        finally:
            sink.close()


def test_restore_is_skipped_when_the_clipboard_changed_meanwhile(xserver: XServer) -> None:
    clip = X11Clipboard(xserver.env)
    try:
        with xclip_holding(xserver.env, b"old", "UTF8_STRING"):
            saved = clip.snapshot()
            assert saved.items["UTF8_STRING"].data == b"old"
            generation = clip.offer(ClipboardContent.text("ours"))
            assert xclip_out(xserver.env) == b"ours"
            # the user copies something else before the restore
            with xclip_holding(xserver.env, b"copied meanwhile", "text/x-new"):
                wait_for(lambda: not clip.owns(), what="the clipboard to be taken")
                assert clip.restore(saved, generation) is False
                assert xclip_out(xserver.env, "text/x-new") == b"copied meanwhile"
    finally:
        clip.close()


def test_paste_with_nothing_to_take_it_fails_in_one_line_and_restores(xserver: XServer) -> None:
    # no window at all: the paste key goes to the root window, which asks for nothing
    with xclip_holding(xserver.env, b"keep me", "UTF8_STRING"):
        sink = create_sink(config("clipboard", paste_timeout_s=0.5), env=xserver.env)
        try:
            with pytest.raises(OutputError) as err:
                sink.emit(0, "nobody listens")
            assert "did not take the pasted text" in str(err.value) and "\n" not in str(err.value)
            assert xclip_out(xserver.env) == b"keep me"
        finally:
            sink.close()


# -- terminals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("wm_class, key, arrives", [
    ("gnome-terminal", "ctrl+shift+v", True),
    ("kitty", "ctrl+shift+v", True),
    ("dictate-type-target", "ctrl+v", False),  # not a terminal: Ctrl+V, which a terminal takes as ^V
])
def test_terminal_windows_get_ctrl_shift_v(xserver: XServer, tmp_path: Path, wm_class: str, key: str,
                                           arrives: bool) -> None:
    with TypeTarget(xserver.env, tmp_path / "term.json", wm_class=wm_class, terminal_keys=True) as term:
        term.focus()
        sink = create_sink(config("clipboard", paste_timeout_s=1.0), env=xserver.env)
        try:
            assert sink.desktop.focused_class()[0] == wm_class
            if arrives:
                sink.emit(0, "ls ~/café")
            else:  # the terminal took Ctrl+V as a control character and fetched nothing: reported
                with pytest.raises(OutputError, match="did not take the pasted text"):
                    sink.emit(0, "ls ~/café")
            got = term.wait_stable()
            assert term.read()["keys"] == [key]
            assert got == ("ls ~/café" if arrives else "^V")
        finally:
            sink.close()


@pytest.mark.skipif(shutil.which("xterm") is None, reason="needs xterm (packaging/install-system-deps.sh --test)")
def test_real_xterm_gets_the_text_through_primary(xserver: XServer, tmp_path: Path) -> None:
    """xterm has no key that pastes CLIPBOARD: PRIMARY and Shift+Insert, into `cat` in a real xterm."""
    out = tmp_path / "typed.txt"
    env = dict(xserver.env, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    term = subprocess.Popen(["xterm", "-u8", "-e", "sh", "-c", f"stty -echo; cat > '{out}'"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wid = wait_for(lambda: xserver.search("--class", "xterm"), what="the xterm window")[-1]
        wait_for(lambda: out.exists(), what="cat to start in the xterm")
        xserver.xdotool("windowfocus", "--sync", str(wid))
        sink = create_sink(config("clipboard"), env=env)
        try:
            assert sink.desktop.focused_class() == ("xterm", "XTerm")
            sink.emit(0, "echo héllo wörld 漢字 🎤\n")
            assert sink.paster.last_route == ("PRIMARY", "shift+Insert")
            wait_for(lambda: out.read_text(encoding="utf-8") == "echo héllo wörld 漢字 🎤\n",
                     what="the text in the terminal")
        finally:
            sink.close()
    finally:
        term.terminate()
        term.wait(5)


# -- modifier guard -------------------------------------------------------------------------------

def test_typing_waits_until_the_hotkey_modifiers_are_released(xserver: XServer, target: TypeTarget) -> None:
    sink = create_sink(config("xdotool", modifier_wait_s=5.0), env=xserver.env)
    try:
        xserver.xdotool("keydown", "ctrl")
        assert sink.desktop.modifiers_down()
        done = threading.Event()
        thread = threading.Thread(target=lambda: (sink.emit(0, "abc"), done.set()), name="test-emit")
        thread.start()
        time.sleep(0.5)
        assert not done.is_set() and target.text == ""  # waiting, and nothing typed with Ctrl held
        xserver.xdotool("keyup", "ctrl")
        assert done.wait(5)
        thread.join()
        assert target.wait_text("abc") == "abc"
        assert not sink.desktop.modifiers_down()
    finally:
        sink.close()


def test_nothing_is_typed_while_a_modifier_is_held_however_long(xserver: XServer, target: TypeTarget,
                                                                 caplog) -> None:
    """Past modifier_wait_s the guard only warns: typing "anyway" (even with --clearmodifiers,
    which fakes a release) would fire shortcuts or our own hotkey chord."""
    sink = create_sink(config("xdotool", modifier_wait_s=0.3), env=xserver.env)
    try:
        xserver.xdotool("keydown", "ctrl")
        done = threading.Event()
        thread = threading.Thread(target=lambda: (sink.emit(0, "abc"), done.set()), name="test-emit")
        thread.start()
        time.sleep(1.2)
        assert not done.is_set() and target.text == ""
        assert "typing waits until they are released" in caplog.text
        xserver.xdotool("keyup", "ctrl")
        assert done.wait(5)
        thread.join()
        assert target.wait_text("abc") == "abc"

        # Closing the sink ends a wait: the text is reported as not typed, never typed with Ctrl held.
        xserver.xdotool("keydown", "ctrl")
        errors: list[Exception] = []

        def emit() -> None:
            try:
                sink.emit(0, "def")
            except OutputError as exc:
                errors.append(exc)

        thread = threading.Thread(target=emit, name="test-emit")
        thread.start()
        time.sleep(0.5)
        sink.close()
        thread.join(5)
        assert not thread.is_alive()
        assert len(errors) == 1 and "not typed" in str(errors[0])
        time.sleep(0.3)
        assert target.text == "abc"
    finally:
        xserver.xdotool("keyup", "ctrl")
        sink.close()


# -- errors and doctor ---------------------------------------------------------------------------

def test_missing_xdotool_is_a_one_line_error(xserver: XServer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(OutputError) as err:
        create_sink(config("auto"), env=dict(xserver.env, PATH=str(tmp_path)))
    assert "install xdotool" in str(err.value) and "\n" not in str(err.value)


def test_doctor_reports_the_real_typing_choice(xserver: XServer, tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "dictate", "doctor"], env=dictate_env(xserver.env),
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    line = next(l for l in run.stdout.splitlines() if " typing " in l)
    assert line.startswith("ok") and f"xdotool: X11 display {xserver.display}" in line

    bin_dir = tmp_path / "bin"  # a PATH without xdotool
    bin_dir.mkdir()
    run = subprocess.run([sys.executable, "-m", "dictate", "doctor"],
                         env=dictate_env(dict(xserver.env, PATH=str(bin_dir))),
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    lines = run.stdout.splitlines()
    i = next(i for i, l in enumerate(lines) if " typing " in l)
    assert lines[i].startswith("FAIL") and "xdotool is missing" in lines[i]
    assert "fix: install xdotool" in lines[i + 1]
