"""A real text box in its own process, for typing tests: whatever reaches it is written to a file.

    python tests/support/type_target.py --out STATE.json [--wm-class kitty] [--terminal-keys]
        [--line] [--paste-delay-ms N]

It prints "ready <X window id>" on stdout once the window is shown, then rewrites STATE.json on
every change: {"text": ..., "keys": [...]} where keys lists the paste shortcuts it saw.
--wm-class sets WM_CLASS (Qt takes the instance from argv[0] and the class from the application
name), so the window can pass for a terminal. --terminal-keys makes it behave like one: Ctrl+V
inserts a literal "^V" and only Ctrl+Shift+V pastes.

`TypeTarget` (below) starts it from a test and reads the state back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--wm-class", default="dictate-type-target")
    ap.add_argument("--terminal-keys", action="store_true")
    ap.add_argument("--line", action="store_true", help="a QLineEdit instead of a QPlainTextEdit")
    ap.add_argument("--paste-delay-ms", type=int, default=0, help="a slow window: busy this long before pasting")
    args = ap.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from PySide6.QtCore import QEvent, QObject, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QLineEdit, QPlainTextEdit

    app = QApplication([args.wm_class])
    app.setApplicationName(args.wm_class)
    out = Path(args.out)
    keys: list[str] = []
    edit = QLineEdit() if args.line else QPlainTextEdit()

    def text() -> str:
        return edit.text() if args.line else edit.toPlainText()

    changed_at = [time.monotonic()]  # CLOCK_MONOTONIC: comparable with the test process's clock
    pending = [False]

    def save() -> None:
        pending[0] = False
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"text": text(), "keys": keys, "changed_at": changed_at[0]}, ensure_ascii=False),
                       encoding="utf-8")
        os.replace(tmp, out)

    def changed() -> None:
        # One save per burst of keys, once the event loop has taken them in: rewriting the file
        # for each of a thousand typed characters made the box, not the typist, the slow part.
        changed_at[0] = time.monotonic()
        if not pending[0]:
            pending[0] = True
            QTimer.singleShot(0, save)

    class TerminalKeys(QObject):
        """Ctrl+V is a control character in a terminal; Ctrl+Shift+V pastes."""

        def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
            if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_V:
                mods = event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
                if mods == (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
                    keys.append("ctrl+shift+v")
                    edit.paste()
                    return True
                if mods == Qt.KeyboardModifier.ControlModifier:
                    keys.append("ctrl+v")
                    edit.insertPlainText("^V") if not args.line else edit.insert("^V")
                    return True
            return False

    class SlowPaste(QObject):
        """A window busy for a while before it fetches the clipboard (blocks its own event loop)."""

        def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
            if (event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_V
                    and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
                keys.append("ctrl+v")
                time.sleep(args.paste_delay_ms / 1000.0)
                edit.paste()
                return True
            return False

    filt = TerminalKeys() if args.terminal_keys else SlowPaste() if args.paste_delay_ms else None
    if filt is not None:
        edit.installEventFilter(filt)
    (edit.textChanged).connect(changed)
    edit.setWindowTitle(f"type target ({args.wm_class})")
    edit.resize(600, 300)
    edit.show()
    save()
    sys.stdout.write(f"ready {int(edit.winId())}\n")
    sys.stdout.flush()
    return app.exec()


class TypeTarget:
    """The target above, run in a child process on an X server; `text` reads what it holds."""

    def __init__(self, env: dict[str, str], state: Path, *, wm_class: str = "dictate-type-target",
                 terminal_keys: bool = False, line: bool = False, paste_delay_ms: int = 0) -> None:
        self.env = dict(env, QT_QPA_PLATFORM="xcb")
        self.state = Path(state)
        argv = [sys.executable, str(Path(__file__).resolve()), "--out", str(self.state), "--wm-class", wm_class]
        argv += ["--terminal-keys"] if terminal_keys else []
        argv += ["--line"] if line else []
        argv += ["--paste-delay-ms", str(paste_delay_ms)] if paste_delay_ms else []
        self.proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line_out = self.proc.stdout.readline()  # "ready <wid>" once the window is shown
        if not line_out.startswith("ready "):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.close()
            raise RuntimeError(f"type target did not start: {line_out!r} {err[-500:]}")
        self.wid = int(line_out.split()[1])

    def focus(self) -> None:
        """Give the window the input focus and wait until the server has done it."""
        deadline = time.monotonic() + 10
        while True:
            subprocess.run(["xdotool", "windowfocus", "--sync", str(self.wid)], env=self.env, check=True,
                           capture_output=True, timeout=10)
            focus = subprocess.run(["xdotool", "getwindowfocus"], env=self.env, capture_output=True, text=True,
                                   timeout=10).stdout.strip()
            if focus == str(self.wid):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not focus the type target (focus is {focus})")
            time.sleep(0.05)

    def read(self) -> dict:
        try:
            return json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"text": "", "keys": []}

    @property
    def text(self) -> str:
        return self.read()["text"]

    @property
    def changed_at(self) -> float | None:
        """time.monotonic() (a system-wide clock) of the box's last change, as the box saw it."""
        return self.read().get("changed_at")

    def wait_text(self, expected: str, timeout_s: float = 10.0) -> str:
        """Poll until the box holds `expected` (or the timeout); returns what it holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.text
            if got == expected or time.monotonic() > deadline:
                return got
            time.sleep(0.02)

    def wait_stable(self, quiet_s: float = 0.3, timeout_s: float = 10.0) -> str:
        """The text once it has stopped changing for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        last, since = self.text, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now = self.text
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
        return last

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> "TypeTarget":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
