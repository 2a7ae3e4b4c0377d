"""Typing committed text into the focused window.

    sink = create_sink(cfg)            # the backend for this desktop, or [output] backend
    sink.emit(0, "Grüße 漢字 🎤")      # may block: call it from the output thread
    sink.emit(3, "")                   # three BackSpaces (corrections, cancel)
    sink.close()

`choose_backend(cfg)` says which backend would be used and why (for `dictate doctor`);
`modifiers_down()` / `wait_modifiers_released()` are the modifier guard the sinks apply before
typing (dictate.output.modifiers; the hotkeys package re-exports them)."""

from dictate.output.base import BackendChoice, OutputSink
from dictate.output.choose import BACKENDS, choose_backend, create_sink
from dictate.output.stdout import StreamSink
from dictate.output.modifiers import ModifierGuard, modifiers_down, wait_modifiers_released

__all__ = ["BACKENDS", "BackendChoice", "ModifierGuard", "OutputSink", "StreamSink", "choose_backend", "create_sink",
           "modifiers_down", "wait_modifiers_released"]
