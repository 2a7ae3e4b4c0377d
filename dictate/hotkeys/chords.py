"""Key chords: the binding syntax of the config file, and a pure state machine that turns key
down/up events into Commands. Backends (X11, portal, pynput) only translate their events into
`KeyEvent`s; every decision about presses, releases and autorepeat is made here, where it can be
tested without a keyboard."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from dictate.errors import ConfigError
from dictate.types import Command, CommandKind, RecordingMode

MODIFIERS = ("ctrl", "alt", "shift", "super")  # canonical order, also the order they are written in

_MODIFIER_ALIASES = {
    "ctrl": "ctrl", "control": "ctrl", "ctl": "ctrl",
    "alt": "alt", "option": "alt", "opt": "alt",
    "shift": "shift",
    "super": "super", "win": "super", "windows": "super", "cmd": "super", "command": "super",
    "meta": "super", "logo": "super",
}

# Canonical key name -> X keysym name (also the xkbcommon name the GlobalShortcuts portal takes).
_NAMED_KEYS = {
    "space": "space", "backspace": "BackSpace", "escape": "Escape", "return": "Return", "tab": "Tab",
    "delete": "Delete", "insert": "Insert", "home": "Home", "end": "End", "page_up": "Prior",
    "page_down": "Next", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "pause": "Pause", "print": "Print", "menu": "Menu",
    "minus": "minus", "equal": "equal", "comma": "comma", "period": "period", "slash": "slash",
    "semicolon": "semicolon", "apostrophe": "apostrophe", "bracketleft": "bracketleft",
    "bracketright": "bracketright", "backslash": "backslash", "grave": "grave",
}
_NAMED_KEYS.update({f"f{n}": f"F{n}" for n in range(1, 25)})
_NAMED_KEYS.update({c: c for c in string.ascii_lowercase + string.digits})

# Keys that may be a hotkey on their own (or with Shift): they type nothing and move nothing.
_BARE_KEYS = frozenset({f"f{n}" for n in range(1, 25)} | {"pause", "print", "menu", "insert"})

_KEY_ALIASES = {
    "esc": "escape", "enter": "return", "back_space": "backspace", "bksp": "backspace", "del": "delete",
    "ins": "insert", "prior": "page_up", "pageup": "page_up", "pgup": "page_up", "next": "page_down",
    "pagedown": "page_down", "pgdn": "page_down", "print_screen": "print", "prtsc": "print",
    "spacebar": "space", "-": "minus", "=": "equal", ",": "comma", ".": "period", "/": "slash",
    ";": "semicolon", "'": "apostrophe", "[": "bracketleft", "]": "bracketright", "\\": "backslash",
    "`": "grave",
}

EXAMPLES = '"<ctrl>+<alt>+space", "<super>+d" or "F9"'


@dataclass(frozen=True)
class Chord:
    """Modifiers held plus one key pressed. `key` is a canonical name (lower case: "space", "f9", "d")."""

    modifiers: frozenset[str]
    key: str

    @property
    def keysym_name(self) -> str:
        """The X keysym (and xkbcommon) name of the key, e.g. "BackSpace", "F9"."""
        return _NAMED_KEYS[self.key]

    def portal_trigger(self) -> str:
        """The chord in the XDG shortcuts syntax the GlobalShortcuts portal takes: "CTRL+ALT+space"."""
        names = {"ctrl": "CTRL", "alt": "ALT", "shift": "SHIFT", "super": "LOGO"}
        return "+".join([names[m] for m in MODIFIERS if m in self.modifiers] + [self.keysym_name])

    def __str__(self) -> str:
        key = self.key if len(self.key) == 1 else f"<{self.key}>"
        return "+".join([f"<{m}>" for m in MODIFIERS if m in self.modifiers] + [key])


def parse_binding(text: str, setting: str = "[hotkeys] dictate") -> Chord:
    """`"<ctrl>+<alt>+space"`, `"<super>+d"`, `"F9"`: modifiers and one key joined by "+", any case,
    angle brackets optional. Raises ConfigError naming the setting, the problem and examples."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{setting} = {text!r}: {why}; write it like {EXAMPLES}")

    if not isinstance(text, str) or not text.strip():
        raise bad("empty hotkey")
    modifiers: set[str] = set()
    key: str | None = None
    for raw in text.split("+"):
        token = raw.strip().lower()
        if token.startswith("<") and token.endswith(">"):
            token = token[1:-1].strip()
        if not token:
            raise bad("a part between '+' signs is empty")
        if token in _MODIFIER_ALIASES:
            modifier = _MODIFIER_ALIASES[token]
            if modifier in modifiers:
                raise bad(f"{modifier} is named twice")
            modifiers.add(modifier)
            continue
        name = _KEY_ALIASES.get(token, token)
        if name not in _NAMED_KEYS:
            raise bad(f"unknown key {raw.strip()!r}")
        if key is not None:
            raise bad("only one key besides the modifiers (ctrl, alt, shift, super)")
        key = name
    if key is None:
        raise bad("modifiers alone are not a hotkey, add a key")
    if key not in _BARE_KEYS and not modifiers & {"ctrl", "alt", "super"}:
        # A grabbed key that types text or moves the cursor would be taken from every window, and
        # the dictated text itself could press it.
        raise bad(f"{raw_key(key)!r} is used for typing: add ctrl, alt or super, or use a key such as F9")
    return Chord(frozenset(modifiers), key)


