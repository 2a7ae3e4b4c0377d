"""What every hotkey backend shares: the bindings it is given, its error, and the listener shape."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from dictate.errors import DictateError
from dictate.hotkeys.chords import Binding, Chord, ChordMachine, KeyEvent, bindings_for, parse_binding
from dictate.types import Command, RecordingMode

log = logging.getLogger(__name__)


class HotkeyError(DictateError):
    """A global hotkey could not be set up: key taken by another program, no display, no portal."""


@dataclass(frozen=True)
class HotkeyBindings:
    """The chords as written in the config: `dictate` (push-to-talk or toggle) and `cancel`
    (None or "" for no cancel chord)."""

    dictate: str
    cancel: str | None = None

    def chords(self) -> tuple[Chord, Chord | None]:
        dictate = parse_binding(self.dictate, "[hotkeys] dictate")
        cancel = parse_binding(self.cancel, "[hotkeys] cancel") if self.cancel else None
        return dictate, cancel


class HotkeyListener:
    """Listens for the bindings on its own thread and puts Commands through `put`; nothing else.
    `start()` returns once the keys are really taken (or raises HotkeyError); `stop()` gives them
    back and joins the thread. Subclasses translate their platform's events into `_feed`."""

    backend = "none"

    def __init__(self, bindings: HotkeyBindings, mode: RecordingMode, put: Callable[[Command], None]) -> None:
        self.bindings = bindings
        self.mode = mode
        self._put = put
        dictate, cancel = bindings.chords()  # a bad binding fails here, before any thread starts
        self._binding_list: list[Binding] = bindings_for(dictate, mode, cancel)
        self.machine = ChordMachine(self._binding_list)

    @property
    def chords(self) -> list[Chord]:
        return [b.chord for b in self._binding_list]

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _emit(self, commands: list[Command]) -> None:
        for command in commands:
            log.debug("hotkey: %s", command.kind.value)
            try:
                self._put(command)
            except Exception:  # the queue's owner failing must not kill the listener thread
                log.exception("hotkeys: could not hand over %s", command.kind.value)

    def _feed(self, event: KeyEvent) -> None:
        self._emit(self.machine.feed(event))

    def _flush(self) -> None:
        self._emit(self.machine.flush())
