"""Pure logic of global hotkeys: the binding syntax, the chord state machine (push-to-talk,
toggle, cancel, autorepeat in both of X11's forms) and the backend choice."""

from __future__ import annotations

import pytest

from dictate.config import Config
from dictate.errors import ConfigError
from dictate.hotkeys import (ChordMachine, HotkeyBindings, KeyEvent, bindings_for, create_listener, parse_binding,
                             support)
from dictate.hotkeys.chords import Chord
from dictate.types import CommandKind, RecordingMode

CTRL_ALT = frozenset({"ctrl", "alt"})


@pytest.mark.parametrize("text, modifiers, key", [
    ("<ctrl>+<alt>+space", {"ctrl", "alt"}, "space"),
    ("<CTRL>+<Alt>+SPACE", {"ctrl", "alt"}, "space"),
    ("ctrl + alt + <space>", {"ctrl", "alt"}, "space"),
    ("<super>+d", {"super"}, "d"),
    ("<cmd>+D", {"super"}, "d"),
    ("F9", set(), "f9"),
    ("<f12>", set(), "f12"),
    ("<control>+<shift>+esc", {"ctrl", "shift"}, "escape"),
    ("<ctrl>+<alt>+<backspace>", {"ctrl", "alt"}, "backspace"),
    ("<alt>+Page_Up", {"alt"}, "page_up"),
    ("<ctrl>+-", {"ctrl"}, "minus"),
    ("<win>+1", {"super"}, "1"),
    ("<shift>+F9", {"shift"}, "f9"),
    ("Pause", set(), "pause"),
])
def test_parse_binding_accepts_the_documented_forms(text: str, modifiers: set[str], key: str) -> None:
    chord = parse_binding(text)
    assert chord == Chord(frozenset(modifiers), key)
    assert parse_binding(str(chord)) == chord  # the canonical form reads back


def test_chord_names_for_x11_and_the_portal() -> None:
    assert parse_binding("<ctrl>+<alt>+space").portal_trigger() == "CTRL+ALT+space"
    assert parse_binding("<super>+<shift>+backspace").portal_trigger() == "SHIFT+LOGO+BackSpace"
    assert parse_binding("f9").keysym_name == "F9"
    assert str(parse_binding("alt+ctrl+Space")) == "<ctrl>+<alt>+<space>"


@pytest.mark.parametrize("text, why", [
    ("", "empty hotkey"),
    ("   ", "empty hotkey"),
    ("<ctrl>+<alt>", "modifiers alone"),
    ("<ctrl>+foo", "unknown key 'foo'"),
    ("<ctrl>++space", "empty"),
    ("<ctrl>+a+b", "only one key"),
    ("<ctrl>+<ctrl>+a", "ctrl is named twice"),
    ("<hyperdrive>+a", "unknown key"),
    ("space", "'space' is used for typing"),
    ("<shift>+a", "'a' is used for typing"),
    ("Page_Up", "'page up' is used for typing"),
])
def test_parse_binding_rejects_bad_bindings_with_one_clear_line(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_binding(text, "[hotkeys] cancel")
    message = str(info.value)
    assert why in message
    assert message.startswith("[hotkeys] cancel = ")
    assert "<ctrl>+<alt>+space" in message  # an example of what works
    assert "\n" not in message


def down(key: str, t: int | None = None, mods: frozenset[str] | None = None) -> KeyEvent:
    return KeyEvent(key, True, t, mods)


def up(key: str, t: int | None = None) -> KeyEvent:
    return KeyEvent(key, False, t)


def kinds(commands) -> list[CommandKind]:
    return [c.kind for c in commands]


def machine(mode: RecordingMode, cancel: str | None = "<ctrl>+<alt>+<shift>+space") -> ChordMachine:
    return ChordMachine(bindings_for(parse_binding("<ctrl>+<alt>+space"), mode,
                                     parse_binding(cancel) if cancel else None))


PTT, TOGGLE = RecordingMode.PUSH_TO_TALK, RecordingMode.TOGGLE


def test_push_to_talk_down_on_press_up_on_release() -> None:
    m = machine(PTT)
    assert kinds(m.feed_all([down("ctrl"), down("alt"), down("space")])) == [CommandKind.PTT_DOWN]
    assert kinds(m.feed_all([up("space")])) == [CommandKind.PTT_UP]
    assert kinds(m.feed_all([up("alt"), up("ctrl")])) == []


@pytest.mark.parametrize("first", ["ctrl", "alt", "space"])
def test_push_to_talk_ends_on_release_of_any_chord_key(first: str) -> None:
    m = machine(PTT)
    m.feed_all([down("ctrl"), down("alt"), down("space")])
    assert kinds(m.feed_all([up(first)])) == [CommandKind.PTT_UP]
    rest = [k for k in ("ctrl", "alt", "space") if k != first]
    assert kinds(m.feed_all([up(k) for k in rest])) == []


def test_x11_style_autorepeat_pairs_with_equal_timestamps_are_dropped() -> None:
    """Without detectable autorepeat X11 sends release+press pairs with one timestamp while a key is held."""
    m = machine(PTT)
    events = [down("space", 100, CTRL_ALT)]
    for t in range(130, 1130, 33):
        events += [up("space", t), down("space", t, CTRL_ALT)]
    events.append(up("space", 1200))
    assert kinds(m.feed_all(events)) == [CommandKind.PTT_DOWN, CommandKind.PTT_UP]
    assert m.autorepeats == len(range(130, 1130, 33))


def test_a_held_release_waits_for_flush_then_counts_as_a_release() -> None:
    m = machine(PTT)
    assert kinds(m.feed(down("space", 10, CTRL_ALT))) == [CommandKind.PTT_DOWN]
    assert m.feed(up("space", 50)) == [] and m.waiting
    assert kinds(m.flush()) == [CommandKind.PTT_UP]
    assert not m.waiting
    # A press at a later time than the release is a new press, not a repeat.
    m.feed(up("space", 60))
    assert kinds(m.feed(down("space", 61, CTRL_ALT))) == [CommandKind.PTT_DOWN]


def test_detectable_autorepeat_repeated_presses_fire_once() -> None:
    """XkbSetDetectableAutoRepeat, Windows and pynput repeat the press only."""
    m = machine(PTT)
    events = [down("ctrl"), down("alt")] + [down("space")] * 20 + [up("space")]
    assert kinds(m.feed_all(events)) == [CommandKind.PTT_DOWN, CommandKind.PTT_UP]
    assert m.autorepeats == 19


def test_toggle_fires_once_per_press_however_long_it_is_held() -> None:
    m = machine(TOGGLE)
    events = [down("space", 1, CTRL_ALT)]
    for t in range(40, 1000, 33):
        events += [up("space", t), down("space", t, CTRL_ALT)]
    events += [up("space", 1001), down("space", 1200, CTRL_ALT), up("space", 1300),
               down("space", 1400, CTRL_ALT), up("space", 1500)]
    assert kinds(m.feed_all(events)) == [CommandKind.TOGGLE] * 3


def test_cancel_chord_and_modifiers_must_match_exactly() -> None:
    m = machine(PTT)
    assert kinds(m.feed_all([down("space", 1, frozenset({"ctrl", "alt", "shift"})), up("space", 2)])) == [
        CommandKind.CANCEL]
    for mods in ({"ctrl"}, {"alt"}, set(), {"ctrl", "alt", "super"}, {"ctrl", "shift"}):
        assert m.feed_all([down("space", 5, frozenset(mods)), up("space", 6)]) == [], mods
    # Other keys with the chord's modifiers, and the key pressed before its modifiers: nothing.
    assert m.feed_all([down("ctrl"), down("alt"), down("a"), up("a"), up("alt"), up("ctrl")]) == []
    assert m.feed_all([down("space"), down("ctrl"), down("alt"), up("space"), up("alt"), up("ctrl")]) == []


def test_cancel_chord_equal_to_the_dictation_chord_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="same as"):
        bindings_for(parse_binding("f9"), TOGGLE, parse_binding("<F9>"))


