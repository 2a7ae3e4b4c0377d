"""Clipboard + paste key on X11: exact for every character and fast for long text.

The previous clipboard (every target it held) is saved, our text is offered, the paste key is
sent, and the previous content is put back only once the focused window has fetched our text
(its SelectionRequest was served) - never on a timer - and only if nobody else took the
clipboard meanwhile. Terminals get Ctrl+Shift+V; xterm and urxvt, which have no key that pastes
CLIPBOARD, get the PRIMARY selection (saved and restored the same way) and Shift+Insert."""

from __future__ import annotations

import logging
import time
from typing import Mapping

from dictate.config import OutputConfig
from dictate.errors import OutputError
from dictate.output.modifiers import ModifierGuard
from dictate.output.x11 import X11Desktop, is_terminal, lacks_clipboard_paste_key
from dictate.output.xclipboard import ClipboardContent, X11Clipboard
from dictate.output.xdotool import XdotoolTyper

log = logging.getLogger(__name__)


def paste_route(wm_class: tuple[str, str] | None) -> tuple[str, str]:
    """(selection, key) that pastes into a window of this class."""
    if lacks_clipboard_paste_key(wm_class):
        return "PRIMARY", "shift+Insert"
    return "CLIPBOARD", ("ctrl+shift+v" if is_terminal(wm_class) else "ctrl+v")


class X11Paster:
    """Pastes one piece of text into the focused window and restores the selection after it."""

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str], typer: XdotoolTyper,
                 desktop: X11Desktop) -> None:
        self.cfg = cfg
        self.env = dict(env)
        self.typer = typer
        self.desktop = desktop
        self._selections: dict[str, X11Clipboard] = {"CLIPBOARD": X11Clipboard(env, "CLIPBOARD")}
        self.last_latency_s = 0.0  # paste key sent -> text fetched by the window (for benchmarks)
        self.last_restored: bool | None = None
        self.last_route: tuple[str, str] = ("", "")

    @property
    def clipboard(self) -> X11Clipboard:
        return self._selections["CLIPBOARD"]

    def _selection(self, name: str) -> X11Clipboard:
        if name not in self._selections:
            self._selections[name] = X11Clipboard(self.env, name)
        return self._selections[name]

    def paste(self, text: str, clear: bool = False) -> None:
        self.last_route = selection_name, key = paste_route(self.desktop.focused_class())
        selection = self._selection(selection_name)
        saved = selection.snapshot() if self.cfg.paste_restore else None
        generation = selection.offer(ClipboardContent.text(text))
        t0 = time.perf_counter()
        self.typer.key(key, clear)
        landed = selection.wait_taken(generation, self.cfg.paste_timeout_s)
        self.last_latency_s = time.perf_counter() - t0
        self.last_restored = None
        if saved is not None:
            self.last_restored = selection.restore(saved, generation)
            if not self.last_restored:
                log.info("%s changed during the paste: not restoring the previous content", selection_name)
        if not landed:
            raise OutputError(f"the focused window did not take the pasted text within "
                              f"{self.cfg.paste_timeout_s:g} s (is a text field focused?)")

    def close(self) -> None:
        for selection in self._selections.values():
            selection.close()


class X11PasteSink:
    """Committed text through the clipboard and the paste key; BackSpaces through xdotool."""

    name = "clipboard"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.typer = XdotoolTyper(env, cfg.typing_delay_ms, cfg.fast_ascii)
        self.desktop = X11Desktop(env)
        self.paster = X11Paster(cfg, env, self.typer, self.desktop)
        self.guard = ModifierGuard(self.desktop.modifiers_down, cfg.modifier_wait_s)

    def emit(self, delete_chars: int, text: str) -> None:
        if delete_chars <= 0 and not text:
            return
        self.guard.wait()  # never with the hotkey's modifiers still held
        if delete_chars > 0:
            self.typer.backspace(delete_chars)
        if text:
            self.paster.paste(text)

    def close(self) -> None:
        self.guard.close()
        self.paster.close()
        self.desktop.close()
