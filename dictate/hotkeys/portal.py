"""Wayland global hotkeys through the XDG desktop portal's GlobalShortcuts interface (D-Bus, with
jeepney: pure Python, no Qt). Wayland gives apps no global key access; where the desktop offers
this portal (KDE Plasma, GNOME 48+, Hyprland) it sends Activated and Deactivated for each bound
shortcut, so push-to-talk works. Where it does not, there is no listener at all: the user binds
`dictate toggle` in the desktop's own shortcut settings (see `support()` in the package)."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Callable, Mapping

from dictate.hotkeys.base import HotkeyBindings, HotkeyError, HotkeyListener
from dictate.hotkeys.chords import Chord, KeyEvent
from dictate.types import Command, CommandKind, RecordingMode

log = logging.getLogger(__name__)

PORTAL_NAME = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS_IFACE = "org.freedesktop.portal.GlobalShortcuts"
REQUEST_IFACE = "org.freedesktop.portal.Request"
SESSION_IFACE = "org.freedesktop.portal.Session"
PROBE_TIMEOUT_S = 3.0  # the portal may be started on demand by the bus
READY_TIMEOUT_S = 10.0  # the desktop may ask the user to confirm the shortcuts


def _connect(env: Mapping[str, str] | None):
    try:
        from jeepney.io.blocking import open_dbus_connection
    except ImportError as exc:
        raise HotkeyError("hotkeys: jeepney is missing (pip install jeepney)") from exc
    import os

    address = (env if env is not None else os.environ).get("DBUS_SESSION_BUS_ADDRESS", "")
    if not address:
        raise HotkeyError("hotkeys: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)")
    try:
        return open_dbus_connection(bus=address)
    except Exception as exc:
        raise HotkeyError(f"hotkeys: cannot reach the D-Bus session bus: {exc}") from None


def portal_version(env: Mapping[str, str] | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> int | None:
    """The GlobalShortcuts portal's version on the session bus in `env`, or None when there is no
    bus, no portal, or a portal without GlobalShortcuts."""
    try:
        from jeepney import DBusAddress, MessageType, Properties
    except ImportError:
        return None
    try:
        conn = _connect(env)
    except HotkeyError as exc:
        log.debug("%s", exc)
        return None
    try:
        props = Properties(DBusAddress(PORTAL_PATH, PORTAL_NAME, SHORTCUTS_IFACE))
        reply = conn.send_and_get_reply(props.get("version"), timeout=timeout_s)
        if reply.header.message_type is MessageType.error:
            log.debug("hotkeys: no GlobalShortcuts portal: %s %s", reply.header.fields, reply.body)
            return None
        signature, value = reply.body[0]
        return int(value)
    except (TimeoutError, OSError, ValueError, IndexError, TypeError) as exc:
        log.debug("hotkeys: GlobalShortcuts probe failed: %s", exc)
        return None
    finally:
        conn.close()


class PortalHotkeyListener(HotkeyListener):
    backend = "portal"

    def __init__(self, bindings: HotkeyBindings, mode: RecordingMode, put: Callable[[Command], None],
                 *, env: Mapping[str, str] | None = None, app_name: str = "dictate") -> None:
        super().__init__(bindings, mode, put)
        self._env = env
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: HotkeyError | None = None
        self._ids = {self._shortcut_id(b.on_press): b.chord for b in self._binding_list}
        self.triggers: dict[str, str] = {}  # shortcut id -> the trigger the desktop reports
        self.session_handle = ""

    @staticmethod
    def _shortcut_id(kind: CommandKind) -> str:
        return "cancel" if kind is CommandKind.CANCEL else "dictate"

    def _description(self, shortcut_id: str) -> str:
        if shortcut_id == "cancel":
            return "Cancel voice typing"
        if self.mode is RecordingMode.PUSH_TO_TALK:
            return "Voice typing (hold to talk)"
        return "Voice typing on/off"

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="hotkeys-portal", daemon=True)
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT_S):
            # Still waiting for the user to confirm in the desktop's dialog: keep waiting there.
            log.info("hotkeys: waiting for the desktop to confirm the shortcuts")
            return
        if self._error is not None:
            error = self._error
            self.stop()
            raise error

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout=5)
        if thread.is_alive():  # pragma: no cover
            log.warning("hotkeys: the portal thread did not stop")

    # --- on the hotkeys-portal thread only ----------------------------------------------------

    def _run(self) -> None:
        try:
            conn = _connect(self._env)
        except HotkeyError as exc:
            self._error = exc
            self._ready.set()
            return
        try:
            self._conversation(conn)
        except HotkeyError as exc:
            if not self._ready.is_set():
                self._error = exc
            else:
                log.warning("%s", exc)
        except Exception as exc:
            if not self._ready.is_set():
                self._error = HotkeyError(f"hotkeys: the GlobalShortcuts portal failed: {exc}")
            else:
                log.exception("hotkeys: the GlobalShortcuts portal failed; hotkeys are off until restart")
        finally:
            self._ready.set()
            self._close_session(conn)
            conn.close()

    def _request(self, conn, method: str, signature: str, body: tuple, token: str) -> dict:
        """Call a portal method that answers through a Request object's Response signal."""
        from jeepney import DBusAddress, MatchRule, MessageType, message_bus, new_method_call

        sender = conn.unique_name.lstrip(":").replace(".", "_")
        path = f"{PORTAL_PATH}/request/{sender}/{token}"
        rule = MatchRule(type="signal", interface=REQUEST_IFACE, member="Response", path=path)
        conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=PROBE_TIMEOUT_S)
        with conn.filter(rule) as responses:  # subscribed before the call, so the answer cannot be missed
            reply = conn.send_and_get_reply(
                new_method_call(DBusAddress(PORTAL_PATH, PORTAL_NAME, SHORTCUTS_IFACE), method, signature, body),
                timeout=PROBE_TIMEOUT_S)
            if reply.header.message_type is MessageType.error:
                raise HotkeyError(f"hotkeys: the GlobalShortcuts portal refused {method}: "
                                  f"{' '.join(map(str, reply.body)) or reply.header.fields}")
            while True:
                if self._stopping.is_set():
                    raise HotkeyError("hotkeys: stopped before the portal answered")
                try:
                    message = conn.recv_until_filtered(responses, timeout=0.2)
                except TimeoutError:
                    continue
                code, results = message.body
                if code != 0:
                    why = "the request was cancelled" if code == 1 else "the request failed"
                    raise HotkeyError(f"hotkeys: GlobalShortcuts {method}: {why} (response {code}); "
                                      "allow the shortcuts in the desktop's dialog or settings")
                return {k: v[1] for k, v in results.items()}

    def _conversation(self, conn) -> None:
        from jeepney import MatchRule, message_bus

        token = self._next_token()
        results = self._request(conn, "CreateSession", "a{sv}", ({
            "handle_token": ("s", token),
            "session_handle_token": ("s", self._next_token()),
        },), token=token)
        self.session_handle = str(results.get("session_handle", ""))
        if not self.session_handle:
            raise HotkeyError("hotkeys: the GlobalShortcuts portal gave no session")

        rules = [MatchRule(type="signal", interface=SHORTCUTS_IFACE, member=member, path=PORTAL_PATH)
                 for member in ("Activated", "Deactivated", "ShortcutsChanged")]
        for rule in rules:
            conn.send_and_get_reply(message_bus.AddMatch(rule), timeout=PROBE_TIMEOUT_S)
        shortcuts = [(sid, {"description": ("s", self._description(sid)),
                            "preferred_trigger": ("s", chord.portal_trigger())})
                     for sid, chord in self._ids.items()]
        with conn.filter(rules[0], bufsize=64) as activated, conn.filter(rules[1], bufsize=64) as deactivated, \
                conn.filter(rules[2], bufsize=8) as changed:
            token = self._next_token()
            bound = self._request(conn, "BindShortcuts", "oa(sa{sv})sa{sv}",
                                  (self.session_handle, shortcuts, "", {"handle_token": ("s", token)}), token=token)
            self._note_triggers(bound.get("shortcuts", []))
            self._ready.set()
            log.info("hotkeys: GlobalShortcuts bound: %s",
                     ", ".join(f"{k}={v}" for k, v in self.triggers.items()) or "none")
            while not self._stopping.is_set():
                try:
                    conn.recv_messages(timeout=0.2)
                except TimeoutError:
                    pass
                # Activated and Deactivated can both arrive in one read; keep their order by timestamp.
                batch = [(m.body[2], True, m) for m in activated] + [(m.body[2], False, m) for m in deactivated]
                activated.clear()
                deactivated.clear()
                for _, down, message in sorted(batch, key=lambda item: (item[0], not item[1])):
                    self._on_signal(message, down)
                for message in changed:
                    if message.body[0] == self.session_handle:
                        self._note_triggers(message.body[1])
                changed.clear()

    def _next_token(self) -> str:
        return "dictate_" + secrets.token_hex(6)

    def _note_triggers(self, shortcuts) -> None:
        for sid, props in shortcuts:
            value = props.get("trigger_description")
            self.triggers[sid] = str(value[1]) if value else ""

    def _on_signal(self, message, down: bool) -> None:
        session, sid = message.body[0], message.body[1]
        chord: Chord | None = self._ids.get(sid)
        if session != self.session_handle or chord is None:
            return
        # The portal speaks of whole shortcuts; the chord machine sees them as their key going
        # down with exactly the chord's modifiers, and up again.
        self._feed(KeyEvent(chord.key, down, None, chord.modifiers if down else None))

    def _close_session(self, conn) -> None:
        if not self.session_handle:
            return
        try:
            from jeepney import DBusAddress, new_method_call

            conn.send_and_get_reply(new_method_call(DBusAddress(self.session_handle, PORTAL_NAME, SESSION_IFACE),
                                                    "Close"), timeout=1.0)
        except Exception as exc:  # the portal drops our session with the connection anyway
            log.debug("hotkeys: closing the portal session: %s", exc)
