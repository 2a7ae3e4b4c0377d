"""A stand-in for the controller behind the IPC server (pure logic: a tiny state machine that
answers as the app would), and `python -m tests.support.ipc_app` to serve it from its own process.

    python -m tests.support.ipc_app [--journal FILE] [--delay S]

prints "ready <pid>" once listening (or "already-running" and exits 3), serves until SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path


class FakeApp:
    """Answers like the controller's handle_ipc; records every request it was handed."""

    def __init__(self, journal: Path | None = None, delay_s: float = 0.0) -> None:
        self.state = "idle"
        self.note: str | None = None
        self.seen: list[dict] = []
        self.journal = journal
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def commands(self) -> list[str]:
        with self._lock:
            return [m["command"] for m in self.seen]

    def __call__(self, message: dict) -> dict:
        with self._lock:
            self.seen.append(message)
            if self.journal is not None:
                with self.journal.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(message) + "\n")
        command = message["command"]
        if command == "slow":
            time.sleep(float(message.get("seconds", 2.0)))
            return {"ok": True, "message": "slept"}
        if command == "boom":
            raise RuntimeError("the handler broke")
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            return self._answer(command)

    def _answer(self, command: str) -> dict:
        if command == "toggle":
            command = "stop" if self.state == "listening" else "start"
        if command == "start":
            if self.state == "listening":
                return {"ok": False, "message": "already listening"}
            self.state = "listening"
            return {"ok": True, "message": "listening", "state": self.state}
        if command in ("stop", "cancel"):
            if self.state != "listening":
                return {"ok": False, "message": "not listening"}
            self.state = "idle"
            return {"ok": True, "message": "stopped" if command == "stop" else "cancelled", "state": self.state}
        if command == "note-start":
            if self.note:
                return {"ok": False, "message": f"note {self.note} is already being recorded"}
            self.note = "20240101-120000"
            return {"ok": True, "message": f"recording note {self.note}", "recording": True}
        if command == "note-stop":
            if not self.note:
                return {"ok": False, "message": "no note is being recorded"}
            note, self.note = self.note, None
            return {"ok": True, "message": f"stopping note {note}", "recording": False}
        if command == "note-status":
            if self.note:
                return {"ok": True, "message": f"recording {self.note} (0:05 so far, in the app)", "recording": True}
            return {"ok": True, "message": "not recording", "recording": False}
        if command == "show":
            return {"ok": True, "message": "shown"}
        if command == "status":
            return {"ok": True, "message": self.state, "state": self.state}
        return {"ok": False, "message": f"unknown command {command!r}"}


def main() -> int:
    from dictate import ipc
    from dictate.config import Paths

    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    server = ipc.IpcServer(Paths.default(), FakeApp(args.journal, args.delay))
    try:
        server.start()
    except ipc.AlreadyRunning:
        print("already-running", flush=True)
        return 3
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"ready {__import__('os').getpid()}", flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
