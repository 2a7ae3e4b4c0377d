"""Typing on Windows: SendInput with KEYEVENTF_UNICODE, through ctypes.

Each UTF-16 code unit goes as a key-down/key-up pair with the unit in wScan, so characters
outside the BMP (emoji) are sent as their surrogate pair and the window receives both halves as
WM_CHAR. Newline and tab go as the Return and Tab keys, which every control understands."""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Mapping

from dictate.config import OutputConfig
from dictate.errors import OutputError
from dictate.output.base import utf16_units
from dictate.output.modifiers import ModifierGuard

log = logging.getLogger(__name__)

INPUT_KEYBOARD = 1
KEYEVENTF_KEYUP = 0x0002
KEYEVENTF_UNICODE = 0x0004
VK_BACK, VK_TAB, VK_RETURN = 0x08, 0x09, 0x0D
VK_SHIFT, VK_CONTROL, VK_MENU, VK_LWIN, VK_RWIN = 0x10, 0x11, 0x12, 0x5B, 0x5C
_BATCH = 256  # inputs per SendInput call


# Fixed-width types so the layout matches Windows on any platform (and can be unit-tested).
class KEYBDINPUT(ctypes.Structure):
    _fields_ = [("wVk", ctypes.c_uint16), ("wScan", ctypes.c_uint16), ("dwFlags", ctypes.c_uint32),
                ("time", ctypes.c_uint32), ("dwExtraInfo", ctypes.c_size_t)]


class MOUSEINPUT(ctypes.Structure):
    _fields_ = [("dx", ctypes.c_int32), ("dy", ctypes.c_int32), ("mouseData", ctypes.c_uint32),
                ("dwFlags", ctypes.c_uint32), ("time", ctypes.c_uint32), ("dwExtraInfo", ctypes.c_size_t)]


class HARDWAREINPUT(ctypes.Structure):
    _fields_ = [("uMsg", ctypes.c_uint32), ("wParamL", ctypes.c_uint16), ("wParamH", ctypes.c_uint16)]


class _INPUTUNION(ctypes.Union):
    _fields_ = [("ki", KEYBDINPUT), ("mi", MOUSEINPUT), ("hi", HARDWAREINPUT)]


class INPUT(ctypes.Structure):
    _anonymous_ = ("u",)
    _fields_ = [("type", ctypes.c_uint32), ("u", _INPUTUNION)]


def _key(vk: int = 0, scan: int = 0, flags: int = 0) -> INPUT:
    return INPUT(type=INPUT_KEYBOARD, ki=KEYBDINPUT(wVk=vk, wScan=scan, dwFlags=flags, time=0, dwExtraInfo=0))


def modifiers_down(user32=None) -> bool:  # pragma: no cover - Windows only
    """Shift, Ctrl, Alt or a Windows key held: the high bit of GetAsyncKeyState."""
    if user32 is None:
        user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        user32.GetAsyncKeyState.argtypes = (ctypes.c_int,)
        user32.GetAsyncKeyState.restype = ctypes.c_short
    return any(user32.GetAsyncKeyState(vk) & 0x8000 for vk in (VK_SHIFT, VK_CONTROL, VK_MENU, VK_LWIN, VK_RWIN))


def key_inputs(delete_chars: int, text: str) -> list[INPUT]:
    """The INPUT records for `delete_chars` BackSpaces followed by `text`."""
    out: list[INPUT] = []
    for _ in range(max(0, delete_chars)):
        out += [_key(VK_BACK), _key(VK_BACK, flags=KEYEVENTF_KEYUP)]
    for ch in text:
        if ch in "\n\t":
            vk = VK_RETURN if ch == "\n" else VK_TAB
            out += [_key(vk), _key(vk, flags=KEYEVENTF_KEYUP)]
            continue
        for unit in utf16_units(ch):
            out += [_key(scan=unit, flags=KEYEVENTF_UNICODE),
                    _key(scan=unit, flags=KEYEVENTF_UNICODE | KEYEVENTF_KEYUP)]
    return out


class WindowsSink:
    name = "windows"

    def __init__(self, cfg: OutputConfig, env: Mapping[str, str]) -> None:
        if sys.platform != "win32":
            raise OutputError("the windows backend works on Windows only")
        self.user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined]
        self.user32.SendInput.argtypes = (ctypes.c_uint, ctypes.POINTER(INPUT), ctypes.c_int)
        self.user32.SendInput.restype = ctypes.c_uint
        self.user32.GetAsyncKeyState.argtypes = (ctypes.c_int,)
        self.user32.GetAsyncKeyState.restype = ctypes.c_short
        self.guard = ModifierGuard(self.modifiers_down, cfg.modifier_wait_s)

    def modifiers_down(self) -> bool:
        return modifiers_down(self.user32)

    def emit(self, delete_chars: int, text: str) -> None:
        self.guard.wait()
        inputs = key_inputs(delete_chars, text)
        for i in range(0, len(inputs), _BATCH):
            batch = inputs[i:i + _BATCH]
            array = (INPUT * len(batch))(*batch)
            sent = self.user32.SendInput(len(batch), array, ctypes.sizeof(INPUT))
            if sent != len(batch):
                # UIPI blocks input into windows of a higher integrity level (an elevated program).
                raise OutputError(f"SendInput typed {sent} of {len(batch)} keys (error "
                                  f"{ctypes.get_last_error()}): is the focused program running as administrator?")

    def close(self) -> None:
        self.guard.close()
