"""Typing on macOS: Quartz keyboard events carrying a Unicode string, through ctypes (no PyObjC).

CGEventKeyboardSetUnicodeString takes at most 20 UTF-16 units per event, so text is sent in
pieces that never split a surrogate pair. The app needs the Accessibility permission (System
Settings > Privacy & Security > Accessibility), or the events are silently dropped."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Mapping

from dictate.config import OutputConfig
from dictate.errors import OutputError
from dictate.output.base import chunk_utf16, utf16_units
from dictate.output.modifiers import ModifierGuard

log = logging.getLogger(__name__)

MAX_UNITS_PER_EVENT = 20
KVK_DELETE = 51  # the Backspace key
KVK_RETURN = 36
K_CG_HID_EVENT_TAP = 0
K_CG_EVENT_SOURCE_STATE_COMBINED = 0
_MODIFIER_FLAGS = 0x20000 | 0x40000 | 0x80000 | 0x100000  # shift, control, option, command
_FRAMEWORK = "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"


def modifiers_down(cg=None) -> bool:  # pragma: no cover - macOS only
    """Shift, Control, Option or Command held (CGEventSourceFlagsState, combined session state)."""
    if cg is None:
        cg = ctypes.cdll.LoadLibrary(ctypes.util.find_library("ApplicationServices") or _FRAMEWORK)
        cg.CGEventSourceFlagsState.argtypes = (ctypes.c_int32,)
        cg.CGEventSourceFlagsState.restype = ctypes.c_uint64
    return bool(cg.CGEventSourceFlagsState(K_CG_EVENT_SOURCE_STATE_COMBINED) & _MODIFIER_FLAGS)


def pieces(text: str) -> list[str]:
    """Text as the units of one event each; newlines become their own piece (sent as Return)."""
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append("\n")
        out += chunk_utf16(line, MAX_UNITS_PER_EVENT)
    return out


class MacSink:
    name = "macos"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        if sys.platform != "darwin":
            raise OutputError("the macos backend works on macOS only")
        try:
            cg = ctypes.cdll.LoadLibrary(ctypes.util.find_library("ApplicationServices") or _FRAMEWORK)
            cf = ctypes.cdll.LoadLibrary(ctypes.util.find_library("CoreFoundation")
                                         or "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation")
        except OSError as exc:
            raise OutputError(f"cannot load Quartz (ApplicationServices): {exc}") from exc
        cg.CGEventCreateKeyboardEvent.argtypes = (ctypes.c_void_p, ctypes.c_uint16, ctypes.c_bool)
        cg.CGEventCreateKeyboardEvent.restype = ctypes.c_void_p
        cg.CGEventKeyboardSetUnicodeString.argtypes = (ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_uint16))
        cg.CGEventKeyboardSetUnicodeString.restype = None
        cg.CGEventPost.argtypes = (ctypes.c_uint32, ctypes.c_void_p)
        cg.CGEventPost.restype = None
        cg.CGEventSourceFlagsState.argtypes = (ctypes.c_int32,)
        cg.CGEventSourceFlagsState.restype = ctypes.c_uint64
        cf.CFRelease.argtypes = (ctypes.c_void_p,)
        cf.CFRelease.restype = None
        self.cg, self.cf = cg, cf
        self.guard = ModifierGuard(self.modifiers_down, cfg.modifier_wait_s)

    def modifiers_down(self) -> bool:
        return modifiers_down(self.cg)

    def _post(self, keycode: int, units: list[int] | None) -> None:
        for down in (True, False):
            event = self.cg.CGEventCreateKeyboardEvent(None, keycode, down)
            if not event:
                raise OutputError("macOS refused to create a keyboard event")
            if units:
                array = (ctypes.c_uint16 * len(units))(*units)
                self.cg.CGEventKeyboardSetUnicodeString(event, len(units), array)
            self.cg.CGEventPost(K_CG_HID_EVENT_TAP, event)
            self.cf.CFRelease(event)

    def emit(self, delete_chars: int, text: str) -> None:
        self.guard.wait()
        for _ in range(max(0, delete_chars)):
            self._post(KVK_DELETE, None)
        for piece in pieces(text):
            if piece == "\n":
                self._post(KVK_RETURN, None)
            else:
                self._post(0, utf16_units(piece))

    def close(self) -> None:
        self.guard.close()