def raw_key(name: str) -> str:
    return name if len(name) == 1 else name.replace("_", " ")


def canonical_key(name: str) -> str | None:
    """Canonical key name for a backend's name ("esc", "Page_Up", "F9", "a"), else None."""
    token = name.strip().lower()
    token = _KEY_ALIASES.get(token, token)
    return token if token in _NAMED_KEYS else None


def modifier_of(name: str) -> str | None:
    """Canonical modifier for a key name from a backend ("Control_R", "alt_l", "cmd" …), else None."""
    base = name.lower().removesuffix("_l").removesuffix("_r").removesuffix("_gr")
    return _MODIFIER_ALIASES.get(base)


@dataclass(frozen=True)
class KeyEvent:
    """One key going down or up. `key` is a canonical key name or a modifier ("ctrl").
    `time_ms` is the server's timestamp when the backend has one (X11: an autorepeat is a release
    and a press of the same key with the same timestamp). `modifiers` is the modifier state at the
    event when the backend reports it (X11 does; the modifier presses themselves went elsewhere)."""

    key: str
    down: bool
    time_ms: int | None = None
    modifiers: frozenset[str] | None = None


@dataclass(frozen=True)
class Binding:
    chord: Chord
    on_press: CommandKind
    on_release: CommandKind | None = None  # push-to-talk only


def bindings_for(dictate: Chord, mode: RecordingMode, cancel: Chord | None) -> list[Binding]:
    if mode is RecordingMode.PUSH_TO_TALK:
        out = [Binding(dictate, CommandKind.PTT_DOWN, CommandKind.PTT_UP)]
    else:
        out = [Binding(dictate, CommandKind.TOGGLE)]
    if cancel is not None:
        if cancel == dictate:
            raise ConfigError(f"[hotkeys] cancel = {str(cancel)!r} is the same as [hotkeys] dictate; "
                              "choose another, or set cancel = \"\" for none")
        out.append(Binding(cancel, CommandKind.CANCEL))
    return out


@dataclass
class ChordMachine:
    """Key events in, Commands out. A chord fires when its key goes down while exactly its modifiers
    are held; push-to-talk then ends (PTT_UP) when ANY key of the chord goes up. Repeated presses
    of a held key (autorepeat) fire nothing. A release carrying a timestamp is held back until the
    next event: a press of the same key at the same time means autorepeat and both are dropped.
    The backend calls `flush()` when no event follows soon (`waiting` says one is held back)."""

    bindings: Sequence[Binding]
    autorepeats: int = 0  # repeats recognised and dropped (tests read it to know repeats happened)
    _held: set[str] = field(default_factory=set)
    _active: set[int] = field(default_factory=set)
    _pending: KeyEvent | None = None

    @property
    def waiting(self) -> bool:
        return self._pending is not None

    def feed(self, event: KeyEvent) -> list[Command]:
        pending = self._pending
        if (event.down and pending is not None and pending.key == event.key
                and pending.time_ms is not None and pending.time_ms == event.time_ms):
            self._pending = None
            self.autorepeats += 1
            return []
        out = self.flush()
        if not event.down and event.time_ms is not None and event.key in self._held \
                and any(b.chord.key == event.key for b in self.bindings):
            self._pending = event
            return out
        return out + (self._down(event) if event.down else self._up(event))

    def feed_all(self, events: Iterable[KeyEvent]) -> list[Command]:
        out: list[Command] = []
        for event in events:
            out.extend(self.feed(event))
        return out + self.flush()

    def flush(self) -> list[Command]:
        pending, self._pending = self._pending, None
        return self._up(pending) if pending is not None else []

    def reset(self) -> None:
        """Forget held keys (a backend lost track, e.g. after its grab was broken)."""
        self._held.clear()
        self._active.clear()
        self._pending = None

    def _down(self, event: KeyEvent) -> list[Command]:
        if event.modifiers is not None:
            self._held = {k for k in self._held if k not in MODIFIERS} | set(event.modifiers)
        if event.key in self._held:
            if any(b.chord.key == event.key for b in self.bindings):
                self.autorepeats += 1
            return []
        self._held.add(event.key)
        mods = self._held & set(MODIFIERS)
        for i, b in enumerate(self.bindings):
            if i not in self._active and b.chord.key == event.key and b.chord.modifiers == mods:
                self._active.add(i)
                return [Command(b.on_press)]
        return []

    def _up(self, event: KeyEvent) -> list[Command]:
        self._held.discard(event.key)
        out = []
        for i in sorted(self._active):
            b = self.bindings[i]
            if event.key == b.chord.key or event.key in b.chord.modifiers:
                self._active.discard(i)
                if b.on_release is not None:
                    out.append(Command(b.on_release))
        return out
