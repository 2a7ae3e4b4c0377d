"""X11 global hotkeys: XGrabKey on the root window (python-xlib), read on a thread of their own.

A passive grab makes the server send us the chord's key press and, while that key is held, every
key event (so a modifier let go first ends push-to-talk too); the focused window sees none of them.
Each chord is grabbed once per combination of the lock modifiers (CapsLock, NumLock, ScrollLock),
which the server otherwise counts as part of the chord. The modifier guard (is a modifier held?)
is dictate.output.modifiers', re-exported by this package."""

from __future__ import annotations

import itertools
import logging
import os
import select
import threading
from typing import Callable

from dictate.hotkeys.base import HotkeyBindings, HotkeyError, HotkeyListener
from dictate.hotkeys.chords import MODIFIERS, KeyEvent, modifier_of
from dictate.types import Command, RecordingMode

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 5.0
# How long a release waits for the press that would make it an autorepeat. The server writes the
# pair back to back, so this only delays a real release by a few milliseconds in practice.
REPEAT_WINDOW_S = 0.03


def _xlib():
    try:
        from Xlib import X, XK, display, error
    except ImportError as exc:
        raise HotkeyError("hotkeys: python-xlib is missing (pip install python-xlib)") from exc
    return X, XK, display, error


def _open(name: str | None):
    _, _, display, error = _xlib()
    name = name if name is not None else os.environ.get("DISPLAY", "")
    if not name:
        raise HotkeyError("hotkeys: no X display (DISPLAY is unset)")
    try:
        return display.Display(name)
    except (error.DisplayError, error.ConnectionClosedError, OSError) as exc:
        raise HotkeyError(f"hotkeys: cannot open the X display {name}: {exc}") from None


_KEYSYM_NAMES: dict[int, str] = {}


def _keysym_name(keysym: int) -> str:
    """"Alt_L" for XK_Alt_L: python-xlib only turns keysyms into characters, not into names."""
    if not _KEYSYM_NAMES:
        _, XK, _, _ = _xlib()
        for name, value in vars(XK).items():
            if name.startswith("XK_") and isinstance(value, int):
                _KEYSYM_NAMES.setdefault(value, name[3:])
    return _KEYSYM_NAMES.get(keysym, "")


def _modifier_layout(d) -> tuple[dict[str, int], dict[int, str], list[int]]:
    """Masks per canonical modifier, modifier name per keycode, and the lock masks (Caps, Num,
    Scroll) in use, read from the server's modifier mapping (Alt and Super sit on Mod1..Mod5
    wherever the keymap puts them)."""
    X, _, _, _ = _xlib()
    masks = {"shift": X.ShiftMask, "ctrl": X.ControlMask}
    by_keycode: dict[int, str] = {}
    locks = [X.LockMask]
    mod_masks = [X.ShiftMask, X.LockMask, X.ControlMask, X.Mod1Mask, X.Mod2Mask, X.Mod3Mask, X.Mod4Mask, X.Mod5Mask]
    for index, keycodes in enumerate(d.get_modifier_mapping()):
        for keycode in keycodes:
            if not keycode:
                continue
            name = _keysym_name(d.keycode_to_keysym(keycode, 0))
            modifier = modifier_of(name) if name.lower() not in ("caps_lock", "shift_lock") else None
            if name in ("Hyper_L", "Hyper_R"):
                modifier = "super"
            if modifier is not None:
                by_keycode[keycode] = modifier
                if index >= 3:
                    masks.setdefault(modifier, mod_masks[index])
            elif name in ("Num_Lock", "Scroll_Lock") and mod_masks[index] not in locks:
                locks.append(mod_masks[index])
    return masks, by_keycode, locks