def test_no_cancel_chord() -> None:
    m = machine(TOGGLE, cancel=None)
    assert m.feed_all([down("space", 1, frozenset({"ctrl", "alt", "shift"})), up("space", 2)]) == []


def test_hotkey_bindings_reads_empty_cancel_as_none() -> None:
    assert HotkeyBindings("F9", "").chords() == (parse_binding("F9"), None)
    assert HotkeyBindings("F9", "F10").chords()[1] == parse_binding("F10")


def test_support_chooses_by_session_type() -> None:
    x11 = support({"DISPLAY": ":7", "XDG_SESSION_TYPE": "x11"})
    assert (x11.backend, x11.push_to_talk, x11.available) == ("x11", True, True)
    # Wayland with XWayland's DISPLAY set: X grabs would not be global; without a bus, no portal.
    wayland = support({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"})
    assert (wayland.backend, wayland.push_to_talk) == ("none", False)
    assert "push-to-talk is impossible" in wayland.reason
    assert "dictate toggle" in wayland.fix
    nothing = support({})
    assert nothing.backend == "none" and "no graphical session" in nothing.reason
    off = support({"DISPLAY": ":7"}, backend="none")
    assert off.backend == "none" and "dictate toggle" in off.fix
    with pytest.raises(ConfigError, match="backend"):
        support({}, backend="xinput")


def test_create_listener_checks_the_config_even_without_a_backend() -> None:
    cfg = Config()
    assert create_listener(cfg, lambda c: None, env={}) is None
    cfg.hotkeys.dictate = "<ctrl>+nope"
    with pytest.raises(ConfigError, match=r"\[hotkeys\] dictate"):
        create_listener(cfg, lambda c: None, env={})
    cfg.hotkeys.dictate = "F9"
    cfg.hotkeys.mode = "hold"
    with pytest.raises(ConfigError, match="mode"):
        create_listener(cfg, lambda c: None, env={})


def test_one_modifier_guard_for_hotkeys_and_output() -> None:
    """The hotkeys package offers the output's guard, not a second implementation."""
    import dictate.hotkeys as hotkeys
    import dictate.hotkeys.x11 as hotkeys_x11
    from dictate.output import modifiers

    assert hotkeys.modifiers_down is modifiers.modifiers_down
    assert hotkeys.wait_modifiers_released is modifiers.wait_modifiers_released
    assert not hasattr(hotkeys_x11, "modifiers_down") and not hasattr(hotkeys_x11, "wait_modifiers_released")
    states = iter([True, True, False])
    assert modifiers.wait_released(lambda: next(states), 5.0, poll_s=0.001) is True
    assert modifiers.wait_released(lambda: True, 0.02, poll_s=0.001) is False
