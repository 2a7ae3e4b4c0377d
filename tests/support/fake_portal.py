"""A stand-in for xdg-desktop-portal's GlobalShortcuts interface on a private session bus, in its
own process, speaking real D-Bus (jeepney). It answers the version property, CreateSession and
BindShortcuts (through Request objects' Response signals, as the real portal does) and
Session.Close; a test presses and releases shortcuts through a small control interface:

    python -m tests.support.fake_portal BUS_ADDRESS [--refuse]     # prints "ready" once named

Control (object /control, interface org.example.FakePortal): Press(s id), Release(s id),
State() -> s (JSON: session, bound shortcuts, closed)."""

from __future__ import annotations

import json
import sys
import time

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.portal.Desktop"
PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
CONTROL = "org.example.FakePortal"


class FakePortal:
    def __init__(self, address: str, refuse: bool) -> None:
        self.conn = open_dbus_connection(bus=address)
        self.refuse = refuse
        self.session = ""
        self.client = ""
        self.bound: list[dict] = []
        self.closed = False

    def signal(self, path: str, iface: str, member: str, signature: str, body: tuple) -> None:
        message = new_signal(DBusAddress(path, interface=iface), member, signature, body)
        message.header.fields[HeaderFields.destination] = self.client  # as the portal does: to the caller
        self.conn.send_message(message)

    def request_path(self, msg, options: dict) -> str:
        sender = msg.header.fields[HeaderFields.sender].lstrip(":").replace(".", "_")
        return f"{PATH}/request/{sender}/{options['handle_token'][1]}"

    def handle(self, msg) -> None:
        fields = msg.header.fields
        iface, member, path = fields.get(HeaderFields.interface), fields.get(HeaderFields.member), fields[HeaderFields.path]
        reply = lambda signature="", body=(): self.conn.send_message(new_method_return(msg, signature, body))
        if iface == "org.freedesktop.DBus.Properties" and member == "Get" and msg.body[0] == SHORTCUTS:
            return reply("v", (("u", 1),))
        if iface == SHORTCUTS and member == "CreateSession":
            (options,) = msg.body
            self.client = fields[HeaderFields.sender]
            request = self.request_path(msg, options)
            sender = self.client.lstrip(":").replace(".", "_")
            self.session = f"{PATH}/session/{sender}/{options['session_handle_token'][1]}"
            reply("o", (request,))
            return self.signal(request, "org.freedesktop.portal.Request", "Response", "ua{sv}",
                               (0, {"session_handle": ("s", self.session)}))
        if iface == SHORTCUTS and member == "BindShortcuts":
            session, shortcuts, _parent, options = msg.body
            request = self.request_path(msg, options)
            reply("o", (request,))
            if self.refuse or session != self.session:
                return self.signal(request, "org.freedesktop.portal.Request", "Response", "ua{sv}", (1, {}))
            self.bound = [{"id": sid, **{k: v[1] for k, v in props.items()}} for sid, props in shortcuts]
            answer = [(s["id"], {"description": ("s", s["description"]),
                                 "trigger_description": ("s", "Press " + s["preferred_trigger"])}) for s in self.bound]
            return self.signal(request, "org.freedesktop.portal.Request", "Response", "ua{sv}",
                               (0, {"shortcuts": ("a(sa{sv})", answer)}))
        if iface == "org.freedesktop.portal.Session" and member == "Close" and path == self.session:
            self.closed = True
            return reply()
        if iface == CONTROL and member in ("Press", "Release"):
            (sid,) = msg.body
            self.signal(PATH, SHORTCUTS, "Activated" if member == "Press" else "Deactivated", "osta{sv}",
                        (self.session, sid, int(time.monotonic() * 1000), {}))
            return reply()
        if iface == CONTROL and member == "State":
            return reply("s", (json.dumps({"session": self.session, "bound": self.bound, "closed": self.closed}),))
        self.conn.send_message(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s",
                                         (f"no {iface}.{member} here",)))

    def run(self) -> None:
        self.conn.send_and_get_reply(message_bus.RequestName(NAME))
        print("ready", flush=True)
        while True:
            msg = self.conn.receive()
            if msg.header.message_type is MessageType.method_call:
                self.handle(msg)


if __name__ == "__main__":
    FakePortal(sys.argv[1], "--refuse" in sys.argv[2:]).run()