class X11HotkeyListener(HotkeyListener):
    backend = "x11"

    def __init__(self, bindings: HotkeyBindings, mode: RecordingMode, put: Callable[[Command], None],
                 *, display: str | None = None) -> None:
        super().__init__(bindings, mode, put)
        self.display_name = display if display is not None else os.environ.get("DISPLAY", "")
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: HotkeyError | None = None
        self._wake_r, self._wake_w = -1, -1
        self._stopping = False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="hotkeys-x11", daemon=True)
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT_S):
            self.stop()
            raise HotkeyError(f"hotkeys: the X display {self.display_name} did not answer")
        if self._error is not None:
            error = self._error
            self.stop()
            raise error
        log.info("hotkeys: X11 grabs on %s: %s", self.display_name, ", ".join(map(str, self.chords)))

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        thread.join(timeout=5)
        if thread.is_alive():  # pragma: no cover - a wedged X connection
            log.warning("hotkeys: the X11 thread did not stop")
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._wake_r = self._wake_w = -1

    # --- on the hotkeys-x11 thread only -------------------------------------------------------

    def _run(self) -> None:
        try:
            d = _open(self.display_name)
        except HotkeyError as exc:
            self._error = exc
            self._ready.set()
            return
        grabs: list[tuple[int, int]] = []
        try:
            try:
                keycodes, mods_by_keycode = self._grab(d, grabs)
            except HotkeyError as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            self._loop(d, keycodes, mods_by_keycode)
        except Exception:
            log.exception("hotkeys: the X11 listener failed; hotkeys are off until restart")
        finally:
            try:
                root = d.screen().root
                for keycode, mask in grabs:
                    root.ungrab_key(keycode, mask)
                d.sync()
            except Exception:  # the connection may be gone; the server drops our grabs with it
                pass
            try:
                d.close()
            except Exception:
                pass

    def _grab(self, d, grabs: list[tuple[int, int]]) -> tuple[dict[int, str], dict[int, str]]:
        X, XK, _, error = _xlib()
        masks, mods_by_keycode, locks = _modifier_layout(d)
        root = d.screen().root
        keycodes: dict[int, str] = {}
        lock_combos = [sum(c) for n in range(len(locks) + 1) for c in itertools.combinations(locks, n)]
        for chord in self.chords:
            keycode = d.keysym_to_keycode(XK.string_to_keysym(chord.keysym_name))
            if not keycode:
                raise HotkeyError(f"hotkeys: {chord} has no key on this keyboard layout; choose another")
            missing = [m for m in chord.modifiers if m not in masks]
            if missing:
                raise HotkeyError(f"hotkeys: {chord}: this keyboard layout has no {missing[0]} modifier; "
                                  "choose another hotkey")
            base = sum(masks[m] for m in chord.modifiers)
            caught = error.CatchError(error.BadAccess)
            mine = []
            for extra in lock_combos:
                root.grab_key(keycode, base | extra, False, X.GrabModeAsync, X.GrabModeAsync, onerror=caught)
                mine.append((keycode, base | extra))
            d.sync()
            if caught.get_error() is not None:
                for kc, mask in mine:
                    root.ungrab_key(kc, mask)
                d.sync()
                raise HotkeyError(f"hotkeys: {chord} is already taken by another program (X11 BadAccess); "
                                  "free it there, or choose another hotkey in the settings")
            grabs.extend(mine)
            keycodes[keycode] = chord.key
        self._masks = masks
        return keycodes, mods_by_keycode

    def _loop(self, d, keycodes: dict[int, str], mods_by_keycode: dict[int, str]) -> None:
        X, _, _, _ = _xlib()
        fd = d.fileno()
        while not self._stopping:
            count = d.pending_events()
            if count == 0:
                timeout = REPEAT_WINDOW_S if self.machine.waiting else None
                ready, _, _ = select.select([fd, self._wake_r], [], [], timeout)
                if self._wake_r in ready:
                    return
                if not ready:
                    self._flush()
                continue
            for _ in range(count):
                event = d.next_event()
                if event.type not in (X.KeyPress, X.KeyRelease):
                    continue
                key = keycodes.get(event.detail) or mods_by_keycode.get(event.detail)
                if key is None:
                    continue  # another key pressed while our chord holds the keyboard
                state = frozenset(m for m in MODIFIERS if m in self._masks and event.state & self._masks[m])
                self._feed(KeyEvent(key, event.type == X.KeyPress, int(event.time), state))
