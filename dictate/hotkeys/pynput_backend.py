"""Windows and macOS global hotkeys through pynput (imported only when used). pynput watches the
keyboard without taking the keys, so the chord also reaches the focused window; on macOS the app
needs the Accessibility (Input Monitoring) permission in System Settings."""

from __future__ import annotations

import logging
from typing import Callable

from dictate.hotkeys.base import HotkeyBindings, HotkeyError, HotkeyListener
from dictate.hotkeys.chords import KeyEvent, canonical_key, modifier_of
from dictate.types import Command, RecordingMode

log = logging.getLogger(__name__)


class PynputHotkeyListener(HotkeyListener):
    backend = "pynput"

    def __init__(self, bindings: HotkeyBindings, mode: RecordingMode, put: Callable[[Command], None]) -> None:
        super().__init__(bindings, mode, put)
        self._listener = None

    def start(self) -> None:
        if self._listener is not None:
            return
        try:
            from pynput import keyboard
        except Exception as exc:  # ImportError, or no backend for this system
            raise HotkeyError(f"hotkeys: pynput is unusable here ({exc}); pip install pynput") from None
        self._keyboard = keyboard
        listener = keyboard.Listener(on_press=self._on_press, on_release=self._on_release)
        listener.name = "hotkeys-pynput"  # a threading.Thread; its callbacks run on it
        listener.daemon = True
        self._listener = listener
        listener.start()
        listener.wait()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            listener.join(timeout=5)

    def _name(self, key) -> str | None:
        listener = self._listener
        if listener is not None:
            key = listener.canonical(key)  # without the modifiers' effect (Alt+a is "a", not "å")
        if isinstance(key, self._keyboard.Key):
            return modifier_of(key.name) or canonical_key(key.name)
        char = getattr(key, "char", None)
        return canonical_key(char) if char else None

    def _on_press(self, key) -> None:
        name = self._name(key)
        if name is not None:
            self._feed(KeyEvent(name, True))

    def _on_release(self, key) -> None:
        name = self._name(key)
        if name is not None:
            self._feed(KeyEvent(name, False))
