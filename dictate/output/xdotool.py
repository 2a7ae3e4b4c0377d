"""Typing on X11 with xdotool, choosing per chunk of committed text.

`xdotool type --delay 0` is fast (thousands of characters per second) but drops non-ASCII
characters: for each one it remaps a spare keycode, and a window that reads the key before it has
caught up with the new mapping loses the character. Even 12 ms apart, an emoji is lost now and
then. So a chunk that is all ASCII is typed at full speed, and a chunk holding anything else is
pasted through the clipboard (exact, previous clipboard restored) unless `paste_non_ascii` is off,
in which case it is typed at the configured delay (best effort).

A long chunk is pasted too (`paste_long_over` characters): push-to-talk holds a minute of speech
until the chord is let go, and typing its thousand characters took 0.3-0.4 s more than the
paste, which costs the same for ten characters or ten thousand."""

from __future__ import annotations

import logging
from typing import Mapping

from dictate.config import OutputConfig
from dictate.output.base import is_typeable_ascii, require_tool, run_tool
from dictate.output.modifiers import ModifierGuard
from dictate.output.x11 import X11Desktop

log = logging.getLogger(__name__)

_KEYS_PER_CALL = 200


class XdotoolTyper:
    """The xdotool commands the X11 sinks use; keystrokes go to the focused window via XTEST."""

    def __init__(self, env: Mapping[str, str], delay_ms: int, fast_ascii: bool = True) -> None:
        self.tool = require_tool("xdotool")
        self.env = dict(env)
        self.delay_ms = delay_ms
        self.fast_ascii = fast_ascii

    def _run(self, args: list[str], clear: bool, timeout_s: float = 60.0) -> None:
        run_tool([self.tool, args[0], *(["--clearmodifiers"] if clear else []), *args[1:]], self.env,
                 timeout_s=timeout_s)

    def backspace(self, count: int, clear: bool = False) -> None:
        while count > 0:
            n = min(count, _KEYS_PER_CALL)
            self._run(["key", "--delay", "1", *(["BackSpace"] * n)], clear)
            count -= n

    def key(self, combo: str, clear: bool = False) -> None:
        self._run(["key", combo], clear)

    def type_text(self, text: str, clear: bool = False, delay_ms: int | None = None) -> None:
        """Type `text`; newlines go as the Return key (`xdotool type` sends a Linefeed keysym that
        text boxes ignore). `delay_ms` None: 0 for all-ASCII text, else the configured delay."""
        if delay_ms is None:
            delay_ms = 0 if (self.fast_ascii and all(is_typeable_ascii(c) for c in text)) else self.delay_ms
        for i, line in enumerate(text.split("\n")):
            if i:
                self.key("Return", clear)
            if line:
                # bounded by the text's own length: a slow delay times a long line must not hit a short limit
                timeout_s = 30.0 + len(line) * (delay_ms + 5) / 1000.0
                self._run(["type", "--delay", str(delay_ms), "--", line], clear, timeout_s)


class XdotoolSink:
    """Types committed text into the focused X11 window."""

    name = "xdotool"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.typer = XdotoolTyper(env, cfg.typing_delay_ms, cfg.fast_ascii)
        self.desktop = X11Desktop(env)
        self.guard = ModifierGuard(self.desktop.modifiers_down, cfg.modifier_wait_s)
        self._paster = None
        if cfg.paste_non_ascii or cfg.paste_long_over:
            from dictate.output.paste import X11Paster

            self._paster = X11Paster(cfg, env, self.typer, self.desktop)

    def emit(self, delete_chars: int, text: str) -> None:
        if delete_chars <= 0 and not text:
            return
        # Keys typed while the hotkey's Ctrl/Alt are still down would fire shortcuts (or the
        # hotkey) instead: nothing is sent until they are up.
        self.guard.wait()
        if delete_chars > 0:
            self.typer.backspace(delete_chars)
        if not text:
            return
        non_ascii = self.cfg.paste_non_ascii and not all(is_typeable_ascii(c) for c in text)
        if self._paster is not None and (self._long(text) or non_ascii):
            self._paster.paste(text)
        else:
            self.typer.type_text(text)

    def _long(self, text: str) -> bool:
        return 0 < self.cfg.paste_long_over < len(text)

    def close(self) -> None:
        self.guard.close()
        if self._paster is not None:
            self._paster.close()
        self.desktop.close()
