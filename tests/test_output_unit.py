"""Pure logic of the output package: backend choice per desktop, text splitting, the Windows
SendInput records (surrogate pairs) and macOS event pieces, the stream sink. The real typing is
proved in test_output_x11.py."""

from __future__ import annotations

import ctypes
import io
import subprocess
import sys

import pytest

from dictate.config import Config
from dictate.errors import OutputError
from dictate.output import StreamSink, choose_backend, create_sink
from dictate.output.base import chunk_utf16, split_runs, utf16_units
from dictate.output.macos import MAX_UNITS_PER_EVENT, pieces
from dictate.output.paste import paste_route
from dictate.output.windows import INPUT, KEYEVENTF_KEYUP, KEYEVENTF_UNICODE, VK_BACK, VK_RETURN, key_inputs
from dictate.output.x11 import is_terminal


def tools(*names: str):
    return lambda tool: f"/usr/bin/{tool}" if tool in names else None


def choice(env: dict, *available: str, backend: str = "auto", platform: str = "linux"):
    cfg = Config()
    cfg.output.backend = backend
    return choose_backend(cfg, env, platform=platform, which=tools(*available))


def test_x11_session_types_with_xdotool() -> None:
    c = choice({"DISPLAY": ":0", "XDG_SESSION_TYPE": "x11"}, "xdotool")
    assert (c.name, c.available) == ("xdotool", True)
    assert "X11 display :0" in c.reason and "pasted" in c.reason


def test_x11_without_xdotool_says_what_to_install() -> None:
    c = choice({"DISPLAY": ":0"})
    assert (c.name, c.available) == ("xdotool", False)
    assert c.reason.endswith("install xdotool")


@pytest.mark.parametrize("desktop, tools_, expected", [
    ("sway", ("wtype", "ydotool"), "wtype"),        # wlroots: the virtual-keyboard protocol
    ("KDE", ("wtype", "dotool"), "wtype"),
    ("GNOME", ("wtype", "ydotool"), "ydotool"),     # GNOME has no virtual keyboard protocol: uinput
    ("ubuntu:GNOME", ("dotool", "wtype"), "dotool"),
    ("sway", ("ydotool",), "ydotool"),
])
def test_wayland_picks_a_tool_that_works_on_that_desktop(desktop, tools_, expected) -> None:
    env = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "XDG_CURRENT_DESKTOP": desktop}
    c = choice(env, *tools_)
    assert (c.name, c.available) == (expected, True)
    assert c.reason.startswith(f"Wayland session ({desktop})")


def test_wayland_without_tools_falls_back_to_xwayland_honestly() -> None:
    env = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0", "XDG_CURRENT_DESKTOP": "sway"}
    c = choice(env, "xdotool")
    assert (c.name, c.available) == ("xdotool", True)
    assert "XWayland" in c.reason
    c = choice({"WAYLAND_DISPLAY": "wayland-0", "XDG_CURRENT_DESKTOP": "sway"})
    assert not c.available and "install wtype" in c.reason


def test_platforms_and_no_session() -> None:
    assert choice({}, platform="win32").name == "windows"
    assert choice({}, platform="darwin").name == "macos"
    c = choice({})
    assert (c.name, c.available) == ("stdout", False) and "no graphical session" in c.reason


def test_configured_backend_overrides_and_is_checked() -> None:
    c = choice({"DISPLAY": ":0"}, "xdotool", backend="clipboard")
    assert (c.name, c.available) == ("clipboard", True) and c.reason.startswith("set in [output] backend")
    c = choice({"DISPLAY": ":0"}, "xdotool", backend="wtype")
    assert not c.available and "wtype is missing" in c.reason
    assert choice({}, backend="stdout").available
    assert not choice({}, backend="windows").available
    with pytest.raises(OutputError, match="unknown"):
        choice({}, backend="telepathy")


def test_create_sink_without_display_is_a_one_line_error() -> None:
    with pytest.raises(OutputError) as err:
        create_sink(Config(), env={})
    assert "no graphical session" in str(err.value) and "\n" not in str(err.value)


def test_text_helpers() -> None:
    assert split_runs("café ok 漢字\n") == [(True, "caf"), (False, "é"), (True, " ok "), (False, "漢字"), (True, "\n")]
    assert utf16_units("a🎤") == [0x61, 0xD83C, 0xDFA4]
    text = "🎤" * 15 + "abc"
    parts = chunk_utf16(text, MAX_UNITS_PER_EVENT)
    assert "".join(parts) == text
    assert all(len(utf16_units(p)) <= MAX_UNITS_PER_EVENT for p in parts)
    assert pieces("ab\ncd") == ["ab", "\n", "cd"]


def test_windows_sendinput_records_carry_surrogate_pairs() -> None:
    records = key_inputs(2, "é🎤\n")
    assert ctypes.sizeof(INPUT) == (40 if ctypes.sizeof(ctypes.c_void_p) == 8 else 28)  # as on Windows
    ki = [(r.ki.wVk, r.ki.wScan, r.ki.dwFlags) for r in records]
    assert ki[:4] == [(VK_BACK, 0, 0), (VK_BACK, 0, KEYEVENTF_KEYUP)] * 2
    assert ki[4:10] == [(0, 0xE9, KEYEVENTF_UNICODE), (0, 0xE9, KEYEVENTF_UNICODE | KEYEVENTF_KEYUP),
                        (0, 0xD83C, KEYEVENTF_UNICODE), (0, 0xD83C, KEYEVENTF_UNICODE | KEYEVENTF_KEYUP),
                        (0, 0xDFA4, KEYEVENTF_UNICODE), (0, 0xDFA4, KEYEVENTF_UNICODE | KEYEVENTF_KEYUP)]
    assert ki[10:] == [(VK_RETURN, 0, 0), (VK_RETURN, 0, KEYEVENTF_KEYUP)]


def test_terminal_classes_and_paste_route() -> None:
    assert is_terminal(("gnome-terminal-server", "Gnome-terminal"))
    assert is_terminal(("Alacritty", "Alacritty")) and is_terminal(("kitty", "kitty"))
    assert not is_terminal(("Navigator", "firefox")) and not is_terminal(None)
    assert paste_route(("konsole", "konsole")) == ("CLIPBOARD", "ctrl+shift+v")
    assert paste_route(("xterm", "XTerm")) == ("PRIMARY", "shift+Insert")
    assert paste_route(("gedit", "Gedit")) == ("CLIPBOARD", "ctrl+v")
    assert paste_route(None) == ("CLIPBOARD", "ctrl+v")


def test_stream_sink_writes_text_and_deletes_only_on_a_terminal() -> None:
    out = io.StringIO()
    sink = StreamSink(out)
    sink.emit(0, "Grüße 🎤")
    sink.emit(3, " more")
    sink.close()
    assert out.getvalue() == "Grüße 🎤 more"


def test_output_package_imports_without_qt() -> None:
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'PySide6': raise ImportError('blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import dictate.output, dictate.output.xdotool, dictate.output.paste, dictate.output.wayland\n"
            "import dictate.output.windows, dictate.output.macos\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "ok", res.stderr
