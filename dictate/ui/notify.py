"""Desktop notifications with an action ("Open"): freedesktop notifications over the D-Bus session
bus where a notification server runs (jeepney, on its own thread `dictate-notify`), else the
tray's balloon (clicking it is the action), else the stand-in window, which opens the thing at once.

    notifier = create_notifier(shell)
    notifier.notify("Note ready", "…", action=("Open", lambda: open_window()))

Actions run on the GUI thread."""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any, Callable

from dictate.ui.background import Background

log = logging.getLogger(__name__)

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
APP = "dictate"
TIMEOUT_S = 3.0

Action = tuple[str, Callable[[], None]]  # (label, what it does)


class DesktopNotifications:
    """The D-Bus path. `start()` returns False when there is no bus or no notification server."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self.capabilities: list[str] = []
        self.sent: list[int] = []  # ids the server gave, in order (for the log and tests)
        self._poster = Background()
        self._queue: queue.Queue = queue.Queue()
        self._actions: dict[int, Callable[[], None]] = {}
        self._conn: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        address = self.env.get("DBUS_SESSION_BUS_ADDRESS", "")
        if not address:
            return False
        try:
            from jeepney import DBusAddress, MatchRule, MessageType, message_bus, new_method_call
            from jeepney.io.blocking import open_dbus_connection

            conn = open_dbus_connection(bus=address)
        except Exception as exc:  # no jeepney, or the bus is unreachable: the tray's balloons do
            log.info("notifications: no D-Bus session bus (%s)", exc)
            return False
        try:
            owner = conn.send_and_get_reply(message_bus.NameHasOwner(NAME), timeout=TIMEOUT_S)
            activatable = conn.send_and_get_reply(message_bus.ListActivatableNames(), timeout=TIMEOUT_S)
            if not (owner.body and owner.body[0]) and NAME not in (activatable.body[0] if activatable.body else []):
                raise LookupError("no notification server on the session bus")
            caps = conn.send_and_get_reply(new_method_call(DBusAddress(PATH, NAME, NAME), "GetCapabilities"),
                                           timeout=TIMEOUT_S)
            if caps.header.message_type is MessageType.error:
                raise LookupError(f"the notification server failed: {caps.body}")
            self.capabilities = list(caps.body[0])
            for member in ("ActionInvoked", "NotificationClosed"):
                conn.send_and_get_reply(message_bus.AddMatch(MatchRule(type="signal", interface=NAME, member=member,
                                                                       path=PATH)), timeout=TIMEOUT_S)
        except Exception as exc:
            log.info("notifications: %s; using the tray's", exc)
            conn.close()
            return False
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name="dictate-notify", daemon=True)
        self._thread.start()
        log.info("notifications: desktop notifications (%s)", ", ".join(self.capabilities))
        return True

    def notify(self, title: str, body: str, *, error: bool = False, action: Action | None = None) -> None:
        self._queue.put((title, body, error, action))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(2.0)
            self._thread = None

    # -- the dictate-notify thread --------------------------------------------------------------
    def _run(self) -> None:
        from jeepney import MatchRule

        conn = self._conn
        rules = [MatchRule(type="signal", interface=NAME, member=m, path=PATH)
                 for m in ("ActionInvoked", "NotificationClosed")]
        with conn.filter(rules[0], bufsize=32) as invoked, conn.filter(rules[1], bufsize=32) as closed:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = False
                if item is None:
                    break
                if item:
                    self._send(*item)
                try:
                    conn.recv_messages(timeout=0.1)
                except TimeoutError:
                    pass
                except Exception as exc:  # the bus went away: nothing more to hear
                    log.warning("notifications: %s", exc)
                    break
                while invoked:
                    nid, key = invoked.popleft().body
                    callback = self._actions.pop(nid, None) if key in ("open", "default") else None
                    log.info("notifications: %s invoked on %d", key, nid)
                    if callback is not None:
                        self._poster.post(callback)
                while closed:
                    self._actions.pop(closed.popleft().body[0], None)
        conn.close()

    def _send(self, title: str, body: str, error: bool, action: Action | None) -> None:
        from jeepney import DBusAddress, MessageType, new_method_call

        actions: list[str] = []
        if action is not None:
            actions = ["default", action[0], "open", action[0]]  # a click on the bubble does it too
        hints = {"urgency": ("y", 2 if error else 1), "desktop-entry": ("s", APP)}
        msg = new_method_call(DBusAddress(PATH, NAME, NAME), "Notify", "susssasa{sv}i",
                              (APP, 0, "dictate", title, body, actions, hints, -1))
        try:
            reply = self._conn.send_and_get_reply(msg, timeout=TIMEOUT_S)
        except Exception as exc:
            log.warning("notifications: not shown: %s", exc)
            return
        if reply.header.message_type is MessageType.error:
            log.warning("notifications: not shown: %s", reply.body)
            return
        nid = int(reply.body[0])
        self.sent.append(nid)
        if action is not None:
            self._actions[nid] = action[1]
        log.info("notifications: shown %d: %s", nid, title)


class Notifier:
    """Desktop notifications where the desktop has a server, else the shell's own."""

    def __init__(self, shell: Any, desktop: DesktopNotifications | None) -> None:
        self.shell = shell
        self.desktop = desktop

    def notify(self, title: str, body: str, *, error: bool = False, action: Action | None = None) -> None:
        if self.desktop is not None:
            self.desktop.notify(title, body, error=error, action=action)
            return
        from dictate.ui.tray import TrayShell

        if isinstance(self.shell, TrayShell):
            self.shell.notify(title, body + (f"\n(click: {action[0]})" if action else ""), error=error,
                              on_click=action[1] if action else None)
            return
        self.shell.notify(title, body, error=error)
        if action is not None:
            action[1]()  # the stand-in window has no balloons: do it at once

    def close(self) -> None:
        if self.desktop is not None:
            self.desktop.close()


def create_notifier(shell: Any, env: dict[str, str] | None = None) -> Notifier:
    desktop = DesktopNotifications(env)
    return Notifier(shell, desktop if desktop.start() else None)
