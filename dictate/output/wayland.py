"""Typing on Wayland, where no client may inject keys into another: through the compositor's
virtual-keyboard protocol (wtype: wlroots compositors, KDE; not GNOME) or through a uinput
keyboard device (ydotool with its ydotoold daemon, dotool; these need access to /dev/uinput and
type only what the keyboard layout has, so no CJK or emoji).

Wayland offers no way to read the keyboard state, so there is no modifier guard here beyond a
short pause; the key-up of the hotkey usually arrives before the first committed text anyway."""

from __future__ import annotations

import logging
from typing import Mapping

from dictate.config import OutputConfig
from dictate.output.base import is_typeable_ascii, require_tool, run_tool

log = logging.getLogger(__name__)

_BACKSPACE_EVDEV = 14  # KEY_BACKSPACE in linux/input-event-codes.h


class WtypeSink:
    name = "wtype"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        self.tool = require_tool("wtype")
        self.env = dict(env)
        self.delay_ms = cfg.typing_delay_ms

    def emit(self, delete_chars: int, text: str) -> None:
        if delete_chars > 0:
            args = [self.tool]
            for _ in range(delete_chars):
                args += ["-k", "BackSpace"]
            run_tool(args, self.env)
        if text:
            # wtype uploads a keymap holding each character, so any Unicode text is typed exactly.
            run_tool([self.tool, "-d", str(self.delay_ms), "--", text], self.env)

    def close(self) -> None:
        pass


class YdotoolSink:
    name = "ydotool"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        self.tool = require_tool("ydotool")
        self.env = dict(env)
        self.delay_ms = cfg.typing_delay_ms

    def emit(self, delete_chars: int, text: str) -> None:
        if delete_chars > 0:
            run_tool([self.tool, "key", *([f"{_BACKSPACE_EVDEV}:1", f"{_BACKSPACE_EVDEV}:0"] * delete_chars)],
                     self.env)
        if text:
            _warn_layout_only(self.name, text)
            run_tool([self.tool, "type", "--key-delay", str(self.delay_ms), "--", text], self.env)

    def close(self) -> None:
        pass


class DotoolSink:
    name = "dotool"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        self.tool = require_tool("dotool")
        self.env = dict(env)
        self.delay_ms = cfg.typing_delay_ms

    def emit(self, delete_chars: int, text: str) -> None:
        script = [f"typedelay {self.delay_ms}"]
        script += ["key backspace"] * max(0, delete_chars)
        if text:
            _warn_layout_only(self.name, text)
            # dotool reads one command per line: a newline in the text becomes a separate Enter.
            for i, line in enumerate(text.split("\n")):
                if i:
                    script.append("key enter")
                if line:
                    script.append(f"type {line}")
        run_tool([self.tool], self.env, input_text="\n".join(script) + "\n")

    def close(self) -> None:
        pass


def _warn_layout_only(name: str, text: str) -> None:
    if not all(is_typeable_ascii(ch) for ch in text):
        log.warning("%s types only what the keyboard layout has; characters outside it may be lost "
                    "(wtype types any text)", name)
