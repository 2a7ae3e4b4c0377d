"""The X11 CLIPBOARD, owned and read through python-xlib on one thread of its own.

Why not xclip: it serves a single target per process, so it cannot put back a clipboard that held
text *and* an image (every MIME type), and it cannot tell when the paste has landed. Owning the
selection ourselves answers both: we save every target the previous owner offered, serve our text,
see the focused window's SelectionRequest for it served (the paste has landed), then own the
selection again and serve the saved targets until someone else takes it.

All X calls happen on the thread "output-x11-clipboard"; other threads hand it jobs and wait."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import queue
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from dictate.errors import OutputError
from dictate.output.x11 import open_display

log = logging.getLogger(__name__)

# Targets that describe the selection rather than hold its content; never saved or replayed as data.
_META_TARGETS = frozenset({"TARGETS", "TIMESTAMP", "MULTIPLE", "SAVE_TARGETS", "DELETE", "INSERT_SELECTION",
                           "INSERT_PROPERTY", "_NET_WM_PID"})
_TEXT_TARGETS = ("UTF8_STRING", "text/plain;charset=utf-8", "STRING", "TEXT", "text/plain")
_SNAPSHOT_LIMIT_BYTES = 64 * 1024 * 1024  # a clipboard beyond this is not worth holding in memory


@dataclass(frozen=True)
class Item:
    type_name: str  # the property type the owner answered with (UTF8_STRING, image/png, ATOM ...)
    format: int  # 8, 16 or 32
    data: bytes | tuple[int, ...]


@dataclass(frozen=True)
class ClipboardContent:
    """What a clipboard held: every data target by name. `owned` False: nobody owned it."""
    items: dict[str, Item] = field(default_factory=dict)
    owned: bool = True

    @classmethod
    def text(cls, text: str) -> "ClipboardContent":
        utf8 = text.encode("utf-8")
        latin = text.encode("latin-1", errors="replace")
        items = {
            "UTF8_STRING": Item("UTF8_STRING", 8, utf8),
            "text/plain;charset=utf-8": Item("text/plain;charset=utf-8", 8, utf8),
            "STRING": Item("STRING", 8, latin),
            "TEXT": Item("UTF8_STRING", 8, utf8),
            "text/plain": Item("text/plain", 8, latin),
        }
        return cls(items, owned=True)

    @property
    def size_bytes(self) -> int:
        return sum(len(i.data) * (i.format // 8) for i in self.items.values())


class X11Clipboard:
    """Owner and reader of CLIPBOARD on display env["DISPLAY"], with its own thread."""

    def __init__(self, env: Mapping[str, str], selection: str = "CLIPBOARD") -> None:
        from Xlib import X

        self._X = X
        self._d = open_display(env)
        self._atoms: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._sel = self._atom(selection)
        screen = self._d.screen()
        self._win = screen.root.create_window(-10, -10, 1, 1, 0, screen.root_depth,
                                              event_mask=X.PropertyChangeMask)
        self._win.set_wm_name("dictate clipboard")
        self._d.flush()
        # Properties above this go by INCR (python-xlib has no BIG-REQUESTS: 256 KB per request).
        self._chunk = max(4096, (self._d.display.info.max_request_length << 2) - 1024)
        self._jobs: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future]] = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        self._halt = False
        self._cond = threading.Condition()
        # State below is touched on the clipboard thread; `_served`/`_gen`/`_owner` also read under _cond.
        self._content: ClipboardContent | None = None
        self._owner = False
        self._own_time = 0
        self._gen = 0
        self._served: dict[int, int] = {}  # generation -> data requests served
        self._last_request = 0.0
        self._transfers: dict[tuple[int, int], list[Any]] = {}  # INCR sends in progress
        self._thread = threading.Thread(target=self._run, name="output-x11-clipboard", daemon=True)
        self._thread.start()

    # -- API for other threads --------------------------------------------------------------
    def snapshot(self, timeout_s: float = 2.0) -> ClipboardContent:
        """Every data target the current owner offers (empty content, owned=False, if none)."""
        return self._call(lambda: self._snapshot(time.monotonic() + timeout_s), timeout_s + 2.0)

    def offer(self, content: ClipboardContent) -> int:
        """Own the clipboard with `content`; returns the generation for wait_taken/restore."""
        return self._call(lambda: self._own(content), 5.0)

    def wait_taken(self, generation: int, timeout_s: float, quiet_s: float = 0.05) -> bool:
        """True once a data target of `generation` was served (the paste landed) and no further
        request came for `quiet_s`; False if none was served within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._served.get(generation):
                left = deadline - time.monotonic()
                if left <= 0 or self._gen != generation or not self._owner:
                    return bool(self._served.get(generation))
                self._cond.wait(left)
            # Some windows ask for a second target right after the first: let them finish.
            quiet_deadline = time.monotonic() + 1.0
            while time.monotonic() - self._last_request < quiet_s and time.monotonic() < quiet_deadline:
                self._cond.wait(quiet_s)
        return True

    def restore(self, saved: ClipboardContent, generation: int) -> bool:
        """Put `saved` back if we still own the clipboard since `generation`; False (nothing done)
        when someone else took it meanwhile."""
        return self._call(lambda: self._restore(saved, generation), 5.0)

    def owns(self) -> bool:
        with self._cond:
            return self._owner

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._halt = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        try:
            self._d.close()
        except Exception:
            pass

    # -- the thread -------------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        if not self._thread.is_alive():
            raise OutputError("the clipboard connection to the X server is closed")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((fn, future))
        os.write(self._wake_w, b"x")
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError as exc:
            raise OutputError("the X clipboard did not answer in time") from exc

    def _run(self) -> None:
        fd = self._d.fileno()
        try:
            while not self._halt:
                while True:
                    try:
                        fn, future = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        future.set_result(fn())
                    except OutputError as exc:
                        future.set_exception(exc)
                    except Exception as exc:  # an X error or a vanished server: tell the caller in one line
                        future.set_exception(OutputError(f"X clipboard failed: {exc}"))
                self._drain()
                readable, _, _ = select.select([fd, self._wake_r], [], [], 0.5)
                if self._wake_r in readable:
                    os.read(self._wake_r, 4096)
        except Exception:
            log.exception("clipboard thread stopped")
        finally:
            with self._cond:
                self._owner = False
                self._cond.notify_all()
            while True:  # nobody is left to run queued jobs
                try:
                    _, future = self._jobs.get_nowait()
                except queue.Empty:
                    break
                future.set_exception(OutputError("the clipboard connection to the X server is closed"))

    def _drain(self) -> None:
        while self._d.pending_events():
            self._handle(self._d.next_event())

    def _wait_event(self, match: Callable[[Any], bool], deadline: float) -> Any | None:
        """The next event that `match`es, serving everything else meanwhile; None at the deadline."""
        fd = self._d.fileno()
        while True:
            while self._d.pending_events():
                ev = self._d.next_event()
                if match(ev):
                    return ev
                self._handle(ev)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([fd], [], [], left)

    # -- atoms ------------------------------------------------------------------------------
    def _atom(self, name: str) -> int:
        atom = self._atoms.get(name)
        if atom is None:
            atom = self._d.intern_atom(name)
            self._atoms[name] = atom
            self._names[atom] = name
        return atom

    def _name(self, atom: int) -> str:
        name = self._names.get(atom)
        if name is None:
            name = self._d.get_atom_name(atom)
            self._names[atom] = name
            self._atoms[name] = atom
        return name

    def _timestamp(self) -> int:
        """A server timestamp (ICCCM: never CurrentTime for ownership), from a zero-length append."""
        X = self._X
        prop = self._atom("_DICTATE_TIMESTAMP")
        self._win.change_property(prop, self._atom("STRING"), 8, b"", mode=X.PropModeAppend)
        self._d.flush()
        ev = self._wait_event(lambda e: e.type == X.PropertyNotify and e.window.id == self._win.id
                              and e.atom == prop, time.monotonic() + 2.0)
        if ev is None:
            raise OutputError("the X server did not answer a timestamp request")
        return int(ev.time)

    # -- reading ----------------------------------------------------------------------------
    def _snapshot(self, deadline: float) -> ClipboardContent:
        X = self._X
        owner = self._d.get_selection_owner(self._sel)
        owner_id = owner if isinstance(owner, int) else owner.id
        if owner_id == X.NONE:
            return ClipboardContent({}, owned=False)
        if owner_id == self._win.id and self._owner and self._content is not None:
            return self._content  # what we restored last time
        stamp = self._timestamp()
        targets = self._convert(self._atom("TARGETS"), stamp, deadline)
        items: dict[str, Item] = {}
        if targets is None or targets.format != 32:
            # An owner without TARGETS: at least keep its text.
            for name in ("UTF8_STRING", "STRING"):
                item = self._convert(self._atom(name), stamp, deadline)
                if item is not None:
                    items[name] = item
                    break
            return ClipboardContent(items, owned=True)
        total = 0
        for atom in targets.data:
            name = self._name(int(atom))
            if name in _META_TARGETS or name in items:
                continue
            if time.monotonic() >= deadline:
                log.warning("clipboard: stopped saving after %d targets (time limit)", len(items))
                break
            item = self._convert(int(atom), stamp, deadline)
            if item is None:
                continue
            total += len(item.data) * (item.format // 8)
            if total > _SNAPSHOT_LIMIT_BYTES:
                log.warning("clipboard: content over %d MB is not saved in full", _SNAPSHOT_LIMIT_BYTES >> 20)
                break
            items[name] = item
        return ClipboardContent(items, owned=True)

    def _convert(self, target: int, stamp: int, deadline: float) -> Item | None:
        """Ask the owner for one target into a property of our window and read it (INCR too)."""
        X = self._X
        prop = self._atom("_DICTATE_SELECTION")
        self._win.delete_property(prop)
        self._win.convert_selection(self._sel, target, prop, stamp)
        self._d.flush()
        ev = self._wait_event(lambda e: e.type == X.SelectionNotify and e.requestor.id == self._win.id
                              and e.target == target, min(deadline, time.monotonic() + 1.0))
        if ev is None or ev.property == X.NONE:
            return None
        reply = self._win.get_full_property(prop, X.AnyPropertyType)
        self._win.delete_property(prop)
        self._d.flush()
        if reply is None:
            return None
        type_name = self._name(reply.property_type)
        if type_name != "INCR":
            return _item(type_name, reply.format, reply.value)
        return self._receive_incr(prop, deadline)

    def _receive_incr(self, prop: int, deadline: float) -> Item | None:
        X = self._X
        parts: list[bytes] = []
        type_name, fmt = "", 8
        end = min(deadline + 5.0, time.monotonic() + 10.0)  # a large image may take a moment
        while True:
            ev = self._wait_event(lambda e: e.type == X.PropertyNotify and e.window.id == self._win.id
                                  and e.atom == prop and e.state == X.PropertyNewValue, end)
            if ev is None:
                log.warning("clipboard: incremental transfer timed out")
                return None
            reply = self._win.get_full_property(prop, X.AnyPropertyType)
            self._win.delete_property(prop)
            self._d.flush()
            if reply is None or not len(reply.value):
                break
            type_name, fmt = self._name(reply.property_type), reply.format
            parts.append(_item(type_name, fmt, reply.value).data if fmt == 8 else bytes(reply.value))
        if not type_name:
            return None
        return Item(type_name, fmt, b"".join(parts))

    # -- owning -----------------------------------------------------------------------------
    def _own(self, content: ClipboardContent) -> int:
        stamp = self._timestamp()
        self._win.set_selection_owner(self._sel, stamp)
        self._d.flush()
        owner = self._d.get_selection_owner(self._sel)
        if (owner if isinstance(owner, int) else owner.id) != self._win.id:
            raise OutputError("could not take the X clipboard")
        with self._cond:
            self._gen += 1
            self._content = content
            self._owner = True
            self._own_time = stamp
            self._served[self._gen] = 0
            for old in [g for g in self._served if g < self._gen - 4]:
                del self._served[old]
            return self._gen

    def _restore(self, saved: ClipboardContent, generation: int) -> bool:
        with self._cond:
            if self._gen != generation or not self._owner:
                return False
        if saved.owned and saved.items:
            self._own(saved)
            return True
        # The clipboard was empty before: give it up again.
        from Xlib.protocol import request

        request.SetSelectionOwner(display=self._d.display, window=self._X.NONE, selection=self._sel,
                                  time=self._timestamp())
        self._d.flush()
        with self._cond:
            self._owner = False
            self._content = None
            self._cond.notify_all()
        return True

    # -- serving ----------------------------------------------------------------------------
    def _handle(self, ev: Any) -> None:
        X = self._X
        if ev.type == X.SelectionRequest:
            self._serve(ev)
        elif ev.type == X.SelectionClear:
            if ev.window.id == self._win.id and ev.atom == self._sel:
                with self._cond:
                    self._owner = False
                    self._content = None
                    self._cond.notify_all()
                log.debug("clipboard: another program took the clipboard")
        elif ev.type == X.PropertyNotify and ev.state == X.PropertyDelete:
            self._continue_incr(ev.window.id, ev.atom)

    def _serve(self, ev: Any) -> None:
        from Xlib import Xatom, error as xerror
        from Xlib.protocol import event as xevent

        X = self._X
        prop = ev.property if ev.property != X.NONE else ev.target  # obsolete clients pass None
        requestor = ev.requestor
        ok = False
        with self._cond:
            content, own_time, gen = self._content, self._own_time, self._gen
            owner = self._owner
        try:
            if owner and content is not None and ev.selection == self._sel:
                target = self._name(ev.target)
                if target == "TARGETS":
                    atoms = [self._atom("TARGETS"), self._atom("TIMESTAMP")] + [self._atom(n) for n in content.items]
                    requestor.change_property(prop, Xatom.ATOM, 32, atoms)
                    ok = True
                elif target == "TIMESTAMP":
                    requestor.change_property(prop, Xatom.INTEGER, 32, [own_time])
                    ok = True
                elif target in content.items:
                    item = content.items[target]
                    done = self._put(requestor, prop, item, gen)
                    ok = True
                    if done:
                        self._mark_served(gen)
            notify = xevent.SelectionNotify(time=ev.time, requestor=requestor, selection=ev.selection,
                                            target=ev.target, property=prop if ok else X.NONE)
            requestor.send_event(notify, onerror=xerror.CatchError())
            self._d.flush()
        except xerror.XError as exc:  # the requestor vanished
            log.debug("clipboard: request not served: %s", exc)

    def _put(self, requestor: Any, prop: int, item: Item, gen: int) -> bool:
        """Write one target to the requestor; True when complete, False when an INCR send started."""
        X = self._X
        type_atom = self._atom(item.type_name)
        if item.format != 8 or len(item.data) <= self._chunk:
            requestor.change_property(prop, type_atom, item.format, item.data)
            return True
        requestor.change_attributes(event_mask=X.PropertyChangeMask)
        requestor.change_property(prop, self._atom("INCR"), 32, [len(item.data)])
        self._transfers[(requestor.id, prop)] = [requestor, type_atom, item.data, 0, gen, time.monotonic()]
        return False

    def _continue_incr(self, window_id: int, prop: int) -> None:
        transfer = self._transfers.get((window_id, prop))
        if transfer is None:
            return
        requestor, type_atom, data, offset, gen, _ = transfer
        chunk = data[offset:offset + self._chunk]
        requestor.change_property(prop, type_atom, 8, chunk)
        self._d.flush()
        if not chunk:  # the zero-length write ends the transfer
            del self._transfers[(window_id, prop)]
            self._mark_served(gen)
        else:
            transfer[3] = offset + len(chunk)
            transfer[5] = time.monotonic()
        stale = [k for k, t in self._transfers.items() if time.monotonic() - t[5] > 30]
        for key in stale:
            del self._transfers[key]

    def _mark_served(self, gen: int) -> None:
        with self._cond:
            if gen in self._served:
                self._served[gen] += 1
            self._last_request = time.monotonic()
            self._cond.notify_all()


def _item(type_name: str, fmt: int, value: Any) -> Item:
    if fmt == 8:
        data = value if isinstance(value, bytes) else (value.encode("latin-1") if isinstance(value, str)
                                                       else bytes(value))
        return Item(type_name, 8, data)
    return Item(type_name, fmt, tuple(int(v) for v in value))
