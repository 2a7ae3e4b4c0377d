"""Clipboard + paste key on X11: exact for every character and fast for long text.

The previous clipboard (every target it held) is saved, our text is offered, the paste key is
sent, and the previous content is put back only once the focused window has fetched our text
(its SelectionRequest was served) - never on a timer - and only if nobody else took the
clipboard meanwhile. Terminals get Ctrl+Shift+V; the few with no CLIPBOARD paste key are typed
into instead."""

from __future__ import annotations

import logging
import time
from typing import Mapping

from dictate.config import OutputConfig
from dictate.errors import OutputError
from dictate.output.x11 import X11Desktop, is_terminal, lacks_clipboard_paste_key
from dictate.output.xclipboard import ClipboardContent, X11Clipboard
from dictate.output.xdotool import XdotoolTyper

log = logging.getLogger(__name__)


def paste_keys(wm_class: tuple[str, str] | None) -> str:
    return "ctrl+shift+v" if is_terminal(wm_class) else "ctrl+v"


class X11Paster:
    """Pastes one piece of text into the focused window and restores the clipboard after it."""

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str], typer: XdotoolTyper,
                 desktop: X11Desktop) -> None:
        self.cfg = cfg
        self.typer = typer
        self.desktop = desktop
        self.clipboard = X11Clipboard(env)
        self.last_latency_s = 0.0  # paste key sent -> text fetched by the window (for benchmarks)
        self.last_restored: bool | None = None

    def paste(self, text: str, clear: bool = False) -> None:
        wm_class = self.desktop.focused_class()
        if lacks_clipboard_paste_key(wm_class):
            log.debug("%s has no clipboard paste key: typing instead", wm_class)
            self.typer.type_text(text, clear)
            return
        saved = self.clipboard.snapshot() if self.cfg.paste_restore else None
        generation = self.clipboard.offer(ClipboardContent.text(text))
        t0 = time.perf_counter()
        self.typer.key(paste_keys(wm_class), clear)
        landed = self.clipboard.wait_taken(generation, self.cfg.paste_timeout_s)
        self.last_latency_s = time.perf_counter() - t0
        self.last_restored = None
        if saved is not None:
            self.last_restored = self.clipboard.restore(saved, generation)
            if not self.last_restored:
                log.info("clipboard changed during the paste: not restoring the previous content")
        if not landed:
            raise OutputError(f"the focused window did not take the pasted text within "
                              f"{self.cfg.paste_timeout_s:g} s (is a text field focused?)")

    def close(self) -> None:
        self.clipboard.close()


class X11PasteSink:
    """Committed text through the clipboard and the paste key; BackSpaces through xdotool."""

    name = "clipboard"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.typer = XdotoolTyper(env, cfg.typing_delay_ms, cfg.fast_ascii)
        self.desktop = X11Desktop(env)
        self.paster = X11Paster(cfg, env, self.typer, self.desktop)

    def emit(self, delete_chars: int, text: str) -> None:
        if delete_chars <= 0 and not text:
            return
        clear = not self.desktop.wait_modifiers_released(self.cfg.modifier_wait_s)
        if delete_chars > 0:
            self.typer.backspace(delete_chars, clear)
        if text:
            self.paster.paste(text, clear)

    def close(self) -> None:
        self.paster.close()
        self.desktop.close()
